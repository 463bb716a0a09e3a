// Measures `--workers` (docs/workers.md): the load generator against the C one, servers with
// 1, 2 and more workers, and the idle memory per connection with workers.
//
//   node scripts/bench_workers.mjs [--seconds 3] [--rounds 3] [--runtimes node,bun,deno] [--idle 2000]
//       [--only generator|servers|idle]
//
// Needs `npm run build` (node runs the built package), cc and taskset. Placement on a 2-core
// machine: a server on CPU 0 and every generator on CPU 1 for the generator check; for the
// servers, the C generator on CPU 1 and the server's workers free to use both CPUs.
// Each figure is the median of --rounds runs, the runs of a table interleaved.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "3" },
    runtimes: { type: "string", default: "node,bun,deno" },
    idle: { type: "string", default: "2000" },
    only: { type: "string" },
  },
});
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

function rssKiB(pid) {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
function tree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(
      Number,
    );
  } catch {
    // gone
  }
  return [pid, ...children.flatMap(tree)];
}
const treeRss = (pid) => tree(pid).reduce((sum, p) => sum + rssKiB(p), 0);

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
    `# --workers measurements (${new Date().toISOString()}, load average ${
      readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
    })`,
  );
  if (!values.only || values.only === "generator") await generatorCheck();
  if (!values.only || values.only === "servers") await serverWorkers();
  if (!values.only || values.only === "idle") await idleMemory();
} catch (error) {
  console.error(`bench_workers: ${error.message}`);
  process.exitCode = 1;
} finally {
  for (const child of live) child.kill("SIGKILL");
  rmSync(scratch, { recursive: true, force: true });
}
