// The soak run: drives echogate's CLI servers on one runtime for M minutes with a mix of peers,
// samples the servers every few seconds, verifies every echoed byte, and ends with a table, an SVG
// plot and a verdict. Not part of `npm test`.
//
//   npm run soak -- --minutes 10 --runtime deno [--interval 5] [--out bench/soak]
//
// Three servers run in child processes: `echo serve` (chunk mode), `echo serve --mode line
// --max-line 1024` and `gate serve`, each with --json (the driver reads and counts every log line).
// The peers, all plain node:net sockets in this process:
//   pingpong   4 connections, each a loop of 1-512 byte messages answered before the next;
//   stream     2 connections writing 16 KiB blocks (at most 256 KiB unanswered, ~4 MB/s each),
//              reconnecting every 16 MiB;
//   churn      2 loops: connect, one message, its echo, close;
//   reset      a loop: 64 KiB sent, reset (RST, SO_LINGER 0) as soon as the reply starts;
//   slow       a loop: 512 KiB sent, read 16 KiB at a time with a 20 ms pause after each read;
//   overlong   a loop on the line server: one good line echoed, then 4 KiB without a newline, which
//              must close the connection with nothing more sent;
//   knock      a loop on the gate: the right token (welcome) and a wrong one (please go out), in turn.
// Every echoed byte is checked against what was sent (payloads are lowercase letters, so the
// "Echo=>" prefixes can be told apart). Each sample records each server's RSS and open descriptors
// (/proc), a probe's round trip (a one-byte echo on a connection kept for it; a knock on the gate)
// as the event-loop delay, and the counts since the previous sample.
//
// Verdict: the warm-up of RSS (on node and deno, RSS less V8's young generation: see the verdict
// below), measured from the data (see warmupEnd), is over by mid-run and it grows less than
// 1 MiB/min after it; descriptors grow less than 1/min over the second half (least-squares
// slopes); no probe took 1 s or more; no byte was lost or corrupted; no unexpected error on either
// side; every server exits 0 on SIGTERM; on node and deno, the live heap after the load and a full GC is
// within 2 MiB of what it was before.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseCommandLine, usageError } from "../_args.mjs";
import { heapSample, openInspector } from "../_inspector.mjs";
import { plot, round, sleep, slope, summaryTable, warmupEnd } from "./analysis.mjs";
import {
  churn,
  classify,
  echoProbe,
  fail,
  knock,
  knockProbe,
  lineProbe,
  loop,
  overlong,
  pingpong,
  reset,
  slowReader,
  soak,
  stream,
  TOKEN,
  totals,
  unexpected,
} from "./peers.mjs";
import { fdCount, threadCount } from "../_proc.mjs";
import { MALLOC_TRIM, rssMiB, rssParts, startServer as startCliServer, waitListening } from "./servers.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));

// --- options ---

const PEERS = ["pingpong", "stream", "churn", "reset", "slow", "overlong", "knock"];

const USAGE = `Usage: npm run soak -- --minutes M --runtime node|deno|bun [--interval S] [--out DIR]
       [--heap | --no-heap] [--only ${PEERS.join(",")}] [--server-flags "RUNTIME FLAGS"] [--baseline]
       [--server-output DIR] [--leak KIB_PER_MIN]`;

function parseOptions() {
  const { values } = parseCommandLine("soak", USAGE, {
    strings: {
      minutes: "10",
      runtime: "node",
      interval: "5",
      out: `${root}bench/soak`,
      leak: "0",
      only: PEERS.join(","),
      "server-flags": "",
      "server-output": "",
    },
    options: {
      heap: { type: "boolean" }, // on by default where there is a V8 inspector (node, deno)
      "no-heap": { type: "boolean" },
      baseline: { type: "boolean", default: false },
    },
  });
  const options = {
    ...values,
    minutes: Number(values.minutes),
    interval: Number(values.interval),
    leak: Number(values.leak),
    heap: values["no-heap"] ? false : values.heap,
  };
  if (!["node", "deno", "bun"].includes(options.runtime)) usage(`--runtime must be node, deno or bun`);
  if (!(options.minutes > 0) || !(options.interval > 0)) usage("--minutes and --interval must be positive numbers");
  if (options.heap && options.runtime === "bun") usage("--heap reads the V8 inspector: node or deno only");
  options.heap ??= options.runtime !== "bun";
  if (!(options.leak >= 0)) usage("--leak takes KiB per minute (0 or more)");
  options.peers = options.only.split(",").filter(Boolean);
  const unknown = options.peers.filter((peer) => !PEERS.includes(peer));
  if (unknown.length > 0 || options.peers.length === 0) usage(`--only takes a list of ${PEERS.join(",")}`);
  return options;
}

function usage(message) {
  usageError("soak", USAGE, message);
}

const options = parseOptions();
const RSS_SLOPE_LIMIT = 1; // MiB per minute
const FD_SLOPE_LIMIT = 1; // descriptors per minute
const PROBE_LIMIT_MS = 1000;
const LIVE_HEAP_SLACK_MIB = 2; // code compiled and caches filled by the load; a per-connection leak is far more

// --leak: every server also runs scripts/soak/leak.mjs, which keeps that much memory more each
// minute, to show that the verdict catches a leak (the run must fail).
const LEAK_MODULE = fileURLToPath(new URL("./leak.mjs", import.meta.url));
const leakFlags = () =>
  options.leak > 0 ? (options.runtime === "node" ? [`--import=${LEAK_MODULE}`] : ["--preload", LEAK_MODULE]) : [];
if (options.leak > 0) process.env.ECHOGATE_SOAK_LEAK_KIB_PER_MIN = String(options.leak);

const runtimeFlags = () => [
  ...options["server-flags"].split(" ").filter(Boolean),
  ...(options.heap ? ["--inspect=127.0.0.1:0"] : []),
  ...leakFlags(),
];
const startServer = (name, args, baseline = false) =>
  startCliServer(name, args, {
    runtime: options.runtime,
    flags: runtimeFlags(),
    token: TOKEN,
    baseline,
    output: options["server-output"] || undefined,
  });

// --- the run ---

async function main() {
  if (options.runtime === "node" && !existsSync(`${root}npm/bin/echogate.mjs`)) {
    usage("the node CLI runs the built package: run `npm run build` first");
  }
  if (options["server-output"]) mkdirSync(options["server-output"], { recursive: true });
  const servers = {
    // --baseline: the echo server is the runtime's plain one (bench/baseline/), under the same load.
    echo: options.baseline
      ? startServer("echo (baseline)", ["echo", "--port", "0"], true)
      : startServer("echo", ["echo", "serve", "--port", "0"]),
    line: startServer("echo --mode line", ["echo", "serve", "--port", "0", "--mode", "line", "--max-line", "1024"]),
    gate: startServer("gate", ["gate", "serve", "--port", "0"]),
  };
  const names = Object.keys(servers);
  // Interrupted (Ctrl-C, a timeout's SIGTERM): the servers go too, not left running.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(signal, () => {
      for (const server of Object.values(servers)) server.child.kill("SIGKILL");
      process.exit(130);
    });
  }
  try {
    for (const server of Object.values(servers)) await waitListening(server, options.heap);
  } catch (error) {
    for (const server of Object.values(servers)) server.child.kill("SIGKILL");
    throw error;
  }
  const echoPort = servers.echo.port;
  const probes = {
    echo: await echoProbe(echoPort),
    line: await lineProbe(servers.line.port),
    gate: knockProbe(servers.gate.port),
  };

  console.log(
    `soak: ${options.runtime}, ${options.minutes} min, a sample every ${options.interval} s; servers ` +
      names.map((name) => `${servers[name].name} (pid ${servers[name].child.pid})`).join(", "),
  );
  const inspectors = {};
  const baseline = {};
  if (options.heap) {
    for (const name of names) {
      inspectors[name] = await openInspector(servers[name].inspector);
      await inspectors[name].send("HeapProfiler.collectGarbage");
      baseline[name] = await memoryOf(name);
    }
  }
  const peers = {
    pingpong: () => Array.from({ length: 4 }, () => loop("pingpong", () => pingpong(echoPort))),
    stream: () => Array.from({ length: 2 }, () => loop("stream", () => stream(echoPort))),
    churn: () => Array.from({ length: 2 }, () => loop("churn", () => churn(echoPort), 10)),
    reset: () => [loop("reset", () => reset(echoPort), 20)],
    slow: () => [loop("slow", () => slowReader(echoPort))],
    overlong: () => [loop("overlong", () => overlong(servers.line.port), 50)],
    knock: () => [loop("knock", () => knock(servers.gate.port), 20)],
  };
  const workers = options.peers.flatMap((peer) => peers[peer]());

  /** RSS, its parts, descriptors, threads and (with --heap) the V8 heap of one server. */
  async function memoryOf(name) {
    const pid = servers[name].child.pid;
    const sample = { rss: NaN, fds: NaN };
    try {
      sample.rss = round(rssMiB(pid), 1);
      sample.fds = fdCount(pid);
      Object.assign(sample, rssParts(pid), { threads: threadCount(pid) });
    } catch {
      fail("errors", `${name} server is gone`);
    }
    if (options.heap) {
      try {
        Object.assign(sample, await heapSample(inspectors[name], options.runtime));
        if (Number.isFinite(sample.newSpace)) sample.rssLessYoung = round(sample.rss - sample.newSpace, 1);
      } catch (error) {
        fail("errors", `heap of ${name}: ${error.message}`);
      }
    }
    return sample;
  }

  const samples = [];
  const started = Date.now();
  const end = started + options.minutes * 60_000;
  let previous = { ...totals };
  console.log(
    "  time   " + names.map((n) => `${n.padEnd(5)} RSS  fds probe`).join(" | ") +
      " | pingpong stream MB churn resets knocks errors",
  );
  while (Date.now() < end) {
    await sleep(Math.min(options.interval * 1000, end - Date.now()));
    const sample = { t: (Date.now() - started) / 1000, servers: {}, counts: {} };
    for (const name of names) {
      let probeMs;
      try {
        probeMs = await probes[name].measure();
      } catch (error) {
        classify(error, `probe ${name}`);
        probeMs = NaN;
      }
      sample.servers[name] = { ...(await memoryOf(name)), probeMs: round(probeMs, 2) };
    }
    for (const key of Object.keys(totals)) sample.counts[key] = totals[key] - previous[key];
    previous = { ...totals };
    sample.serverUnexpected = names.reduce((n, name) => n + servers[name].unexpected.length, 0);
    samples.push(sample);
    const c = sample.counts;
    console.log(
      `${(sample.t / 60).toFixed(2).padStart(6)}m ` +
        names.map((n) => {
          const s = sample.servers[n];
          const heap = options.heap
            ? ` heap ${s.heapUsed}/${s.heapCommitted} new ${s.newSpace} ext ${s.external} anon ${s.anon}`
            : "";
          return `${String(s.rss).padStart(10)} ${String(s.fds).padStart(4)} ${String(s.probeMs).padStart(5)}${heap}`;
        }).join(" | ") +
        ` | ${String(c.pingpong).padStart(8)} ${(c.streamBytes / 1e6).toFixed(1).padStart(9)} ${
          String(c.churn).padStart(5)
        } ${String(c.resets).padStart(6)} ${String(c.knocks).padStart(6)} ${
          String(c.errors + c.lost + c.corrupted + sample.serverUnexpected).padStart(6)
        }`,
    );
  }

  soak.running = false;
  await Promise.race([Promise.all(workers), sleep(30_000)]);
  for (const probe of Object.values(probes)) await probe.close();
  // With --heap: the servers' memory once the load has stopped, then again after a full GC. What a
  // GC gives back was garbage; what stays in the heap is live; RSS that stays above the heap is
  // native memory (buffers, the allocator).
  const afterLoad = {};
  if (options.heap) {
    await sleep(options.interval * 1000);
    for (const name of names) afterLoad[name] = { idle: await memoryOf(name) };
    for (const name of names) {
      await inspectors[name].send("HeapProfiler.collectGarbage").catch((error) =>
        fail("errors", `GC of ${name}: ${error.message}`)
      );
    }
    await sleep(options.interval * 1000);
    for (const name of names) afterLoad[name].afterGc = await memoryOf(name);
    if (options.runtime === "deno") {
      // Then glibc's malloc_trim(0) (through Deno's FFI): what RSS gives back now was freed memory
      // the allocator kept (Deno allocates with glibc malloc), not memory anything still holds.
      for (const name of names) {
        await inspectors[name].send("Runtime.evaluate", { expression: MALLOC_TRIM, returnByValue: true })
          .catch((error) => fail("errors", `malloc_trim of ${name}: ${error.message}`));
      }
      await sleep(options.interval * 1000);
      for (const name of names) afterLoad[name].afterTrim = await memoryOf(name);
    }
    for (const name of names) inspectors[name].close();
    console.log(`after the load: ${JSON.stringify(afterLoad)}`);
  }
  const exits = {};
  for (const name of names) {
    servers[name].child.kill("SIGTERM");
    const code = await Promise.race([servers[name].exited, sleep(15_000).then(() => "timeout")]);
    if (code === "timeout") servers[name].child.kill("SIGKILL");
    exits[name] = code;
  }

  // --- verdict ---
  const second = samples.filter((s) => s.t >= samples.at(-1).t / 2);
  const minutes = second.map((s) => s.t / 60);
  const perServer = {};
  const checks = [];
  for (const name of names) {
    // What the growth checks judge. With the V8 heap split: RSS less the young generation (new
    // space). V8 sizes that nursery from how much survives its collections, doubling it up to a
    // fixed maximum, so it steps up for tens of minutes under a steady load and is bounded; it holds
    // nothing for long (what survives two collections moves to old space), so a leak shows in what
    // is judged: old space, large objects, buffers and native memory. Without it: RSS.
    const young = samples.every((s) => Number.isFinite(s.servers[name].rssLessYoung));
    const judgedOf = (s) => young ? s.servers[name].rssLessYoung : s.servers[name].rss;
    const judged = samples.map(judgedOf);
    const rssSlope = slope(minutes, second.map(judgedOf));
    const warmup = warmupEnd(samples.map((s) => s.t), judged, RSS_SLOPE_LIMIT);
    const afterWarmup = samples.filter((s) => s.t >= warmup);
    const warmSlope = slope(afterWarmup.map((s) => s.t / 60), afterWarmup.map(judgedOf));
    const rawWarmup = warmupEnd(samples.map((s) => s.t), samples.map((s) => s.servers[name].rss), RSS_SLOPE_LIMIT);
    const fdSlope = slope(minutes, second.map((s) => s.servers[name].fds));
    const rss = samples.map((s) => s.servers[name].rss);
    const newSpace = young ? samples.map((s) => s.servers[name].newSpace) : [];
    const probesMs = samples.map((s) => s.servers[name].probeMs).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
    perServer[name] = {
      rssFirst: rss[0],
      rssMax: Math.max(...rss),
      rssLast: rss.at(-1),
      rssSlopeMiBPerMin: round(rssSlope, 3),
      judged: young ? "RSS less the young generation" : "RSS",
      ...(young && {
        judgedFirst: judged[0],
        judgedMax: Math.max(...judged),
        judgedLast: judged.at(-1),
        youngFirst: newSpace[0],
        youngMax: Math.max(...newSpace),
        youngLast: newSpace.at(-1),
        rawRssWarmupEndMin: round(rawWarmup / 60, 2),
      }),
      rssWarmupEndMin: round(warmup / 60, 2),
      rssSlopeAfterWarmupMiBPerMin: round(warmSlope, 3),
      fdsFirst: samples[0].servers[name].fds,
      fdsMax: Math.max(...samples.map((s) => s.servers[name].fds)),
      fdsLast: samples.at(-1).servers[name].fds,
      fdSlopePerMin: round(fdSlope, 3),
      probeMedianMs: probesMs[Math.floor(probesMs.length / 2)],
      probeMaxMs: probesMs.at(-1),
      events: servers[name].events,
      logLines: servers[name].lines,
      expectedErrors: servers[name].expectedErrors,
      unexpected: servers[name].unexpected.slice(0, 10),
      unexpectedCount: servers[name].unexpected.length,
      exit: exits[name],
      ...(options.heap && { heapBaseline: baseline[name], afterLoad: afterLoad[name] }),
    };
    const s = perServer[name];
    const half = samples.at(-1).t / 2;
    checks.push(
      [
        `${name}: ${s.judged} warm-up over by mid-run (its peak stopped rising at ${s.rssWarmupEndMin} min)`,
        warmup <= half,
      ],
      [
        `${name}: ${s.judged} slope after warm-up ${s.rssSlopeAfterWarmupMiBPerMin} MiB/min < ${RSS_SLOPE_LIMIT}`,
        warmSlope < RSS_SLOPE_LIMIT,
      ],
      [`${name}: descriptor slope ${s.fdSlopePerMin}/min < ${FD_SLOPE_LIMIT}`, fdSlope < FD_SLOPE_LIMIT],
      [`${name}: slowest probe ${s.probeMaxMs} ms < ${PROBE_LIMIT_MS}`, s.probeMaxMs < PROBE_LIMIT_MS],
      [`${name}: no unexpected server error (${s.unexpectedCount})`, s.unexpectedCount === 0],
      [`${name}: exits 0 on SIGTERM (${s.exit})`, s.exit === 0],
    );
    if (options.heap) {
      // The leak test proper: what the heap still holds after a full GC, before and after the load.
      const live = afterLoad[name].afterGc.heapUsed;
      checks.push([
        `${name}: live V8 heap after the load and a GC ${live} MiB <= ${
          baseline[name].heapUsed
        } + ${LIVE_HEAP_SLACK_MIB} MiB (before the load)`,
        live <= baseline[name].heapUsed + LIVE_HEAP_SLACK_MIB,
      ]);
    }
  }
  checks.push(
    [`no lost byte (${totals.lost})`, totals.lost === 0],
    [`no corrupted byte (${totals.corrupted})`, totals.corrupted === 0],
    [`no unexpected client error (${totals.errors})`, totals.errors === 0],
    [
      `every peer kind ran`,
      options.peers.every((peer) =>
        totals[{ stream: "streamBytes", reset: "resets", knock: "knocks" }[peer] ?? peer] > 0
      ),
    ],
  );
  const pass = checks.every(([, ok]) => ok);

  // --- output ---
  mkdirSync(options.out, { recursive: true });
  const base = `${options.out}/${options.runtime}`;
  const result = {
    runtime: options.runtime,
    minutes: options.minutes,
    intervalS: options.interval,
    peers: options.peers,
    serverFlags: runtimeFlags(),
    startedAt: new Date(started).toISOString(),
    load: readFileSync("/proc/loadavg", "utf8").trim(),
    totals,
    servers: perServer,
    clientUnexpected: unexpected,
    checks: checks.map(([what, ok]) => ({ what, ok })),
    verdict: pass ? "pass" : "fail",
    samples,
  };
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 1) + "\n");
  writeFileSync(
    `${base}.svg`,
    plot(
      samples,
      names,
      `echogate soak on ${options.runtime}: ${options.minutes} min, RSS${
        options.heap ? ", V8 heap" : ""
      } and descriptors per server`,
    ),
  );
  const table = summaryTable(result, names);
  writeFileSync(`${base}.md`, table);
  console.log(`\n${table}`);
  console.log(`wrote ${base}.json, ${base}.svg, ${base}.md`);
  process.exit(pass ? 0 : 1);
}

main().catch((error) => {
  console.error(`soak: ${error?.stack ?? error}`);
  process.exit(1);
});
