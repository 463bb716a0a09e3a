// The `bench` command: a load generator for any echo server (or gate).

import { pythonRepr, utf8 } from "../_bytes.ts";
import {
  BENCH_MODES,
  type BenchInterval,
  type BenchReport,
  DEFAULT_BENCH_CONNS,
  DEFAULT_BENCH_DURATION_MS,
  DEFAULT_BENCH_MESSAGE_SIZE,
  DEFAULT_BENCH_STREAM_SIZE,
  type LatencyMs,
} from "../bench/mod.ts";
import { runBenchDetailed } from "../bench/run.ts";
import { errorMessage } from "../log.ts";
import { unbracketed } from "../client/_connect.ts";
import { benchShare, runBenchWorker, shareOf, superviseBench } from "./bench_workers.ts";
import { formatEndpoint } from "../address.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "../echo/stream.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT } from "../gate/mod.ts";
import { parseChoice, parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import { clientFlags, type Command, type Options, str, suggestTls } from "./command.ts";
import { continued, defineCommand } from "./flags.ts";
import type { CliHost } from "./host.ts";
import { BENCH_UDP_HELP, benchUdp } from "./bench_udp.ts";
import { PROXY_CLIENT_FLAGS, PROXY_CLIENT_USAGE, proxyHeaderOption } from "./proxy_flags.ts";
import { CLIENT_TLS_FLAGS, readClientTls } from "./tls_options.ts";

// Descriptors kept free beyond the connections (the runtime's own, stdio, DNS).
const DESCRIPTOR_RESERVE = 16;

/** `echogate bench`: drives an echo server and checks every reply. */
export const benchCommand: Command = defineCommand({
  name: "bench",
  usage: [
    "[HOST] [{port}] [{unix}] [{mode}] [{conns}]",
    "[{size}] [{duration}] [{prefix}] [{rate}] [{knock}]",
    `[{timeout}] [{workers}] [{hdr}] ${PROXY_CLIENT_USAGE}`,
    "[{json} | {json-stream}] [{udp}]",
    "[{tls} [{ca} | {tls-fingerprint}] [{servername}] [{tls-cert} {tls-key}]",
    "[{insecure}]]",
  ],
  synopsis: "[HOST] [options]",
  about: `Drives an echo server (echogate's in chunk or raw mode, or any other) over many connections,
checks every reply byte for byte, and ends with throughput, latency (p50, p90, p99, p99.9,
p99.99, max), errors and mismatches. Exits 1 on any error or mismatch. Ctrl-C stops early and still reports.

Modes:
  pingpong   Each connection sends a --size byte message and waits for prefix + message
             (one frame or several) before sending the next. Counts round trips/s.
  stream     Each connection keeps up to --size bytes in flight (written in blocks of half
             of that, at most 64 KiB) and checks the echoed stream in order; with a prefix, as
             prefix + piece frames whose pieces join up to the stream. Counts MB/s.
  connect    Each operation is a new connection doing one exchange and closing: one echo round
             trip, or with --knock TOKEN a gate knock (send the token, read to the server's
             close, expect 'welcome to server!'). Counts connections/s.`,
  flags: [
    ...clientFlags(DEFAULT_ECHO_PORT, `${DEFAULT_ECHO_PORT}, ${DEFAULT_GATE_PORT} with --knock`),
    {
      name: "mode",
      value: "MODE",
      usage: BENCH_MODES.join("|"),
      help: "pingpong, stream or connect (default pingpong)",
    },
    {
      name: "conns",
      value: "N",
      usage: String(DEFAULT_BENCH_CONNS),
      help: `Connections, or exchanges at once in connect mode (default ${DEFAULT_BENCH_CONNS})`,
    },
    {
      name: "size",
      value: "B",
      help: `Message bytes (default ${DEFAULT_BENCH_MESSAGE_SIZE}); in stream mode, bytes in flight
per connection (default ${DEFAULT_BENCH_STREAM_SIZE})`,
    },
    {
      name: "duration",
      value: "S",
      usage: String(DEFAULT_BENCH_DURATION_MS / 1000),
      help: `Seconds to run once the connections are open (default ${DEFAULT_BENCH_DURATION_MS / 1000})`,
    },
    {
      name: "prefix",
      value: "STR",
      usage: `'${DEFAULT_PREFIX}'`,
      help: `What the server puts before each answer, '' for a raw server (default '${DEFAULT_PREFIX}')`,
    },
    {
      name: "rate",
      value: "R",
      help: `R operations per second in total (round trips, blocks or connections),
each connection on its own schedule; connections open one per slot, over
at most a quarter of the run, instead of all at once. Latency then counts
from when each operation was due, not sent (coordinated omission, as
wrk2); the uncorrected figures are reported too`,
    },
    {
      name: "knock",
      value: "TOKEN",
      help: "Connect mode only: knock on a gate with TOKEN instead of an echo round trip",
    },
    ...PROXY_CLIENT_FLAGS,
    {
      name: "timeout",
      value: "S",
      usage: "5",
      help: "Seconds to wait for a connection or a reply; longer is an error (default 5)",
    },
    {
      name: "workers",
      value: "N|auto",
      help: `Split the connections (and the rate) over N processes, auto: one per core;
the report merges theirs exactly (histograms bucket by bucket)`,
    },
    {
      name: "hdr",
      value: "FILE",
      help: `Write the latency histogram to FILE in HdrHistogram's percentile
distribution text format (values in ms), for HdrHistogram's plotter;
checked before any load (exit 2 if it cannot be written)`,
    },
    {
      name: "json",
      help: `Print the final report as one JSON object (JSON Schema: the npm package's
bench-report.schema.json, src/bench/schema.json in the source)`,
    },
    { name: "json-stream", help: `Print one JSON object per second ("interval"), then the report ("end")` },
    ...CLIENT_TLS_FLAGS,
    continued("(in connect mode, every operation is then a full TLS handshake)"),
    { name: "udp" }, // told of in the UDP section below
  ],
  footer: `Units: MB is 10^6 bytes of payload echoed back (prefixes not counted); latencies are in ms.
Before opening N connections, the descriptor limit is checked (where the runtime can tell).
${BENCH_UDP_HELP}`,
  run: (host, positionals, options) =>
    options.udp === true ? benchUdp(host, positionals, options) : bench(host, positionals, options),
});

function parseRate(value: string): number {
  const rate = /^\d+(\.\d+)?$|^\.\d+$/.test(value) ? Number(value) : NaN;
  if (!(rate > 0 && Number.isFinite(rate))) {
    throw new UsageError(`Invalid value for "--rate": "${value}" is not a positive number of operations per second`);
  }
  return rate;
}

async function bench(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const mode = parseChoice("mode", str(options, "mode") ?? "pingpong", BENCH_MODES);
  const knock = str(options, "knock");
  if (knock !== undefined) {
    if (mode !== "connect") throw new UsageError(`Option "--knock" needs "--mode connect"`);
    if (knock === "") throw new UsageError(`Invalid value for "--knock": the token is empty`);
    if (str(options, "prefix") !== undefined) throw new UsageError(`Option "--prefix" does not apply to a knock`);
    if (str(options, "size") !== undefined) throw new UsageError(`Option "--size" does not apply to a knock`);
  }
  const unix = str(options, "unix");
  if (unix === "") throw new UsageError(`Invalid value for "--unix": the path is empty`);
  const maxPositionals = unix === undefined ? 1 : 0;
  if (positionals.length > maxPositionals) throw new UsageError(`Unexpected argument "${positionals[maxPositionals]}"`);
  const hostname = unbracketed(positionals[0] ?? "localhost");
  if (hostname === "") throw new UsageError(`Invalid value for HOST: the host is empty`);
  const port = str(options, "port");
  const conns = parsePositiveInt("conns", str(options, "conns") ?? String(DEFAULT_BENCH_CONNS));
  const size = str(options, "size");
  const duration = str(options, "duration");
  const durationMs = duration === undefined ? DEFAULT_BENCH_DURATION_MS : parseSeconds("duration", duration);
  if (durationMs === 0) throw new UsageError(`Invalid value for "--duration": it must be more than 0 seconds`);
  const timeout = str(options, "timeout");
  const timeoutMs = timeout === undefined ? 5000 : parseSeconds("timeout", timeout);
  if (timeoutMs === 0) throw new UsageError(`Invalid value for "--timeout": it must be more than 0 seconds`);
  const rate = str(options, "rate");
  const json = options.json === true;
  const jsonStream = options["json-stream"] === true;
  if (json && jsonStream) throw new UsageError(`Use "--json" or "--json-stream", not both`);
  const hdr = str(options, "hdr");
  if (hdr === "") throw new UsageError(`Invalid value for "--hdr": the path is empty`);
  const workersValue = str(options, "workers");
  const share = benchShare(host);
  let workers = 1;
  if (workersValue !== undefined && share === undefined) {
    if (!host.workers) throw new UsageError(`"--workers" is not available on this runtime`);
    workers = workersValue === "auto" ? Math.max(1, host.workers.cores()) : parsePositiveInt("workers", workersValue);
    if (workers > conns) {
      throw new UsageError(
        `Invalid value for "--workers": ${workers} workers need at least as many --conns (${conns})`,
      );
    }
  }

  const usage = host.fileDescriptors?.();
  if (workers === 1 && usage && conns > usage.limit - usage.open - DESCRIPTOR_RESERVE) {
    const free = Math.max(0, usage.limit - usage.open - DESCRIPTOR_RESERVE);
    throw new UsageError(
      `--conns ${conns} needs ${conns} file descriptors, but only ${free} are free ` +
        `(limit ${usage.limit}, ${usage.open} open, ${DESCRIPTOR_RESERVE} kept spare): ` +
        `raise the limit (ulimit -n ${conns + usage.open + DESCRIPTOR_RESERVE}) or lower --conns`,
    );
  }

  if (hdr !== undefined && share === undefined) {
    if (!host.writeTextFile) throw new UsageError(`"--hdr" is not available on this runtime`);
    // Before any load: a path that cannot be written must not cost a finished run.
    await host.checkOutputFile?.(hdr).catch((error) => {
      throw new UsageError(`Cannot write "--hdr" file ${hdr}: ${errorMessage(error)}`);
    });
  }

  const progress = !json && !jsonStream && host.isTerminal?.("stderr") === true;
  const aborter = new AbortController();
  const stop = () => {
    if (aborter.signal.aborted) return host.exit(130); // a second signal: exit at once
    aborter.abort();
  };
  host.onSignal("SIGINT", stop);
  host.onSignal("SIGTERM", stop);

  const tls = await readClientTls(host, options);
  const endpoint = unix !== undefined ? { path: unix } : {
    hostname,
    port: port === undefined ? (knock !== undefined ? DEFAULT_GATE_PORT : DEFAULT_ECHO_PORT) : parsePort("port", port),
  };
  const settings = {
    transport: host.transport,
    ...endpoint,
    mode,
    conns,
    size: size === undefined ? undefined : parsePositiveInt("size", size),
    durationMs,
    prefix: str(options, "prefix"),
    knock,
    proxyHeader: proxyHeaderOption(options),
    rate: rate === undefined ? undefined : parseRate(rate),
    timeoutMs,
    signal: aborter.signal,
    ...(tls && { tls }),
  };
  if (share) {
    // A worker of a split bench: its share of the connections and of the rate, reported to the supervisor.
    return await runBenchWorker(host, {
      ...settings,
      conns: shareOf(conns, share.index, share.count),
      rate: settings.rate === undefined ? undefined : settings.rate / share.count,
      fileDescriptors: host.fileDescriptors,
    }, jsonStream);
  }
  if (jsonStream) {
    host.writeOut(JSON.stringify({
      event: "start",
      mode,
      target: formatEndpoint(endpoint),
      conns,
      sizeBytes: settings.size ?? (mode === "stream" ? DEFAULT_BENCH_STREAM_SIZE : DEFAULT_BENCH_MESSAGE_SIZE),
      durationS: durationMs / 1000,
      rateLimitPerS: settings.rate ?? null,
    }));
  } else if (!json) {
    host.writeOut(describeRun(formatEndpoint(endpoint), settings, mode, conns));
  }
  let shown = false;
  const run = workers > 1
    ? await superviseBench(host, workers, (worker, interval) => {
      if (jsonStream) host.writeOut(JSON.stringify({ event: "interval", worker, ...interval }));
    })
    : await runBenchDetailed({
      ...settings,
      onInterval: (interval) => {
        if (jsonStream) host.writeOut(JSON.stringify({ event: "interval", ...interval }));
        if (progress) {
          host.writeErr(`${shown ? "\x1b[1A\x1b[2K" : ""}${progressLine(interval, mode)}`);
          shown = true;
        }
      },
    }).catch(suggestTls);
  const report = run.report;
  if (json) host.writeOut(JSON.stringify(report));
  else if (jsonStream) host.writeOut(JSON.stringify({ event: "end", ...report }));
  else for (const line of reportLines(report)) host.writeOut(line);
  const failed = report.errors > 0 || report.mismatches > 0 || report.operations === 0;
  if (report.firstMismatch) host.writeErr(`echogate: first mismatch: ${report.firstMismatch}`);
  if (report.firstError) host.writeErr(`echogate: first error: ${report.firstError}`);
  if (failed) {
    const problems = report.operations === 0 && report.errors === 0 && report.mismatches === 0
      ? `no ${report.operation} completed`
      : `${report.errors} ${report.errors === 1 ? "error" : "errors"}, ${report.mismatches} ${
        report.mismatches === 1 ? "mismatch" : "mismatches"
      }`;
    host.writeErr(`echogate: bench failed: ${problems}`);
  }
  // After the report: a write that fails although the path was checked loses the histogram only.
  if (hdr !== undefined) {
    try {
      await host.writeTextFile!(hdr, run.latency.percentileDistribution());
    } catch (error) {
      host.writeErr(`echogate: cannot write "--hdr" file ${hdr}: ${errorMessage(error)}`);
      return 1;
    }
  }
  return failed ? 1 : 0;
}

function describeRun(
  target: string,
  settings: { size?: number; prefix?: string; knock?: string; rate?: number; durationMs: number },
  mode: string,
  conns: number,
): string {
  const prefix = pythonRepr(utf8(settings.prefix ?? DEFAULT_PREFIX));
  const what = mode === "stream"
    ? `${settings.size ?? DEFAULT_BENCH_STREAM_SIZE} bytes in flight each, prefix ${prefix}`
    : settings.knock !== undefined
    ? `a knock each`
    : `${settings.size ?? DEFAULT_BENCH_MESSAGE_SIZE}-byte messages, prefix ${prefix}`;
  const pace = settings.rate === undefined ? "" : `, at most ${settings.rate} ops/s`;
  return `Benchmarking ${target}: ${mode}, ${conns} ${conns === 1 ? "connection" : "connections"}, ${what}, ` +
    `${settings.durationMs / 1000} s${pace}`;
}

const RATE_UNIT: Record<string, string> = {
  "round trip": "round trips/s",
  block: "blocks/s",
  connection: "connections/s",
  knock: "knocks/s",
};

function progressLine(interval: BenchInterval, mode: string): string {
  const rate = mode === "stream"
    ? `${interval.throughputMBps.toFixed(1)} MB/s`
    : `${interval.opsPerS.toFixed(0)} ${mode === "connect" ? "conn/s" : "rt/s"}`;
  return `${interval.elapsedS.toFixed(0).padStart(4)} s  ${rate}  p99 ${interval.latencyMs.p99.toFixed(2)} ms  ` +
    `${interval.connections} open  errors ${interval.errors}  mismatches ${interval.mismatches}`;
}

function reportLines(report: BenchReport): string[] {
  const unit = RATE_UNIT[report.operation] ?? "operations/s";
  const plural = report.operation === "knock"
    ? "knocks"
    : report.operation === "connection"
    ? "connections"
    : report.operation === "block"
    ? "blocks"
    : "round trips";
  const latency = (figures: LatencyMs) =>
    `p50 ${figures.p50.toFixed(3)}  p90 ${figures.p90.toFixed(3)}  p99 ${figures.p99.toFixed(3)}  ` +
    `p99.9 ${figures.p999.toFixed(3)}  p99.99 ${figures.p9999.toFixed(3)}  max ${figures.max.toFixed(3)}`;
  const workers = report.workers > 1 ? ` (${report.workers} workers)` : "";
  return [
    `  ${plural}: ${report.operations} in ${report.durationS.toFixed(2)} s = ${
      report.opsPerS.toFixed(1)
    } ${unit}${workers}`,
    `  throughput: ${report.throughputMBps.toFixed(3)} MB/s echoed (${report.bytesEchoed} payload bytes)`,
    report.uncorrectedLatencyMs
      ? `  latency ms, from when due: ${latency(report.latencyMs)}`
      : `  latency ms: ${latency(report.latencyMs)}`,
    ...(report.uncorrectedLatencyMs ? [`  latency ms, from when sent: ${latency(report.uncorrectedLatencyMs)}`] : []),
    `  errors: ${report.errors}  mismatches: ${report.mismatches}  connections opened: ${report.connectionsOpened}`,
  ];
}
