// Server CPU per operation of a fault proxy with no toxics, next to the runtime's own pass-through
// forwarder (bench/baseline/forward_*) and, with --root, echogate from another checkout: long-lived
// servers on CPU 0, each loaded in turn (rounds interleaved, the order reversed every round) by
// `echogate bench --conns 1 --prefix ""` (pingpong of 64 bytes, or a 64 KiB stream) on CPU 1,
// against a raw echo upstream there (the C reference). CPU is utime + stime from /proc before and
// after each run, divided by the operations served: steadier than throughput on a shared machine.
//
//   npm run build && node scripts/bench/faults_cpu.mjs [--runtime node|bun|deno] [--mode pingpong|stream]
//     [--seconds 5] [--rounds 4] [--root DIR]
//
// --root adds echogate from another checkout (built, for node) as a third server ("before").

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommandLine } from "../_args.mjs";
import { cpuTimes, killGroup } from "../_proc.mjs";
import { runJson } from "./_json_child.mjs";

const HERE = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseCommandLine(
  "bench_faults_cpu",
  "Usage: node scripts/bench/faults_cpu.mjs [--runtime node|bun|deno] [--mode pingpong|stream] [--seconds 5] " +
    "[--rounds 4] [--root DIR]",
  { strings: { runtime: "node", mode: "pingpong", seconds: "5", rounds: "4", root: "" } },
);
const RUNTIME = values.runtime;
const MODE = values.mode;
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const BUN = join(HERE, "node_modules/.bin/bun");
const DENO = join(HERE, "node_modules/.bin/deno");
const scratch = mkdtempSync(join(tmpdir(), "echogate-faults-cpu-"));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const run = (runtime, script) =>
  runtime === "node" ? ["node", script] : runtime === "bun" ? [BUN, script] : [DENO, "run", "-A", script];
const cli = (runtime, root) => run(runtime, join(root, runtime === "node" ? "npm/bin/echogate.mjs" : "src/cli.ts"));

async function start(name, cpu, command, pattern) {
  const log = join(scratch, `${name}.log`);
  const child = spawn("bash", ["-c", `exec "$@" >"${log}" 2>&1`, "bash", "taskset", "-c", cpu, ...command], {
    stdio: "ignore",
    detached: true,
  });
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    await sleep(100);
    const port = pattern.exec(existsSync(log) ? readFileSync(log, "utf8") : "")?.[1];
    if (port) return { name, pid: child.pid, port };
  }
  throw new Error(`${name} did not start: ${existsSync(log) ? readFileSync(log, "utf8") : ""}`);
}

function load(server, seconds) {
  const command = ["taskset", "-c", "1", ...cli("bun", HERE), "bench", "127.0.0.1", "--port", server.port];
  command.push("--mode", MODE, "--prefix", "", "--conns", "1", "--size", MODE === "stream" ? "65536" : "64");
  command.push("--duration", String(seconds), "--json");
  return runJson(command);
}

const servers = [];
try {
  const echo = join(scratch, "echo_epoll");
  execFileSync("cc", ["-O2", "-o", echo, join(HERE, "bench/reference/echo_epoll.c")]);
  const upstream = await start("upstream", "1", [echo, ""], /listening on \S+:(\d+)/);
  servers.push(upstream);
  const address = `127.0.0.1:${upstream.port}`;
  const config = join(scratch, "faults.json");
  writeFileSync(config, JSON.stringify([{ name: "bench", listen: "127.0.0.1:0", upstream: address }]));
  const file = { node: "forward_node.mjs", deno: "forward_deno.ts", bun: "forward_bun.ts" }[RUNTIME];
  const forwarder = [...run(RUNTIME, join(HERE, "bench/baseline", file)), "forward", "--upstream", address];
  const proxied = /"event":"proxy-created".*?"listen":"[^"]*:(\d+)"/;
  const faults = (root) => [...cli(RUNTIME, root), "faults", "--port", "0", "--json", "--config", config];
  const measured = [await start("forwarder", "0", forwarder, /listening on \S+:(\d+)/)];
  if (values.root) measured.push(await start("before", "0", faults(values.root), proxied));
  measured.push(await start("after", "0", faults(HERE), proxied));
  servers.push(...measured);
  for (const server of measured) await load(server, 2); // warm-up
  const perOp = Object.fromEntries(measured.map((server) => [server.name, []]));
  const rate = Object.fromEntries(measured.map((server) => [server.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const server of round % 2 === 0 ? measured : [...measured].reverse()) {
      const before = cpuTimes(server.pid);
      const report = await load(server, SECONDS);
      const after = cpuTimes(server.pid);
      const us = (after.user - before.user + after.system - before.system) * 1e6 / report.operations;
      perOp[server.name].push(us);
      rate[server.name].push(report.opsPerS);
      console.log(
        `round ${round} ${server.name}: ${report.operations} ops (${Math.round(report.opsPerS)}/s, ` +
          `${report.errors} errors), ${us.toFixed(2)} µs/op`,
      );
    }
  }
  const median = (list) => [...list].sort((a, b) => a - b)[list.length >> 1];
  const spread = (list) => [Math.min(...list), median(list), Math.max(...list)];
  const fmt = (list, digits) => spread(list).map((value) => value.toFixed(digits)).join(" / ");
  for (const server of measured) {
    const ratios = perOp.forwarder.map((base, i) => base / perOp[server.name][i]);
    console.log(
      `${RUNTIME} ${MODE} ${server.name}: µs/op min/median/max ${fmt(perOp[server.name], 2)}; ` +
        `ops/s ${fmt(rate[server.name], 0)}; cpu ratio forwarder/${server.name} ${fmt(ratios, 3)}`,
    );
  }
} finally {
  for (const server of servers) killGroup(server.pid);
  rmSync(scratch, { recursive: true, force: true });
}
