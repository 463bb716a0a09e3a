// Server CPU per gate knock, measured with an independent C generator (bench/reference/knock_epoll.c,
// built on demand with cc): each knock a new connection (connect, token, reply, close), 32 in flight.
// The server's CPU (user + system, /proc/PID/stat) is read around a fixed number of knocks, after a
// warm-up, so that other load on the machine stretches the figure less than it would a rate.
// Servers: the raw-API gate of each runtime (bench/baseline/), echogate's `gate serve --port 0`
// with its defaults (penalties on, the human log on standard output, which goes to a file), and
// with --before DIR the same from another checkout. Each round starts every server afresh, in a
// rotating order.
//
//   node scripts/bench/knock_cpu.mjs [--runtimes node,deno,bun] [--rounds 5] [--knocks 20000]
//        [--warmup 5000] [--conns 32] [--before DIR] [--skip-build]
//
// Prints a markdown table per runtime: µs of server CPU per knock (min / median / max over rounds)
// and raw ÷ echogate, the ratio of the medians and min/median/max of the per-round ratios.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseCommandLine, usageError } from "../_args.mjs";
import { cpuSeconds, killGroup } from "../_proc.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const USAGE = `Usage: node scripts/bench/knock_cpu.mjs [options]

Options:
  --runtimes LIST   node,deno,bun (default all three)
  --rounds N        rounds; each starts every server afresh, in a rotating order (default 5)
  --knocks N        knocks measured per server and round (default 20000)
  --warmup N        knocks before the measurement, not counted (default 5000)
  --conns N         knocks in flight (default 32)
  --before DIR      also measure echogate from another checkout (built, for node), e.g. main
  --skip-build      do not run the npm build first (node runs echogate from npm/)`;
const { values } = parseCommandLine("knock_cpu", USAGE, {
  strings: { runtimes: "node,deno,bun", rounds: "5", knocks: "20000", warmup: "5000", conns: "32", before: undefined },
  options: { "skip-build": { type: "boolean", default: false } },
});
const count = (flag) => {
  const n = Number(values[flag]);
  if (!Number.isInteger(n) || n < 1) {
    usageError("knock_cpu", USAGE, `--${flag}: "${values[flag]}" is not a whole number from 1`);
  }
  return n;
};
const ROUNDS = count("rounds");
const KNOCKS = count("knocks");
const WARMUP = count("warmup");
const CONNS = count("conns");
const RUNTIMES = values.runtimes.split(",").filter(Boolean);
for (const runtime of RUNTIMES) {
  if (!["node", "deno", "bun"].includes(runtime)) usageError("knock_cpu", USAGE, `--runtimes: "${runtime}"?`);
}

const has = (command) => {
  try {
    execFileSync("bash", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
if (!has("cc")) {
  console.log("knock_cpu: skipped: no C compiler (cc) to build bench/reference/knock_epoll.c");
  process.exit(0);
}
const PIN = has("taskset");
const scratch = mkdtempSync(join(tmpdir(), "echogate-knock-"));
const generator = join(scratch, "knock_epoll");
execFileSync("cc", ["-O2", "-o", generator, join(ROOT, "bench/reference/knock_epoll.c")], { stdio: "inherit" });
const bin = (name) => join(ROOT, "node_modules/.bin", name);

const checkouts = [["echogate", ROOT]];
if (values.before !== undefined) checkouts.unshift(["before", resolve(values.before)]);
if (!values["skip-build"] && RUNTIMES.includes("node")) {
  for (const [, dir] of checkouts) execFileSync("npm", ["run", "--silent", "build"], { cwd: dir, stdio: "inherit" });
}

function command(runtime, script) {
  return runtime === "node"
    ? ["node", script]
    : runtime === "deno"
    ? [bin("deno"), "run", "-A", script]
    : [bin("bun"), script];
}
function servers(runtime) {
  const baseline = { node: "node.mjs", deno: "deno.ts", bun: "bun.ts" }[runtime];
  return [
    ["raw", [...command(runtime, join(ROOT, "bench/baseline", baseline)), "gate"]],
    ...checkouts.map(([name, dir]) => [
      name,
      [
        ...command(runtime, join(dir, runtime === "node" ? "npm/bin/echogate.mjs" : "src/cli.ts")),
        "gate",
        "serve",
        "--port",
        "0",
      ],
    ]),
  ];
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const live = new Set(); // servers' process groups, killed if this script is stopped
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const pid of live) killGroup(pid);
    rmSync(scratch, { recursive: true, force: true });
    process.exit(130);
  });
}
let started = 0;
/** Starts a server on CPU 0 with its output in a file; resolves with its pid and port once it listens. */
async function startServer(argv) {
  const log = join(scratch, `server-${++started}.log`);
  const pinned = PIN ? ["taskset", "-c", "0", ...argv] : argv;
  const child = spawn("bash", ["-c", `exec "$@" >"${log}" 2>&1`, "bash", ...pinned], {
    stdio: "ignore",
    detached: true,
  });
  const exited = new Promise((done) => child.on("exit", done));
  live.add(child.pid);
  const deadline = Date.now() + 30_000;
  while (true) {
    const output = existsSync(log) ? readFileSync(log, "utf8") : "";
    const port = /listening on \S+:(\d+)/.exec(output)?.[1];
    if (port) {
      return {
        pid: child.pid,
        port,
        log,
        async stop() {
          killGroup(child.pid);
          await exited;
          live.delete(child.pid);
        },
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      killGroup(child.pid);
      live.delete(child.pid);
      throw new Error(`${argv.join(" ")} did not start: ${output.trim() || "no output"}`);
    }
    await sleep(50);
  }
}

function knock(port, knocks) {
  const argv = [generator, port, String(knocks), String(CONNS)];
  return new Promise((done, fail) => {
    const child = spawn(PIN ? "taskset" : argv[0], PIN ? ["-c", "1", ...argv] : argv.slice(1));
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) => (code === 0 ? done(out) : fail(new Error(`knock_epoll exited ${code}: ${out.trim()}`))));
  });
}

/** µs of server CPU per knock, over KNOCKS knocks after WARMUP. */
async function measure(argv) {
  const server = await startServer(argv);
  try {
    await knock(server.port, WARMUP);
    await sleep(200); // the warm-up's lingering closes
    const before = cpuSeconds(server.pid);
    const wall = performance.now();
    await knock(server.port, KNOCKS);
    const cpu = cpuSeconds(server.pid) - before;
    return { us: (cpu / KNOCKS) * 1e6, rate: KNOCKS / ((performance.now() - wall) / 1000) };
  } finally {
    await server.stop();
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs, digits) => [Math.min(...xs), median(xs), Math.max(...xs)].map((x) => x.toFixed(digits)).join(" / ");

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(
  `knock_cpu: ${KNOCKS} knocks (after ${WARMUP}), ${CONNS} in flight, ${ROUNDS} rounds; ` +
    `server on CPU 0, generator on CPU 1${PIN ? "" : " (not pinned: no taskset)"}; load ${load()}`,
);
const rows = [];
try {
  for (const runtime of RUNTIMES) {
    const list = servers(runtime);
    const results = Object.fromEntries(list.map(([name]) => [name, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = list.map((_, i) => list[(i + round) % list.length]);
      const line = [];
      for (const [name, argv] of order) {
        const result = await measure(argv);
        results[name].push(result);
        line.push(`${name} ${result.us.toFixed(1)} µs (${Math.round(result.rate)}/s)`);
      }
      console.log(`  ${runtime} round ${round + 1}/${ROUNDS}: ${line.join(", ")}`);
    }
    const raw = results.raw.map((r) => r.us);
    for (const [name] of list.slice(1)) {
      const us = results[name].map((r) => r.us);
      const ratios = us.map((u, i) => raw[i] / u);
      rows.push(
        `| ${runtime} | ${spread(raw, 1)} | ${name} | ${spread(us, 1)} | ${(median(raw) / median(us)).toFixed(2)} | ` +
          `${spread(ratios, 2)} |`,
      );
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`\nload at the end ${load()}\n`);
console.log(
  "| runtime | raw µs/knock (min / median / max) | server | µs/knock (min / median / max) | raw ÷ server (medians) | per-round raw ÷ server (min / median / max) |",
);
console.log(
  "| ------- | --------------------------------- | ------ | ----------------------------- | ---------------------- | -------------------------------------------- |",
);
for (const row of rows) console.log(row);
