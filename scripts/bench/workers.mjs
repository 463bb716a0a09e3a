// Measures `--workers` (docs/workers.md): the load generator against the C one, servers with
// 1, 2 and more workers, and the idle memory per connection with workers.
//
//   node scripts/bench/workers.mjs [--seconds 3] [--rounds 3] [--runtimes node,bun,deno] [--idle 2000]
//       [--only generator|servers|idle|node-share]
//
// `--only node-share` compares Node's two ways to share the port (node:cluster, and child
// processes listening with reusePort, ECHOGATE_NODE_WORKERS=cluster|reuseport) with --workers 2,
// on the `node` first on PATH (22.12+ for reusePort): e.g.
//   node scripts/node_matrix.mjs node22 node scripts/bench/workers.mjs --only node-share
//
// Needs `npm run build` (node runs the built package), cc and taskset. Placement on a 2-core
// machine: a server on CPU 0 and every generator on CPU 1 for the generator check; for the
// servers, the C generator on CPU 1 and the server's workers free to use both CPUs.
// Each figure is the median of --rounds runs, the runs of a table interleaved.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseCommandLine } from "../_args.mjs";
import { cpuSeconds, loadAverage, orZero, processTree, rssKiB } from "../_proc.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
const { values } = parseCommandLine(
  "bench_workers",
  "Usage: node scripts/bench/workers.mjs [--seconds 3] [--rounds 3] [--runtimes node,bun,deno] [--idle 2000]\n" +
    "         [--only generator|servers|idle|node-share] [--arms cluster,reuseport]",
  {
    strings: {
      seconds: "3",
      rounds: "3",
      runtimes: "node,bun,deno",
      idle: "2000",
      only: undefined,
      // node-share: the two arms compared (`cluster,cluster` for an A/A check).
      arms: "cluster,reuseport",
    },
  },
);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const RUNTIMES = values.runtimes.split(",");
const IDLE = Number(values.idle);
const scratch = mkdtempSync(join(tmpdir(), "echogate-workers-bench-"));
const live = new Set();

const CLI = {
  node: ["node", `${ROOT}npm/bin/echogate.mjs`],
  bun: [`${ROOT}node_modules/.bin/bun`, `${ROOT}src/cli.ts`],
  deno: [`${ROOT}node_modules/.bin/deno`, "run", "-A", `${ROOT}src/cli.ts`],
};
const pinned = (cpus, command) => ["taskset", "-c", cpus, ...command];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function start(command) {
  const child = spawn(command[0], command.slice(1), { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  live.add(child);
  child.on("exit", () => live.delete(child));
  return { child, out: () => out };
}

async function startServer(command) {
  const server = start(command);
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    const match = /listening on [^\s]*:(\d+)/.exec(server.out());
    if (match) return { ...server, port: Number(match[1]) };
    if (server.child.exitCode !== null) throw new Error(`${command.join(" ")} exited`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${command.join(" ")} did not listen`);
}

async function stop(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once("exit", resolve));
  server.child.kill("SIGTERM");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 8000);
  await exited;
  clearTimeout(timer);
}

function runJson(command) {
  const out = execFileSync(command[0], command.slice(1), { encoding: "utf8", maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split("\n").at(-1));
}

const cBench = (port, mode, conns, size) =>
  runJson(
    pinned("1", [join(scratch, "bench_epoll"), String(port), mode, String(conns), String(size), String(SECONDS)]),
  );
const echogateBench = (runtime, port, mode, conns, workers) =>
  runJson(pinned("1", [
    ...CLI[runtime],
    "bench",
    "127.0.0.1",
    "--port",
    String(port),
    "--mode",
    mode,
    "--conns",
    String(conns),
    "--duration",
    String(SECONDS),
    ...(mode === "stream" ? ["--prefix", ""] : []),
    "--workers",
    String(workers),
    "--json",
  ]));

const SCENARIOS = {
  pingpong: { conns: 100, size: 64, prefix: "Echo=>", unit: "round trips/s", value: (r) => r.opsPerS },
  stream: { conns: 64, size: 65536, prefix: "", unit: "MB/s", value: (r) => r.throughputMBps },
};

async function generatorCheck() {
  console.log("\n## The load generator against the C one (server: echo_epoll spin on CPU 0; generators on CPU 1)\n");
  console.log("| scenario | C generator | runtime | workers 1 | ratio | workers 2 | ratio |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const [name, s] of Object.entries(SCENARIOS)) {
    const server = await startServer(pinned("0", [join(scratch, "echo_epoll"), s.prefix, "spin"]));
    try {
      const figures = { c: [] };
      for (let round = 0; round < ROUNDS; round++) {
        figures.c.push(s.value(cBench(server.port, name, s.conns, s.size)));
        for (const runtime of RUNTIMES) {
          for (const workers of [1, 2]) {
            const key = `${runtime}/${workers}`;
            (figures[key] ??= []).push(s.value(echogateBench(runtime, server.port, name, s.conns, workers)));
          }
        }
      }
      const c = median(figures.c);
      for (const runtime of RUNTIMES) {
        const one = median(figures[`${runtime}/1`]);
        const two = median(figures[`${runtime}/2`]);
        console.log(
          `| ${name} | ${c.toFixed(0)} ${s.unit} | ${runtime} | ${one.toFixed(0)} | ${(one / c).toFixed(2)} | ${
            two.toFixed(0)
          } | ${(two / c).toFixed(2)} |`,
        );
      }
    } finally {
      await stop(server);
    }
  }
}

async function serverWorkers() {
  console.log("\n## Servers with workers (generator: the C one on CPU 1; the server's processes on any CPU)\n");
  console.log("| runtime | scenario | no --workers | --workers 1 | --workers 2 | --workers 4 |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  const counts = [0, 1, 2, 4];
  for (const runtime of RUNTIMES) {
    for (const [name, s] of Object.entries(SCENARIOS)) {
      const figures = new Map(counts.map((n) => [n, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const n of counts) {
          const args = ["echo", "serve", "--port", "0", ...(name === "stream" ? ["--mode", "raw"] : [])];
          const server = await startServer([...CLI[runtime], ...args, ...(n > 0 ? ["--workers", String(n)] : [])]);
          try {
            figures.get(n).push(s.value(cBench(server.port, name, s.conns, s.size)));
          } finally {
            await stop(server);
          }
        }
      }
      console.log(
        `| ${runtime} | ${name} (${s.unit}) | ${counts.map((n) => median(figures.get(n)).toFixed(0)).join(" | ")} |`,
      );
    }
  }
}

async function nodeShare() {
  const version = execFileSync("node", ["--version"], { encoding: "utf8" }).trim();
  console.log(
    `\n## Node ${version}, --workers 2: ${values.arms} (generator on CPU 1; server on any CPU)\n`,
  );
  const [a, b] = values.arms.split(",");
  console.log(`| scenario | ${a} | ${b} | ratio | ${a} CPU µs/op | ${b} CPU µs/op | ratio |`);
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  const connect = { conns: 50, unit: "connections/s" };
  const scenarios = [
    ["pingpong", SCENARIOS.pingpong, (port) => cBench(port, "pingpong", 100, 64)],
    ["stream", SCENARIOS.stream, (port) => cBench(port, "stream", 64, 65536)],
    ["connect", connect, (port) =>
      runJson(pinned("1", [
        ...CLI.bun,
        "bench",
        "127.0.0.1",
        "--port",
        String(port),
        "--mode",
        "connect",
        "--conns",
        String(connect.conns),
        "--duration",
        String(SECONDS),
        "--json",
      ]))],
  ];
  for (const [name, s, drive] of scenarios) {
    const arms = values.arms.split(",");
    const figures = [[], []];
    const cpu = [[], []];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [arm, share] of arms.entries()) {
        const args = [
          "echo",
          "serve",
          "--port",
          "0",
          "--workers",
          "2",
          ...(name === "stream" ? ["--mode", "raw"] : []),
        ];
        const server = await startServer(["env", `ECHOGATE_NODE_WORKERS=${share}`, ...CLI.node, ...args]);
        try {
          const pids = processTree(server.child.pid);
          const before = pids.reduce((sum, pid) => sum + orZero(cpuSeconds, pid), 0);
          const report = drive(server.port);
          const after = pids.reduce((sum, pid) => sum + orZero(cpuSeconds, pid), 0);
          const value = name === "stream" ? report.throughputMBps : report.opsPerS;
          figures[arm].push(value);
          // CPU per operation (stream: per MB) across the supervisor and its workers, over the whole run.
          const ops = name === "stream" ? report.bytesEchoed / 1e6 : report.operations;
          cpu[arm].push(((after - before) / ops) * 1e6);
        } finally {
          await stop(server);
        }
      }
    }
    const [c, r] = figures.map(median);
    const [cc, rc] = cpu.map(median);
    console.log(
      `| ${name} (${s.unit}) | ${c.toFixed(0)} | ${r.toFixed(0)} | ${(r / c).toFixed(2)} | ${cc.toFixed(1)} | ${
        rc.toFixed(1)
      } | ${(rc / cc).toFixed(2)} |`,
    );
  }
}

const treeRss = (pid) => processTree(pid).reduce((sum, p) => sum + orZero(rssKiB, p), 0);

async function holdIdle(port, count) {
  const sockets = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - i) }, () =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () => socket.write("hi\n"));
        socket.once("data", () => resolve());
        socket.once("error", reject);
        sockets.push(socket);
      })));
  }
  return sockets;
}

async function idleMemory() {
  console.log(`\n## Idle memory: ${IDLE} connections held after one exchange, all processes of the server summed\n`);
  console.log("| runtime | workers | RSS before | RSS with the connections | per connection |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const runtime of RUNTIMES) {
    for (const n of [0, 2]) {
      const server = await startServer([
        ...CLI[runtime],
        "echo",
        "serve",
        "--port",
        "0",
        ...(n ? ["--workers", String(n)] : []),
      ]);
      try {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        const before = treeRss(server.child.pid);
        const sockets = await holdIdle(server.port, IDLE);
        await new Promise((resolve) => setTimeout(resolve, 3000));
        const after = treeRss(server.child.pid);
        for (const socket of sockets) socket.destroy();
        console.log(
          `| ${runtime} | ${n || "none"} | ${(before / 1024).toFixed(1)} MiB | ${(after / 1024).toFixed(1)} MiB | ${
            ((after - before) / IDLE).toFixed(2)
          } KiB |`,
        );
      } finally {
        await stop(server);
      }
    }
  }
}

try {
  execFileSync("cc", ["-O2", "-o", join(scratch, "echo_epoll"), `${ROOT}bench/reference/echo_epoll.c`]);
  execFileSync("cc", ["-O2", "-o", join(scratch, "bench_epoll"), `${ROOT}bench/reference/bench_epoll.c`]);
  console.log(
    `# --workers measurements (${new Date().toISOString()}, load average ${loadAverage()})`,
  );
  if (!values.only || values.only === "generator") await generatorCheck();
  if (!values.only || values.only === "servers") await serverWorkers();
  if (!values.only || values.only === "idle") await idleMemory();
  if (values.only === "node-share") await nodeShare();
} catch (error) {
  console.error(`bench_workers: ${error.message}`);
  process.exitCode = 1;
} finally {
  for (const child of live) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
}
