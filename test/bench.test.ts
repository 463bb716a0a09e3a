// `echogate bench`, the load generator: it drives real servers over real sockets, checks every
// reply, and fails on mismatches and errors. Runs are short (half a second); nothing here
// asserts on speed, only on what was counted and verified.

import { describe, expect, test } from "vitest";
import { loadAdapter } from "../adapters/mod.ts";
import { type BenchReport, DescriptorLimitError, runBench } from "../src/bench/mod.ts";
import { runCli } from "../src/cli/main.ts";
import { type CliHost, type Logger, serve, serveEcho, serveGate } from "../src/mod.ts";
import { bytes, concat, portOf, RUNTIME, tempSocketPath, transport } from "./_net.ts";
import { argv, ROOT, runCommand, runEchogate } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const run = (args: string[]) => runEchogate(["bench", ...args]);
const resources = useCleanup();

/** Runs the CLI in this process with a host that records output (and may add optional abilities). */
async function runInProcess(
  args: string[],
  extras: object = {},
): Promise<{ code: number; out: string[]; err: string[] }> {
  const { host } = await loadAdapter();
  const out: string[] = [];
  const err: string[] = [];
  const recording: CliHost = {
    ...host,
    args,
    writeOut: (line) => void out.push(line),
    writeErr: (line) => void err.push(line),
    exit: (code) => {
      throw new Error(`exit(${code}) called`);
    },
    onSignal: () => {},
    ...extras,
  };
  return { code: await runCli(recording), out, err };
}

function parseReport(stdout: string): BenchReport {
  return JSON.parse(stdout.trim()) as BenchReport;
}

/** A server that answers each read like chunk mode, but with one byte of the echo flipped. */
function serveCorrupting() {
  return serve({ transport, port: 0 }, async (socket) => {
    for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) {
      const reply = concat([bytes("Echo=>"), chunk]);
      reply[6] = reply[6]! ^ 0x20;
      await socket.write(reply);
    }
  }, "echo");
}

describe(`echogate bench on ${RUNTIME}`, () => {
  test("pingpong against an echogate server: --json reports round trips, latency, no errors", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const result = await run([
      "127.0.0.1",
      "--port",
      String(portOf(server)),
      "--conns",
      "4",
      "--duration",
      "0.5",
      "--json",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const report = parseReport(result.stdout);
    expect(report).toMatchObject({
      mode: "pingpong",
      operation: "round trip",
      target: `127.0.0.1:${portOf(server)}`,
      conns: 4,
      sizeBytes: 64,
      prefix: "Echo=>",
      rateLimitPerS: null,
      errors: 0,
      mismatches: 0,
      connectionsOpened: 4,
    });
    expect(report.operations).toBeGreaterThan(0);
    expect(report.bytesEchoed).toBe(report.operations * 64);
    for (const field of ["durationS", "opsPerS", "throughputMBps"] as const) {
      expect(report[field]).toBeGreaterThan(0);
    }
    const { p50, p99, max } = report.latencyMs;
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(p99);
    expect(p99).toBeLessThanOrEqual(max);
  });

  test("stream mode against a raw server (--prefix '') verifies the echoed stream; human output", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0, mode: "raw" }));
    const result = await run([
      "127.0.0.1",
      "--port",
      String(portOf(server)),
      "--mode",
      "stream",
      "--prefix",
      "",
      "--conns",
      "3",
      "--size",
      "32768",
      "--duration",
      "0.5",
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Benchmarking 127\.0\.0\.1:\d+: stream, 3 connections/);
    expect(result.stdout).toMatch(/blocks: [1-9]\d* in/);
    expect(result.stdout).toMatch(/MB\/s echoed/);
    expect(result.stdout).toMatch(
      /latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+ {2}p99\.99 [\d.]+ {2}max [\d.]+/,
    );
    expect(result.stdout).toMatch(/errors: 0 {2}mismatches: 0/);
    expect(result.stderr).toBe("");
  });

  test("on a terminal, a live progress line on stderr, redrawn in place each second; none with --json", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const args = ["bench", "--port", String(portOf(server)), "--conns", "2"];
    const onTerminal = { isTerminal: (stream: string) => stream === "stderr" };
    const result = await runInProcess([...args, "--duration", "2.6"], onTerminal);
    expect(result.code).toBe(0);
    // A line per second and one for the rest; each after the first erases the one before.
    expect(result.err.length).toBeGreaterThanOrEqual(2);
    const line = /^ +\d+ s {2}\d+ rt\/s {2}p99 [\d.]+ ms {2}(\d) open {2}errors 0 {2}mismatches 0$/;
    expect(result.err[0]).toMatch(line);
    expect(line.exec(result.err[0]!)![1]).toBe("2"); // both open (the last line may come after they close)
    for (const redrawn of result.err.slice(1)) {
      expect(redrawn.startsWith("\x1b[1A\x1b[2K")).toBe(true);
      expect(redrawn.slice("\x1b[1A\x1b[2K".length)).toMatch(line);
    }
    expect(result.out.join("\n")).toMatch(/errors: 0 {2}mismatches: 0/);

    const json = await runInProcess([...args, "--duration", "1.2", "--json"], onTerminal);
    expect(json.code).toBe(0);
    expect(json.err).toEqual([]);
  });

  test("stream mode with a prefix checks prefix + piece frames from a chunk-mode server", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const report = await runBench({
      transport,
      hostname: "127.0.0.1",
      port: portOf(server),
      mode: "stream",
      conns: 2,
      durationMs: 300,
    });
    expect(report).toMatchObject({ errors: 0, mismatches: 0, operation: "block" });
    expect(report.bytesEchoed).toBeGreaterThan(0);
    // The same stream against a raw server cannot carry the prefix: every connection mismatches.
    const raw = resources.add(await serveEcho({ transport, port: 0, mode: "raw" }));
    const wrong = await runBench({
      transport,
      hostname: "127.0.0.1",
      port: portOf(raw),
      mode: "stream",
      conns: 1,
      durationMs: 200,
    });
    expect(wrong.mismatches).toBeGreaterThan(0);
    expect(wrong.firstMismatch).toMatch(/expected the prefix 'Echo=>'/);
  });

  test("connect mode: a fresh connection per echo round trip, and per gate knock with --knock", async () => {
    const echo = resources.add(await serveEcho({ transport, port: 0 }));
    const echoed = await runBench({
      transport,
      hostname: "127.0.0.1",
      port: portOf(echo),
      mode: "connect",
      conns: 2,
      durationMs: 300,
    });
    expect(echoed).toMatchObject({ operation: "connection", errors: 0, mismatches: 0 });
    expect(echoed.operations).toBeGreaterThan(0);
    expect(echoed.connectionsOpened).toBe(echoed.operations);

    const gate = resources.add(await serveGate({ transport, port: 0, tokens: ["s3cret"] }));
    const result = await run([
      "127.0.0.1",
      "--port",
      String(portOf(gate)),
      "--mode",
      "connect",
      "--knock",
      "s3cret",
      "--conns",
      "2",
      "--duration",
      "0.5",
      "--json",
    ]);
    expect(result.code).toBe(0);
    const report = parseReport(result.stdout);
    expect(report).toMatchObject({ mode: "connect", operation: "knock", errors: 0, mismatches: 0 });
    expect(report.operations).toBeGreaterThan(0);
    expect(report.connectionsOpened).toBe(report.operations);
  });

  test("a server that answers wrongly: mismatches reported, first one described, exit 1", async () => {
    const server = resources.add(await serveCorrupting());
    const result = await run([
      "127.0.0.1",
      "--port",
      String(portOf(server)),
      "--conns",
      "2",
      "--duration",
      "0.3",
      "--json",
    ]);
    expect(result.code).toBe(1);
    const report = parseReport(result.stdout);
    expect(report.mismatches).toBeGreaterThan(0);
    expect(report.operations).toBe(0);
    expect(report.firstMismatch).toMatch(/^connection \d, round trip 0: expected 'Echo=>aaaa/);
    const lines = result.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^echogate: first mismatch: connection \d, round trip 0/);
    expect(lines.at(-1)).toMatch(/^echogate: bench failed: 0 errors, \d+ mismatches$/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test("a server that hangs up after one answer: errors counted, not mismatches", async () => {
    const server = resources.add(
      await serve({ transport, port: 0 }, async (socket) => {
        const chunk = await socket.read();
        if (chunk) await socket.write(concat([bytes("Echo=>"), chunk]));
      }, "echo"),
    );
    const report = await runBench({
      transport,
      hostname: "127.0.0.1",
      port: portOf(server),
      conns: 1,
      durationMs: 300,
    });
    expect(report.errors).toBeGreaterThan(0);
    expect(report.mismatches).toBe(0);
    expect(report.operations).toBeGreaterThan(0);
    expect(report.firstError).toMatch(/Server closed the connection without replying/);
  });

  test("--rate caps the total pace and --json-stream prints start, interval and end objects", async () => {
    const path = tempSocketPath("bench");
    resources.add(await serveEcho({ transport, path, mode: "raw" }));
    const result = await run(argv`--unix ${path} --prefix= --conns 4 --rate 40 --duration 1.1 --json-stream`);
    expect(result.code).toBe(0);
    const events = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(events[0]).toMatchObject({ event: "start", mode: "pingpong", target: `unix:${path}`, rateLimitPerS: 40 });
    expect(events.at(-1)).toMatchObject({ event: "end", errors: 0, mismatches: 0, rateLimitPerS: 40 });
    const intervals = events.filter((e) => e.event === "interval");
    expect(intervals.length).toBeGreaterThanOrEqual(1);
    expect(intervals[0]).toHaveProperty("latencyMs.p99");
    expect(intervals[0]).toHaveProperty("opsPerS");
    const end = events.at(-1) as BenchReport;
    // An upper bound only: 40 per second over the time actually measured, plus the first slot.
    expect(end.operations).toBeGreaterThan(0);
    expect(end.operations).toBeLessThanOrEqual(Math.ceil(40 * end.durationS) + 1);
  });

  test("with a rate, connections come up one pacing slot apart instead of all at once", async () => {
    const connectedAt: number[] = [];
    const logger: Logger = {
      log: (event) => void (event.event === "connect" && connectedAt.push(performance.now())),
    };
    const server = resources.add(await serveEcho({ transport, port: 0, logger }));
    // Four connections over at most a quarter of the run: one every min(1000 / 8, 1000 / 4 / 4) = 62.5 ms.
    const report = await runBench({ transport, port: portOf(server), conns: 4, rate: 8, durationMs: 1000 });
    expect(report.errors).toBe(0);
    expect(connectedAt.length).toBe(4);
    // The first connection is open before the clock starts and the fourth comes three slots after
    // it (timers fire late, never more than a millisecond early).
    expect(connectedAt[3]! - connectedAt[0]!).toBeGreaterThanOrEqual(3 * 62.5 - 2);
  });

  test("an unreachable server is one line and exit 1", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const port = String(portOf(server));
    await server.close();
    const result = await runInProcess(["bench", "127.0.0.1", "--port", port, "--duration", "0.2"]);
    expect(result.code).toBe(1);
    expect(result.err).toHaveLength(1);
    expect(result.err[0]).toBe(`echogate: connection refused by 127.0.0.1:${port}`);
  });

  test("more connections than the descriptor limit allows: a clear usage error before connecting", async () => {
    const result = await runInProcess(["bench", "--conns", "5000"], {
      fileDescriptors: () => ({ limit: 1024, open: 12 }),
    });
    expect(result.code).toBe(2);
    expect(result.err[0]).toBe(
      "echogate: --conns 5000 needs 5000 file descriptors, but only 996 are free (limit 1024, 12 open, 16 kept spare): " +
        "raise the limit (ulimit -n 5028) or lower --conns",
    );
    await expect(runBench({ transport, conns: 100, fileDescriptors: () => ({ limit: 64, open: 10 }) })).rejects
      .toBeInstanceOf(DescriptorLimitError);
  });

  test("bad flags exit 2 with one clear line", async () => {
    const spawned = await run(["--mode", "fast"]);
    expect(spawned.code).toBe(2);
    expect(spawned.stderr).toMatch(
      /^echogate: Invalid value for "--mode": "fast" is not one of pingpong, stream, connect\n/,
    );
    expect(spawned.stderr).not.toMatch(/\n\s+at /);

    const cases: [string[], RegExp][] = [
      [["--conns", "0"], /"--conns".*positive integer/],
      [["--size", "1k"], /"--size".*positive integer/],
      [["--duration", "0"], /"--duration": it must be more than 0 seconds/],
      [["--duration", "soon"], /"--duration".*non-negative number of seconds/],
      [["--rate", "0"], /"--rate".*positive number/],
      [["--port", "99999"], /"--port".*not a port number/],
      [["--knock", "1"], /"--knock" needs "--mode connect"/],
      [["--mode", "connect", "--knock", ""], /"--knock": the token is empty/],
      [["--json", "--json-stream"], /"--json" or "--json-stream", not both/],
      [["a", "b"], /Unexpected argument "b"/],
      [["--bogus"], /Unknown option "--bogus"/],
    ];
    for (const [args, message] of cases) {
      const result = await runInProcess(["bench", ...args]);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.err[0], args.join(" ")).toMatch(/^echogate: /);
      expect(result.err[0], args.join(" ")).toMatch(message);
      expect(result.err.slice(1)).toEqual(["Run 'echogate --help' for usage."]);
    }
  });

  test("bench --help documents the modes and the knock", async () => {
    const result = await runInProcess(["bench", "--help"]);
    expect(result.code).toBe(0);
    const help = result.out.join("\n");
    for (const word of ["pingpong", "stream", "connect", "--knock TOKEN", "--rate R", "--json-stream", "MB is 10^6"]) {
      expect(help).toContain(word);
    }
    expect((await runInProcess(["--help"])).out.join("\n")).toContain("echogate bench [HOST]");
  });

  test("npm run bench refuses an idle count past the descriptor hard limit, before starting anything", async () => {
    // No system allows 10^8 descriptors per process (Linux caps them at nr_open).
    const result = await runCommand([
      "node",
      `${ROOT}scripts/bench.mjs`,
      "--scenarios",
      "idle",
      "--idle-conns",
      "100000000",
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^bench: --idle-conns 100000000 needs 100001000 descriptors per process; the hard limit here is \d+\n$/,
    );
  });
});
