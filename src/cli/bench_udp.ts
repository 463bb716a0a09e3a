// `echogate bench --udp`: the UDP pingpong load generator's command line.

import { pythonRepr, utf8 } from "../_bytes.ts";
import {
  type DatagramBenchReport,
  DEFAULT_BENCH_CONNS,
  DEFAULT_BENCH_DURATION_MS,
  DEFAULT_BENCH_MESSAGE_SIZE,
  DEFAULT_UDP_BENCH_TIMEOUT_MS,
  runDatagramBench,
} from "../bench/mod.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "../echo/stream.ts";
import { UsageError } from "../errors.ts";
import { parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import { type Options, str } from "./command.ts";
import type { CliHost } from "./host.ts";

/** The help text's UDP section. */
export const BENCH_UDP_HELP = `
UDP (--udp): each of --conns sockets sends a --size byte datagram (at least 12) and waits for
prefix + datagram before sending the next; no echo within --timeout (default ${
  DEFAULT_UDP_BENCH_TIMEOUT_MS / 1000
} s) counts
as lost and the socket goes on. Reports round trips/s, loss, reordering (echoes after their
timeout), duplicates and latency, every echo checked byte for byte. Loss (a rate-limited
server's, say) is reported, not a failure; mismatches and no echo at all exit 1.`;

/** Runs `bench --udp`. */
export async function benchUdp(host: CliHost, positionals: string[], options: Options): Promise<number> {
  for (const name of ["unix", "knock", "tls", "proxy-header"]) {
    if (name in options) throw new UsageError(`Option "--${name}" does not apply with --udp`);
  }
  const mode = str(options, "mode");
  if (mode !== undefined && mode !== "pingpong") throw new UsageError(`--udp runs pingpong only, not "${mode}"`);
  if (positionals.length > 1) throw new UsageError(`Unexpected argument "${positionals[1]}"`);
  const hostname = positionals[0] ?? "localhost";
  if (hostname === "") throw new UsageError(`Invalid value for HOST: the host is empty`);
  const port = str(options, "port");
  const size = str(options, "size");
  const duration = str(options, "duration");
  const durationMs = duration === undefined ? DEFAULT_BENCH_DURATION_MS : parseSeconds("duration", duration);
  if (durationMs === 0) throw new UsageError(`Invalid value for "--duration": it must be more than 0 seconds`);
  const timeout = str(options, "timeout");
  const timeoutMs = timeout === undefined ? DEFAULT_UDP_BENCH_TIMEOUT_MS : parseSeconds("timeout", timeout);
  if (timeoutMs === 0) throw new UsageError(`Invalid value for "--timeout": it must be more than 0 seconds`);
  const rate = str(options, "rate");
  const rateValue = rate === undefined ? undefined : Number(rate);
  if (rateValue !== undefined && !(/^\d+(\.\d+)?$|^\.\d+$/.test(rate!) && rateValue > 0)) {
    throw new UsageError(`Invalid value for "--rate": "${rate}" is not a positive number of operations per second`);
  }
  const sizeValue = size === undefined ? DEFAULT_BENCH_MESSAGE_SIZE : parsePositiveInt("size", size);
  if (sizeValue < 12 || sizeValue > 65000) {
    throw new UsageError(`Invalid value for "--size": UDP datagrams here are 12 to 65000 bytes`);
  }
  const json = options.json === true;
  const jsonStream = options["json-stream"] === true;
  if (json && jsonStream) throw new UsageError(`Use "--json" or "--json-stream", not both`);
  const conns = parsePositiveInt("conns", str(options, "conns") ?? String(DEFAULT_BENCH_CONNS));
  const prefix = str(options, "prefix") ?? DEFAULT_PREFIX;
  const target = { hostname, port: port === undefined ? DEFAULT_ECHO_PORT : parsePort("port", port) };

  const aborter = new AbortController();
  const stop = () => {
    if (aborter.signal.aborted) return host.exit(130);
    aborter.abort();
  };
  host.onSignal("SIGINT", stop);
  host.onSignal("SIGTERM", stop);
  if (jsonStream) {
    host.writeOut(JSON.stringify({
      event: "start",
      mode: "pingpong",
      transport: "udp",
      target: `${target.hostname}:${target.port}`,
      conns,
      sizeBytes: sizeValue,
      durationS: durationMs / 1000,
      rateLimitPerS: rateValue ?? null,
    }));
  } else if (!json) {
    host.writeOut(
      `Benchmarking udp ${target.hostname}:${target.port}: pingpong, ${conns} ${conns === 1 ? "socket" : "sockets"}, ` +
        `${sizeValue}-byte datagrams, prefix ${pythonRepr(utf8(prefix))}, ${durationMs / 1000} s` +
        (rateValue === undefined ? "" : `, at most ${rateValue} datagrams/s`),
    );
  }
  const report = await runDatagramBench({
    transport: host.transport,
    ...target,
    conns,
    size: sizeValue,
    durationMs,
    prefix,
    rate: rateValue,
    timeoutMs,
    signal: aborter.signal,
    onInterval: (interval) => {
      if (jsonStream) host.writeOut(JSON.stringify({ event: "interval", ...interval }));
    },
  });
  if (json) host.writeOut(JSON.stringify(report));
  else if (jsonStream) host.writeOut(JSON.stringify({ event: "end", ...report }));
  else for (const line of reportLines(report)) host.writeOut(line);
  if (report.firstMismatch) host.writeErr(`echogate: first mismatch: ${report.firstMismatch}`);
  if (report.firstError) host.writeErr(`echogate: first error: ${report.firstError}`);
  if (report.mismatches > 0 || report.operations === 0) {
    host.writeErr(
      `echogate: bench failed: ${
        report.operations === 0 ? "no echo came back" : `${report.mismatches} mismatched echoes`
      }`,
    );
    return 1;
  }
  return 0;
}

function reportLines(r: DatagramBenchReport): string[] {
  const { p50, p99, max } = r.latencyMs;
  return [
    `  round trips: ${r.operations} in ${r.durationS.toFixed(2)} s = ${r.opsPerS.toFixed(1)} round trips/s`,
    `  datagrams: ${r.sent} sent, ${r.lost} lost (${(r.lossRate * 100).toFixed(2)}%), ${r.reordered} reordered, ` +
    `${r.duplicates} duplicates`,
    `  latency ms: p50 ${p50.toFixed(3)}  p99 ${p99.toFixed(3)}  max ${max.toFixed(3)}`,
    `  errors: ${r.errors}  mismatches: ${r.mismatches}`,
  ];
}
