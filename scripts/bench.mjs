// `npm run bench`: echogate's servers against minimal hand-written servers on each runtime's own
// socket API (bench/baseline/), driven by the same load generator (`echogate bench`, in its own
// process), side by side. Prints a table and writes bench/results.json, bench/results.md and
// bench/results.svg (a chart, scripts/bench_chart.mjs; that script alone redraws it from saved results).
//
//   node scripts/bench.mjs                                  everything (about 9 minutes on 2 cores)
//   node scripts/bench.mjs --runtimes bun --scenarios pingpong --seconds 1 --rounds 2
//   node scripts/bench.mjs --check-generator                also measure the generator against a C server
//
// Method: for each runtime and scenario there are three servers: the baseline, a second copy of
// the baseline (the A/A control) and echogate. Each round measures all three, each in a freshly
// started and warmed-up process, in the order baseline, echogate, baseline copy, then reversed
// the next round (ABBA), so drift over time falls on both sides alike. Per cell we report the median over rounds of echogate's
// figure divided by the baseline's of the same round, the same for the copy (A/A: the noise
// floor), and the geometric mean over cells. Where `taskset` exists, servers run on CPU 0 and
// the generator on the others, so neither steals the other's core. Each measurement also
// records the server's and the generator's CPU time (from /proc and bash's `times`), which
// shows whether the generator was the bottleneck (see the "gen CPU" column).

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cellsFromResults, renderChart } from "./bench_chart.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules/.bin");
const DENO = join(BIN, "deno");
const BUN = join(BIN, "bun");

const USAGE = `Usage: node scripts/bench.mjs [options]

Options:
  --runtimes LIST      node,deno,bun (default all three)
  --scenarios LIST     stream,pingpong,idle,connect,connect-proxy,tls-stream,tls-pingpong,tls-connect,
                       tls-stream-close,tls-pingpong-close,tls-connect-close,tls-stream-close-nodetls,
                       tls-pingpong-close-nodetls,tls-connect-close-nodetls,udp
                       (default all); connect-proxy compares echogate's gate with and without
                       --proxy-protocol; the tls- ones are the same over TLS (a throwaway EC P-256
                       certificate made with openssl), tls-connect a full handshake per knock; on Deno
                       they run echogate with --tls-stalled-handshakes hold (Deno.listenTls, as the
                       baseline) and the -close ones (Deno only) with its default; the -close-nodetls
                       ones (Deno only) the same against a node:tls baseline
                       (bench/baseline/node.mjs run on Deno); udp a UDP pingpong
  --seconds S          length of one measurement (default 2.5)
  --rounds N           rounds per cell, alternating the order (default 4)
  --idle-conns N       connections held in the idle scenario (default 5000)
  --idle-settle S      seconds the idle scenario's server stays quiet after its warm-up, before the
                       first reading (default 6)
  --generator RT       runtime that runs the load generator: bun, node or deno (default bun)
  --check-generator    first measure the generator against a C epoll server (needs cc)
  --no-pin             do not pin servers and generator to separate CPUs
  --skip-build         do not run the npm build first (node runs echogate from npm/)
  --out DIR            where results.json and results.md go (default bench)
  --echogate DIR       run echogate's servers from another checkout (built, for node), e.g. to
                       measure a change; the baselines and the generator stay this checkout's`;

let options;
try {
  options = parseArgs({
    options: {
      runtimes: { type: "string", default: "node,deno,bun" },
      scenarios: {
        type: "string",
        default: "stream,pingpong,idle,connect,connect-proxy,tls-stream,tls-pingpong,tls-connect," +
          "tls-stream-close,tls-pingpong-close,tls-connect-close,tls-stream-close-nodetls," +
          "tls-pingpong-close-nodetls,tls-connect-close-nodetls,udp",
      },
      seconds: { type: "string", default: "2.5" },
      rounds: { type: "string", default: "4" },
      "idle-conns": { type: "string", default: "5000" },
      "idle-settle": { type: "string", default: "6" },
      generator: { type: "string", default: "bun" },
      "check-generator": { type: "boolean", default: false },
      "no-pin": { type: "boolean", default: false },
      "skip-build": { type: "boolean", default: false },
      out: { type: "string", default: "bench" },
      echogate: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
} catch (error) {
  console.error(`bench: ${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}

const RUNTIMES = list(options.runtimes, ["node", "deno", "bun"], "--runtimes");
const SCENARIO_NAMES = list(
  options.scenarios,
  [
    "stream",
    "pingpong",
    "idle",
    "connect",
    "connect-proxy",
    "tls-stream",
    "tls-pingpong",
    "tls-connect",
    "tls-stream-close",
    "tls-pingpong-close",
    "tls-connect-close",
    "tls-stream-close-nodetls",
    "tls-pingpong-close-nodetls",
    "tls-connect-close-nodetls",
    "udp",
  ],
  "--scenarios",
);
const SECONDS = positive(options.seconds, "--seconds");
const ROUNDS = Math.round(positive(options.rounds, "--rounds"));
const IDLE_CONNS = Math.round(positive(options["idle-conns"], "--idle-conns"));
const IDLE_SETTLE_SECONDS = positive(options["idle-settle"], "--idle-settle");
const GENERATOR = list(options.generator, ["node", "deno", "bun"], "--generator")[0];
const OUT = resolve(ROOT, options.out);
const WARMUP_SECONDS = Math.min(0.5, SECONDS);
// Descriptors for the idle scenario's server and holder (hard limit permitting).
const FD_LIMIT = IDLE_CONNS + 1000;
if (SCENARIO_NAMES.includes("idle")) {
  // Said up front: past the hard limit, `ulimit -n` fails quietly and the holder dies midway with EMFILE.
  const hard = execFileSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim();
  if (hard !== "unlimited" && Number(hard) < FD_LIMIT) {
    console.error(
      `bench: --idle-conns ${IDLE_CONNS} needs ${FD_LIMIT} descriptors per process; the hard limit here is ${hard}`,
    );
    process.exit(2);
  }
}

function list(value, allowed, flag) {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item)) usageError(`${flag}: "${item}" is not one of ${allowed.join(", ")}`);
  }
  if (items.length === 0) usageError(`${flag}: empty`);
  return items;
}
function positive(value, flag) {
  const n = Number(value);
  if (!(n > 0)) usageError(`${flag}: "${value}" is not a positive number`);
  return n;
}
function usageError(message) {
  console.error(`bench: ${message}\n\n${USAGE}`);
  process.exit(2);
}

// --- processes ---

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const CPU_COUNT = cpus().length;
const PIN = !options["no-pin"] && CPU_COUNT >= 2 && hasCommand("taskset");
const SERVER_CPUS = "0";
const GENERATOR_CPUS = CPU_COUNT > 2 ? `1-${CPU_COUNT - 1}` : "1";
const scratch = mkdtempSync(join(tmpdir(), "echogate-bench-"));
const live = new Set(); // child processes to kill on exit

function hasCommand(name) {
  try {
    execFileSync("bash", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Kills a child started with `detached: true` and everything in its process group. */
function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function pinned(cpuList, command) {
  return PIN ? ["taskset", "-c", cpuList, ...command] : command;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** CPU seconds (user + system, all threads) a process has used, from /proc. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status VmRSS. */
function rssBytes(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

let serverCount = 0;
/**
 * Starts a server on the server CPU with a raised descriptor limit; its output goes to a file
 * (nothing has to read it, so logging costs it only its own writes). Resolves once it prints
 * "listening on HOST:PORT".
 */
async function startServer(name, command) {
  const log = join(scratch, `server-${++serverCount}.log`);
  // exec: the pid we get is the server's own, for /proc.
  const child = spawn(
    "bash",
    ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null; exec "$@" >"${log}" 2>&1`, "bash", ...pinned(SERVER_CPUS, command)],
    { stdio: "ignore", detached: true },
  );
  live.add(child);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 30_000;
  while (true) {
    const output = existsSync(log) ? readFileSync(log, "utf8") : "";
    const address = /listening on (\S+)/.exec(output)?.[1];
    if (address) {
      return {
        name,
        pid: child.pid,
        port: Number(/:(\d+)$/.exec(address)[1]),
        async stop() {
          kill(child);
          await exited;
          live.delete(child);
        },
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      kill(child);
      throw new Error(`${name} did not start: ${output.trim() || "no output"}`);
    }
    await sleep(50);
  }
}

/** How `runtime` runs the script at `path` (`denoFlags` go to deno run, e.g. --unstable-net). */
function runScript(runtime, path, denoFlags = []) {
  switch (runtime) {
    case "node":
      return ["node", path];
    case "deno":
      return [DENO, "run", "-A", ...denoFlags, path];
    case "bun":
      return [BUN, path];
  }
}

/** echogate's CLI in the checkout at `root`: Node runs the built package, Deno and Bun the source. */
function cliCommand(runtime, root) {
  return runScript(runtime, join(root, runtime === "node" ? "npm/bin/echogate.mjs" : "src/cli.ts"));
}

/**
 * Runs `echogate bench ... --json` on the generator CPUs and returns its report plus the CPU
 * seconds it used (bash's `times` after it exits) and the wall time.
 */
function runGenerator(args) {
  const command = [...pinned(GENERATOR_CPUS, cliCommand(GENERATOR, ROOT)), "bench", "127.0.0.1", ...args, "--json"];
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null; "$@"; code=$?; times >&2; exit $code`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("bash", ["-c", script, "bash", ...command], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    live.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("close", (code) => {
      live.delete(child);
      const wallS = (performance.now() - started) / 1000;
      const lines = err.trim().split("\n");
      // `times` prints the shell's own times, then its children's: "0m1.160s 0m2.080s".
      const times = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines.at(-1) ?? "");
      const cpuS = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
      let report;
      try {
        report = JSON.parse(out);
      } catch {
        return reject(new Error(`generator exited ${code} without a report: ${lines.slice(0, -2).join(" ")}`));
      }
      resolve({ report, cpuS, wallS, stderr: lines.slice(0, -2).join("\n") });
    });
  });
}

// --- servers and scenarios ---

const BASELINE_FILES = { node: "node.mjs", deno: "deno.ts", bun: "bun.ts" };

function baselineCommand(runtime, protocolArgs, scenario = {}) {
  const file = scenario.baselineFiles?.[runtime] ?? BASELINE_FILES[runtime];
  return [...runScript(runtime, join(ROOT, "bench/baseline", file), scenario.baselineDenoFlags), ...protocolArgs];
}

const ECHOGATE_ROOT = options.echogate === undefined ? ROOT : resolve(options.echogate);

function echogateCommand(runtime, cliArgs, scenario = {}) {
  const args = [...cliArgs, ...(scenario.echogateArgs?.[runtime] ?? [])];
  if (runtime === "deno" && scenario.echogateDenoFlags) {
    return [...runScript(runtime, join(ECHOGATE_ROOT, "src/cli.ts"), scenario.echogateDenoFlags), ...args];
  }
  return [...cliCommand(runtime, ECHOGATE_ROOT), ...args];
}

/** A CA and a server certificate for localhost / 127.0.0.1, made in the scratch folder, for the TLS cells. */
function makeBenchPki() {
  const dir = join(scratch, "pki");
  mkdirSync(dir);
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key");
  openssl(
    ..."req -x509 -new -key ca.key -sha256 -days 2 -subj /CN=bench-ca".split(" "),
    ..."-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt".split(" "),
  );
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.ec.key");
  openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.ec.key", "-out", "server.key");
  openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr");
  writeFileSync(
    join(dir, "server.ext"),
    "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  openssl(
    ..."x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2".split(" "),
    ..."-extfile server.ext -out server.crt".split(" "),
  );
  return { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
}
const PKI = SCENARIO_NAMES.some((name) => name.startsWith("tls-")) ? makeBenchPki() : undefined;

/**
 * The scenario over TLS: the same servers with a certificate, the generator verifying it. On Deno
 * echogate runs with `--tls-stalled-handshakes hold`, on Deno.listenTls like the baseline (its
 * default, Deno's node:tls, is measured by the `*-close` cells).
 */
function overTls(scenario, stalled = "hold") {
  const serverTls = ["--tls-cert", PKI?.cert ?? "", "--tls-key", PKI?.key ?? ""];
  return {
    ...scenario,
    what: `${scenario.what}, over TLS${stalled === "close" ? " (Deno: echogate's default, on node:tls)" : ""}`,
    baseline: [...scenario.baseline, ...serverTls],
    echogate: [...scenario.echogate, ...serverTls],
    echogateArgs: { deno: ["--tls-stalled-handshakes", stalled] },
    generator: [...scenario.generator, "--tls", "--ca", PKI?.ca ?? ""],
  };
}

const SCENARIOS = {
  stream: {
    what: "raw mode, 64 connections, 64 KiB in flight each",
    unit: "MB/s",
    baseline: ["echo", "--mode", "raw"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "raw"],
    generator: ["--mode", "stream", "--prefix", "", "--conns", "64", "--size", "65536"],
    value: (report) => report.throughputMBps,
  },
  pingpong: {
    what: "chunk mode, prefix Echo=>, 100 connections, 64-byte messages",
    unit: "round trips/s",
    baseline: ["echo", "--mode", "chunk"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "chunk"],
    generator: ["--mode", "pingpong", "--conns", "100", "--size", "64"],
    value: (report) => report.opsPerS,
  },
  idle: {
    what:
      `${IDLE_CONNS} idle connections held (chunk mode), after one exchange each, by a server quiet for ${IDLE_SETTLE_SECONDS} s`,
    unit: "KiB/conn",
    baseline: ["echo", "--mode", "chunk"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "chunk"],
  },
  udp: {
    what: "UDP pingpong, prefix Echo=>, 50 sockets, 64-byte datagrams; echogate with --no-udp-limits " +
      "(its default limits would cap one source at 10/s); on Deno both run with --unstable-net (Deno.listenDatagram)",
    unit: "round trips/s",
    baseline: ["udp"],
    baselineFiles: { node: "udp_node.mjs", deno: "udp_deno.ts", bun: "udp_bun.ts" },
    baselineDenoFlags: ["--unstable-net"],
    echogateDenoFlags: ["--unstable-net"],
    echogate: ["echo", "serve", "--udp", "--port", "0", "--no-udp-limits"],
    generator: ["--udp", "--conns", "50", "--size", "64"],
    value: (report) => report.opsPerS,
  },
  connect: {
    what: "a new connection per gate knock (token 1, answered), 32 at a time",
    unit: "conns/s",
    baseline: ["gate"],
    echogate: ["gate", "serve", "--port", "0"],
    generator: ["--mode", "connect", "--knock", "1", "--conns", "32"],
    value: (report) => report.opsPerS,
  },
  // The cost of the PROXY protocol: the same gate with --proxy-protocol, each connection sending
  // a v2 header first, against the same gate without it (echogate on both sides, not the baseline).
  "connect-proxy": {
    what: "the connect cell's gate with --proxy-protocol (a v2 header before each knock) vs the same gate without",
    unit: "conns/s",
    reference: {
      echogate: ["gate", "serve", "--port", "0"],
      generator: ["--mode", "connect", "--knock", "1", "--conns", "32"],
    },
    echogate: ["gate", "serve", "--port", "0", "--proxy-protocol"],
    generator: ["--mode", "connect", "--knock", "1", "--conns", "32", "--proxy-header", "v2"],
    value: (report) => report.opsPerS,
  },
};
SCENARIOS["tls-stream"] = overTls(SCENARIOS.stream);
SCENARIOS["tls-pingpong"] = overTls(SCENARIOS.pingpong);
SCENARIOS["tls-connect"] = { ...overTls(SCENARIOS.connect), unit: "handshakes/s" };
// Deno only: echogate's default there, whose handshake timeout frees stalled connections.
SCENARIOS["tls-stream-close"] = overTls(SCENARIOS.stream, "close");
SCENARIOS["tls-pingpong-close"] = overTls(SCENARIOS.pingpong, "close");
SCENARIOS["tls-connect-close"] = { ...overTls(SCENARIOS.connect, "close"), unit: "handshakes/s" };
// The same, against a node:tls baseline run on Deno (bench/baseline/node.mjs): what is Deno's node:tls, what is echogate's.
for (const name of ["tls-stream-close", "tls-pingpong-close", "tls-connect-close"]) {
  const scenario = SCENARIOS[name];
  SCENARIOS[`${name}-nodetls`] = {
    ...scenario,
    what: `${scenario.what}; baseline: bench/baseline/node.mjs (node:tls) on Deno`,
    baselineFiles: { deno: "node.mjs" },
  };
}

/** One throughput measurement of a running server. */
async function measureThroughput(server, scenario, seconds) {
  const before = cpuSeconds(server.pid);
  const run = await runGenerator([...scenario.generator, "--port", String(server.port), "--duration", String(seconds)]);
  const serverCpuS = cpuSeconds(server.pid) - before;
  const { report } = run;
  return {
    server: server.name,
    value: scenario.value(report),
    operations: report.operations,
    durationS: report.durationS,
    errors: report.errors,
    mismatches: report.mismatches,
    firstProblem: report.firstMismatch ?? report.firstError,
    // UDP: datagrams never echoed (the TCP report has no such field).
    ...(report.lost === undefined ? {} : { lost: report.lost, lossRate: report.lossRate }),
    latencyMs: report.latencyMs,
    serverCpuS,
    // CPU seconds the server spent per operation: the cost the generator cannot hide.
    serverCpuPerOpUs: report.operations > 0 ? (serverCpuS / report.operations) * 1e6 : NaN,
    generatorCpuShare: run.cpuS / run.wallS,
  };
}

/**
 * One throughput measurement of a freshly started server, warmed up first (JIT, buffers) by a
 * short discarded run. A fresh process per measurement: on node, one server process can stay
 * in a fast or a slow state for its whole life (stream figures differ 3x between processes of
 * the same program), so reusing processes across rounds would turn that into a bias.
 */
async function measureFresh(name, command, scenario) {
  const server = await startServer(name, command);
  try {
    await measureThroughput(server, scenario, WARMUP_SECONDS);
    return await measureThroughput(server, scenario, SECONDS);
  } finally {
    await server.stop();
  }
}

/** One idle-memory measurement: a fresh server, warmed, then IDLE_CONNS held connections. */
async function measureIdle(name, command) {
  const server = await startServer(name, command);
  try {
    await runGenerator(["--port", String(server.port), "--conns", "10", "--duration", "0.5"]); // warm up
    // V8 (Node, Deno) sizes its young generation by the allocation rate of the last 5 s. Right
    // after startup, a CLI that loads more code than a one-file baseline enters the burst with a
    // young generation twice as large, and the pages the burst touches in it count as memory per
    // connection. After a quiet while, the burst's first collection sees a low rate and shrinks
    // the young generation back to its initial size, for both servers alike.
    await sleep(IDLE_SETTLE_SECONDS * 1000);
    const before = rssBytes(server.pid);
    const holder = spawn(
      "bash",
      [
        "-c",
        `ulimit -n ${FD_LIMIT} 2>/dev/null; exec "$@"`,
        "bash",
        ...pinned(GENERATOR_CPUS, ["node", join(ROOT, "bench/hold.mjs")]),
        "--port",
        String(server.port),
        "--conns",
        String(IDLE_CONNS),
      ],
      { stdio: ["pipe", "pipe", "pipe"], detached: true },
    );
    live.add(holder);
    let out = "";
    let err = "";
    holder.stdout.on("data", (chunk) => (out += chunk));
    holder.stderr.on("data", (chunk) => (err += chunk));
    const exited = new Promise((resolve) => holder.on("exit", resolve));
    try {
      const deadline = Date.now() + 120_000;
      while (!/held \d+/.test(out)) {
        if (holder.exitCode !== null || Date.now() > deadline) throw new Error(`holder failed: ${err.trim()}`);
        await sleep(50);
      }
      await sleep(1000); // let the server settle
      const after = rssBytes(server.pid);
      return {
        server: name,
        value: (after - before) / IDLE_CONNS / 1024,
        rssBeforeBytes: before,
        rssAfterBytes: after,
        errors: 0,
        mismatches: 0,
      };
    } finally {
      kill(holder);
      await exited;
      live.delete(holder);
    }
  } finally {
    await server.stop();
  }
}

function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function geomean(values) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  return finite.length ? Math.exp(finite.reduce((sum, v) => sum + Math.log(v), 0) / finite.length) : NaN;
}

/**
 * One cell: baseline (A), its copy (A') and echogate (B), `ROUNDS` rounds in the orders
 * A B A' / A' B A / ... Ratios are B/A and A'/A per round; for idle memory, A/B (higher is better).
 */
async function runCell(runtime, name) {
  const scenario = SCENARIOS[name];
  // A scenario with a `reference` compares echogate with echogate run another way, not with the baseline.
  const reference = scenario.reference
    ? echogateCommand(runtime, scenario.reference.echogate)
    : baselineCommand(runtime, scenario.baseline, scenario);
  const commands = {
    baseline: reference,
    copy: reference,
    echogate: echogateCommand(runtime, scenario.echogate, scenario),
  };
  const generatorFor = (role) =>
    role === "echogate" || !scenario.reference ? scenario : { ...scenario, generator: scenario.reference.generator };
  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ["baseline", "echogate", "copy"] : ["copy", "echogate", "baseline"];
    const measured = {};
    for (const role of order) {
      measured[role] = name === "idle"
        ? await measureIdle(`${runtime} ${role}`, commands[role])
        : await measureFresh(`${runtime} ${role}`, commands[role], generatorFor(role));
    }
    rounds.push(measured);
    const line = order.map((role) => `${role} ${format(measured[role].value, scenario.unit)}`).join(", ");
    console.log(`  ${runtime} ${name} round ${round + 1}/${ROUNDS}: ${line}`);
  }
  // Throughput: echogate / baseline (higher is better). Idle memory is near zero for some
  // servers, so there the difference echogate - baseline is reported instead, in KiB.
  const ratio = (a, b) => (name === "idle" ? b - a : b / a);
  const problems = rounds.flatMap((r) => Object.values(r)).filter((m) => m.errors > 0 || m.mismatches > 0);
  return {
    runtime,
    scenario: name,
    unit: scenario.unit,
    what: scenario.what,
    baseline: median(rounds.map((r) => r.baseline.value)),
    echogate: median(rounds.map((r) => r.echogate.value)),
    copy: median(rounds.map((r) => r.copy.value)),
    ratio: median(rounds.map((r) => ratio(r.baseline.value, r.echogate.value))),
    aaRatio: median(rounds.map((r) => ratio(r.baseline.value, r.copy.value))),
    cpuRatio: name === "idle"
      ? NaN
      : median(rounds.map((r) => r.baseline.serverCpuPerOpUs / r.echogate.serverCpuPerOpUs)),
    generatorCpuMax: name === "idle"
      ? NaN
      : Math.max(...rounds.flatMap((r) => Object.values(r).map((m) => m.generatorCpuShare))),
    problems: problems.length,
    firstProblem: problems[0]?.firstProblem,
    rounds,
  };
}

// --- the generator check ---

/** The generator against a C epoll server that never sleeps: how far the generator itself goes. */
async function checkGenerator() {
  if (!hasCommand("cc")) {
    console.log("check-generator: no C compiler (cc), skipped");
    return undefined;
  }
  const binary = join(scratch, "echo_epoll");
  execFileSync("cc", ["-O2", "-o", binary, join(ROOT, "bench/reference/echo_epoll.c")]);
  const results = {};
  for (const name of ["stream", "pingpong"]) {
    const scenario = SCENARIOS[name];
    const server = await startServer("c reference", [binary, name === "stream" ? "" : "Echo=>", "spin"]);
    try {
      await measureThroughput(server, scenario, 1);
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await measureThroughput(server, scenario, SECONDS));
      results[name] = {
        value: median(runs.map((r) => r.value)),
        unit: scenario.unit,
        generatorCpuShare: median(runs.map((r) => r.generatorCpuShare)),
        problems: runs.filter((r) => r.errors > 0 || r.mismatches > 0).length,
      };
      console.log(
        `  generator (${GENERATOR}) against the C reference, ${name}: ${format(results[name].value, scenario.unit)}, ` +
          `generator CPU ${percent(results[name].generatorCpuShare)}`,
      );
    } finally {
      await server.stop();
    }
  }
  return results;
}

// --- output ---

function format(value, unit) {
  if (!Number.isFinite(value)) return "n/a";
  const digits = unit === "KiB/conn" ? 2 : value >= 100 ? 0 : 1;
  return `${value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })} ${unit}`;
}
const fixed = (value) => (Number.isFinite(value) ? value.toFixed(3) : "n/a");
const delta = (kib) => (Number.isFinite(kib) ? `${kib >= 0 ? "+" : "−"}${Math.abs(kib).toFixed(2)} KiB` : "n/a");
const percent = (value) => (Number.isFinite(value) ? `${Math.round(value * 100)}%` : "n/a");

function goal(cell) {
  switch (cell.scenario) {
    case "stream":
    case "pingpong":
    case "connect-proxy":
    case "tls-stream":
    case "tls-pingpong":
    case "tls-stream-close":
    case "tls-pingpong-close":
    case "tls-stream-close-nodetls":
    case "tls-pingpong-close-nodetls":
    case "udp":
      return cell.ratio >= 0.95 ? "met (≥ 0.95)" : "missed (≥ 0.95)";
    case "idle":
      if (cell.runtime === "deno") return cell.echogate <= 8 ? "met (≤ 8 KiB)" : "missed (≤ 8 KiB)";
      return cell.echogate <= cell.baseline + 1 ? "met (≤ base + 1 KiB)" : "missed (≤ base + 1 KiB)";
    default:
      return "—";
  }
}

function table(cells) {
  const header = ["runtime", "scenario", "baseline", "echogate", "ratio", "A/A", "cpu ratio", "gen CPU", "goal"];
  const rows = cells.map((cell) => [
    cell.runtime,
    cell.scenario,
    format(cell.baseline, cell.unit),
    format(cell.echogate, cell.unit),
    (cell.scenario === "idle" ? delta(cell.ratio) : fixed(cell.ratio)) + (cell.problems ? " (ERRORS)" : ""),
    cell.scenario === "idle" ? delta(cell.aaRatio) : fixed(cell.aaRatio),
    fixed(cell.cpuRatio),
    percent(cell.generatorCpuMax),
    goal(cell),
  ]);
  const throughput = cells.filter((c) => c.scenario !== "idle");
  if (throughput.length === 0) return [header, ...rows];
  rows.push([
    "geomean",
    `${throughput.length} throughput cells`,
    "",
    "",
    fixed(geomean(throughput.map((c) => c.ratio))),
    fixed(geomean(throughput.map((c) => c.aaRatio))),
    fixed(geomean(throughput.map((c) => c.cpuRatio))),
    "",
    "",
  ]);
  return [header, ...rows];
}

function renderText(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  return rows.map((row) => row.map((cell, i) => String(cell).padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

function renderMarkdown(rows) {
  const line = (row) => `| ${row.join(" | ")} |`;
  return [line(rows[0]), line(rows[0].map(() => "---")), ...rows.slice(1).map(line)].join("\n");
}

function versions() {
  const version = (command) => {
    try {
      return execFileSync(command[0], command.slice(1), { encoding: "utf8" }).split("\n")[0].trim();
    } catch {
      return "unknown";
    }
  };
  return { node: process.version, deno: version([DENO, "--version"]), bun: version([BUN, "--version"]) };
}

// --- main ---

async function main() {
  const started = Date.now();
  if (RUNTIMES.includes("node") || GENERATOR === "node") {
    if (!options["skip-build"]) {
      console.log("building npm/ (node runs echogate from the built package) ...");
      execFileSync(DENO, ["run", "-A", join(ROOT, "scripts/build_npm.ts")], { stdio: "inherit" });
    }
  }
  console.log(
    `${SECONDS} s per measurement, ${ROUNDS} rounds, generator: echogate bench on ${GENERATOR}; ` +
      (PIN ? `servers on CPU ${SERVER_CPUS}, generator on CPU ${GENERATOR_CPUS}` : "no CPU pinning"),
  );
  const generatorCheck = options["check-generator"] ? await checkGenerator() : undefined;
  const cells = [];
  for (const runtime of RUNTIMES) {
    for (const name of SCENARIO_NAMES) {
      // Elsewhere "close" is what the plain TLS cells already measure.
      if (name.includes("-close") && runtime !== "deno") continue;
      console.log(`${runtime} ${name}: ${SCENARIOS[name].what}`);
      cells.push(await runCell(runtime, name));
    }
  }
  const rows = table(cells);
  const elapsedS = Math.round((Date.now() - started) / 1000);
  console.log(`\n${renderText(rows)}\n`);
  const explanation = [
    "ratio: median over rounds of echogate / baseline in the same round (above 1: echogate is faster); for idle",
    "memory, the median of echogate - baseline per connection. A/A: the same for a second copy of the baseline,",
    "measured in the same rounds: the noise floor.",
    "cpu ratio: baseline / echogate server CPU time per operation (above 1: echogate spends less).",
    "gen CPU: the load generator's highest CPU use in the cell, in cores; near 100% it, not the server, set the pace.",
  ];
  console.log(explanation.join("\n"));
  const environment = {
    date: new Date().toISOString(),
    cpus: CPU_COUNT,
    cpuModel: cpus()[0]?.model,
    kernel: release(),
    pinned: PIN ? { servers: SERVER_CPUS, generator: GENERATOR_CPUS } : false,
    versions: versions(),
    generator: GENERATOR,
    echogate: ECHOGATE_ROOT,
    secondsPerMeasurement: SECONDS,
    rounds: ROUNDS,
    idleConns: IDLE_CONNS,
    idleSettleSeconds: IDLE_SETTLE_SECONDS,
    elapsedS,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "results.json"), JSON.stringify({ environment, generatorCheck, cells }, null, 2) + "\n");
  const markdown = [
    "# echogate benchmark results",
    "",
    `Generated by \`node scripts/bench.mjs ${process.argv.slice(2).join(" ")}\``.trimEnd() +
    ` on ${environment.date} (${elapsedS} s).`,
    "",
    `Machine: ${CPU_COUNT} × ${environment.cpuModel}, Linux ${environment.kernel}; node ${environment.versions.node}, ` +
    `${environment.versions.deno}, bun ${environment.versions.bun}. ` +
    (PIN ? `Servers pinned to CPU ${SERVER_CPUS}, the generator to CPU ${GENERATOR_CPUS}. ` : "") +
    `Load generator: \`echogate bench\` on ${GENERATOR}, ${SECONDS} s per measurement, ${ROUNDS} rounds per cell (ABBA).`,
    "",
    renderMarkdown(rows),
    "",
    ...explanation.map((line) => `${line}  `),
    "",
    "Scenarios:",
    "",
    ...SCENARIO_NAMES.map((name) => `- ${name}: ${SCENARIOS[name].what} (${SCENARIOS[name].unit})`),
    ...(generatorCheck
      ? [
        "",
        "Generator check (the same generator against `bench/reference/echo_epoll.c` in spin mode):",
        "",
        ...Object.entries(generatorCheck).map(([name, r]) =>
          `- ${name}: ${format(r.value, r.unit)}, generator CPU ${percent(r.generatorCpuShare)}`
        ),
      ]
      : []),
    "",
  ].join("\n");
  writeFileSync(join(OUT, "results.md"), markdown);
  writeFileSync(join(OUT, "results.svg"), renderChart(cellsFromResults({ environment, cells })));
  console.log(
    `\nwrote ${join(options.out, "results.json")}, ${join(options.out, "results.md")} and the chart ` +
      `${join(options.out, "results.svg")} (${elapsedS} s)`,
  );
}

function cleanupAll() {
  for (const child of live) kill(child);
  rmSync(scratch, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanupAll();
    process.exit(130);
  });
}
try {
  await main();
} catch (error) {
  console.error(`bench: ${error.message}`);
  process.exitCode = 1;
} finally {
  cleanupAll();
}
