// The bench's latency figures: coordinated omission under --rate, the percentiles, the --hdr
// histogram file, the JSON schema, and --workers (the load split over processes, the reports
// merged exactly). Real servers over real sockets; short runs; nothing asserts on speed.

import { describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BenchReport, runBench } from "../src/bench/mod.ts";
import { Histogram } from "../src/bench/_histogram.ts";
import { mergeRuns } from "../src/bench/merge.ts";
import { serve, serveEcho } from "../src/mod.ts";
import { bytes, concat, portOf, RUNTIME, transport } from "./_net.ts";
import { argv, cliCommand, ROOT, runCommand } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();
const bench = (args: string[]) => runCommand([...cliCommand(RUNTIME), "bench", ...args], { ms: 30_000 });
const tempFile = (name: string) => join(mkdtempSync(join(tmpdir(), "echogate-bench-")), name);

/** An echo server (chunk mode) that holds every reply while `stalled` is set. */
function serveStalling() {
  let release: (() => void) | undefined;
  let stalled: Promise<void> | undefined;
  const server = serve({ transport, port: 0 }, async (socket) => {
    for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) {
      const reply = concat([bytes("Echo=>"), chunk]);
      if (stalled) await stalled;
      await socket.write(reply);
    }
  }, "echo");
  return {
    server,
    stall() {
      stalled = new Promise((resolve) => (release = resolve));
    },
    resume() {
      stalled = undefined;
      release?.();
    },
  };
}

/** The rows of a percentile-distribution file: [value, percentile, total count]. */
function hdrRows(text: string): number[][] {
  return text.split("\n").filter((line) => /^\s+[\d.]+\s+[\d.]+\s+\d+/.test(line)).map((line) =>
    line.trim().split(/\s+/).slice(0, 3).map(Number)
  );
}

describe(`bench latency on ${RUNTIME}`, () => {
  test(
    "under --rate, a server stall counts for every operation that was due during it, not only the one in flight",
    async () => {
      const stalling = serveStalling();
      const server = resources.add(await stalling.server);
      // 200 ops/s over 2 connections for 2 s; the server holds replies for 600 ms from 0.6 s (these
      // timers are the scenario under test, not synchronisation).
      const timer = setTimeout(() => {
        stalling.stall();
        setTimeout(() => stalling.resume(), 600);
      }, 600);
      const report = await runBench({ transport, port: portOf(server), conns: 2, rate: 200, durationMs: 2000 });
      clearTimeout(timer);
      expect(report.errors).toBe(0);
      expect(report.uncorrectedLatencyMs).not.toBeNull();
      const uncorrected = report.uncorrectedLatencyMs!;
      // Sent-to-reply: only the two operations in flight saw the stall.
      expect(uncorrected.max).toBeGreaterThanOrEqual(500);
      // Due-to-reply: the ~120 operations due during the stall (about a quarter of all) waited too.
      expect(report.latencyMs.p90).toBeGreaterThanOrEqual(100);
      expect(report.latencyMs.p90).toBeGreaterThan(uncorrected.p90);
      expect(report.latencyMs.p99).toBeGreaterThan(uncorrected.p99);
      // And the schedule held: the operations due during the stall were sent after it, not dropped.
      expect(report.operations).toBeGreaterThanOrEqual(350);
    },
    30_000,
  );

  test("reports p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ p99.99 ≤ max; without a rate there are no uncorrected figures", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const report = await runBench({ transport, port: portOf(server), conns: 2, durationMs: 400 });
    const { p50, p90, p99, p999, p9999, max } = report.latencyMs;
    expect(report.operations).toBeGreaterThan(0);
    expect([p50, p90, p99, p999, p9999, max]).toEqual([p50, p90, p99, p999, p9999, max].sort((a, b) => a - b));
    expect(report.uncorrectedLatencyMs).toBeNull();
    expect(report.workers).toBe(1);
  });

  test(
    "--hdr writes HdrHistogram's percentile distribution: header, rising rows, 100% at the total count",
    async () => {
      const server = resources.add(await serveEcho({ transport, port: 0 }));
      const file = tempFile("latency.hgrm");
      const result = await bench(argv`--port ${portOf(server)} --conns 2 --duration 0.5 --json --hdr ${file}`);
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout) as BenchReport;
      const text = readFileSync(file, "utf8");
      expect(text.split("\n")[0]).toBe("       Value     Percentile TotalCount 1/(1-Percentile)");
      const rows = hdrRows(text);
      expect(rows.length).toBeGreaterThan(10);
      for (let i = 1; i < rows.length; i++) {
        expect(rows[i]![0]).toBeGreaterThanOrEqual(rows[i - 1]![0]!);
        expect(rows[i]![1]).toBeGreaterThan(rows[i - 1]![1]!);
        expect(rows[i]![2]).toBeGreaterThanOrEqual(rows[i - 1]![2]!);
      }
      const last = rows.at(-1)!;
      expect(last[1]).toBe(1);
      expect(last[2]).toBe(report.operations);
      expect(last[0]).toBeCloseTo(report.latencyMs.max, 3);
      expect(text).toMatch(
        new RegExp(`#\\[Max {5}= +${report.latencyMs.max.toFixed(3)}, Total count {4}= +${report.operations}\\]`),
      );
      expect(text).toMatch(/#\[Mean {4}= +[\d.]+, StdDeviation {3}= +[\d.]+\]/);
    },
    30_000,
  );

  test("the --json report has exactly the fields src/bench/schema.json lists, of the types it gives", async () => {
    const schema = JSON.parse(readFileSync(`${ROOT}src/bench/schema.json`, "utf8"));
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const result = await bench(argv`--port ${portOf(server)} --conns 2 --duration 0.3 --rate 100 --json`);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    for (const key of schema.required) expect(report).toHaveProperty(key);
    for (const key of Object.keys(report)) expect(Object.keys(schema.properties)).toContain(key);
    const latencyKeys = Object.keys(schema.$defs.latency.properties).sort();
    expect(Object.keys(report.latencyMs as object).sort()).toEqual(latencyKeys);
    expect(Object.keys(report.uncorrectedLatencyMs as object).sort()).toEqual(latencyKeys);
    expect(schema.properties.mode.enum).toContain(report.mode);
    expect(schema.properties.operation.enum).toContain(report.operation);
  }, 30_000);

  test("merged histograms give the percentiles of all the values together, not an average of each part's", () => {
    const fast = new Histogram();
    const slow = new Histogram();
    const all = new Histogram();
    for (let i = 1; i <= 900; i++) {
      fast.record(i / 1000); // 0.001 .. 0.9 ms
      all.record(i / 1000);
    }
    for (let i = 1; i <= 100; i++) {
      slow.record(100 + i); // 101 .. 200 ms
      all.record(100 + i);
    }
    const base = { operations: 0, bytesEchoed: 0, errors: 0, mismatches: 0, connectionsOpened: 0, conns: 1 };
    const report = (latency: Histogram) =>
      ({
        ...base,
        workers: 1,
        opsPerS: 0,
        throughputMBps: 0,
        durationS: 1,
        rateLimitPerS: null,
        latencyMs: latency.summary(),
      }) as unknown as BenchReport;
    const merged = mergeRuns([
      { report: report(fast), latency: fast, uncorrected: undefined },
      { report: report(slow), latency: slow, uncorrected: undefined },
    ]);
    expect(merged.report.latencyMs).toEqual(all.summary());
    expect(merged.report.latencyMs.p99).toBeGreaterThan(190); // an average of p99s would say about 100
    expect(merged.report.workers).toBe(2);
  });

  test("bench --workers 2 splits the connections over two processes and merges their reports exactly", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const file = tempFile("workers.hgrm");
    const result = await bench(
      argv`--port ${portOf(server)} --conns 5 --duration 0.6 --workers 2 --json --hdr ${file}`,
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as BenchReport;
    expect(report.workers).toBe(2);
    expect(report.conns).toBe(5);
    expect(report.connectionsOpened).toBe(5);
    expect(report.errors + report.mismatches).toBe(0);
    // The merged histogram holds every operation of both workers.
    const last = hdrRows(readFileSync(file, "utf8")).at(-1)!;
    expect(last[2]).toBe(report.operations);
    expect(report.bytesEchoed).toBe(report.operations * 64);
  }, 30_000);

  test(
    "bench --workers 2 --json-stream: each worker's intervals carry its number, the end object is the merged run",
    async () => {
      const server = resources.add(await serveEcho({ transport, port: 0 }));
      const result = await bench(argv`--port ${portOf(server)} --conns 2 --duration 1.5 --workers 2 --json-stream`);
      expect(result.code).toBe(0);
      const objects = result.stdout.trim().split("\n").map((line) => JSON.parse(line));
      expect(objects[0].event).toBe("start");
      const intervals = objects.filter((o) => o.event === "interval");
      expect(new Set(intervals.map((o) => o.worker))).toEqual(new Set([1, 2]));
      const end = objects.at(-1);
      expect(end.event).toBe("end");
      expect(end.workers).toBe(2);
      expect(end.operations).toBe(intervals.reduce((sum, o) => sum + o.operations, 0));
    },
    30_000,
  );

  test("bench --workers: more workers than connections is a usage error", async () => {
    const result = await bench(["--port", "1", "--conns", "2", "--workers", "3"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^echogate: Invalid value for "--workers": 3 workers need at least as many --conns/);
  });
});
