// The server's CPU time per connection in the connect-proxy cell's setting, in steady state:
// two long-lived gates on CPU 0, one without --proxy-protocol (A) and one with it (B), loaded in
// turn (ABBA...) by `echogate bench --mode connect --knock 1 --conns 32` on CPU 1 (with
// `--proxy-header v2` for B), each run `--seconds` long after a 3 s warm-up of both. CPU is
// utime + stime of the server from /proc before and after each run, divided by the connections
// it served. `--rate 0` (the default) runs at saturation, as the cell does; `--rate R` holds both
// at R conns/s, so both servers do the same work per second. Take the bench lock:
//
//   npm run build && flock /tmp/bench.lock node scripts/bench/proxy_cpu.mjs [--runtime node|bun|deno]
//     [--rate 0] [--seconds 10] [--rounds 4] [--root DIR]
//
// --root runs the gates from another checkout (built, for node); the generator stays this one's (bun).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommandLine } from "../_args.mjs";
import { cpuTimes, killGroup } from "../_proc.mjs";
import { runJson } from "./_json_child.mjs";

const HERE = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseCommandLine(
  "bench_proxy_cpu",
  "Usage: node scripts/bench/proxy_cpu.mjs [--runtime node|bun|deno] [--rate 0] [--seconds 10] [--rounds 4] [--root DIR]",
  {
    strings: {
      runtime: "node",
      rate: "0",
      seconds: "10",
      rounds: "4",
      root: HERE,
    },
  },
);
const RUNTIME = values.runtime;
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const ROOT = values.root;
const BUN = join(HERE, "node_modules/.bin/bun");
const DENO = join(HERE, "node_modules/.bin/deno");
const scratch = mkdtempSync(join(tmpdir(), "echogate-proxy-cpu-"));

const cli = (runtime, root) =>
  runtime === "node"
    ? ["node", join(root, "npm/bin/echogate.mjs")]
    : runtime === "bun"
    ? [BUN, join(root, "src/cli.ts")]
    : [DENO, "run", "-A", join(root, "src/cli.ts")];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function startGate(name, proxy) {
  const log = join(scratch, `${name}.log`);
  const command = ["taskset", "-c", "0", ...cli(RUNTIME, ROOT), "gate", "serve", "--port", "0"];
  if (proxy) command.push("--proxy-protocol");
  const child = spawn("bash", ["-c", `exec "$@" >"${log}" 2>&1`, "bash", ...command], {
    stdio: "ignore",
    detached: true,
  });
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    await sleep(100);
    const port = /listening on \S+:(\d+)/.exec(existsSync(log) ? readFileSync(log, "utf8") : "")?.[1];
    if (port) return { name, proxy, pid: child.pid, port };
  }
  throw new Error(`${name} did not start`);
}

function load(gate, seconds) {
  const command = ["taskset", "-c", "1", ...cli("bun", HERE), "bench", "127.0.0.1", "--port", gate.port];
  command.push("--mode", "connect", "--knock", "1", "--conns", "32", "--duration", String(seconds), "--json");
  if (RATE > 0) command.push("--rate", String(RATE));
  if (gate.proxy) command.push("--proxy-header", "v2");
  return runJson(command);
}

const gates = [await startGate("A", false), await startGate("B", true)];
try {
  for (const gate of gates) await load(gate, 3); // warm-up
  const perConn = { A: [], B: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const gate of round % 2 === 0 ? gates : [...gates].reverse()) {
      const before = cpuTimes(gate.pid);
      const report = await load(gate, SECONDS);
      const after = cpuTimes(gate.pid);
      const us = (seconds) => seconds * 1e6 / report.operations;
      const user = us(after.user - before.user);
      const system = us(after.system - before.system);
      perConn[gate.name].push(user + system);
      console.log(
        `round ${round} ${gate.name} (${gate.proxy ? "with" : "without"} --proxy-protocol): ` +
          `${report.operations} conns (${Math.round(report.opsPerS)}/s, ${report.errors} errors), ` +
          `${(user + system).toFixed(1)} µs/conn (user ${user.toFixed(1)}, system ${system.toFixed(1)})`,
      );
    }
  }
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
  const ratios = perConn.A.map((a, i) => (a / perConn.B[i]).toFixed(3));
  console.log(
    `${RUNTIME}: median ${median(perConn.A).toFixed(1)} µs/conn without, ${median(perConn.B).toFixed(1)} with; ` +
      `cpu ratio (without / with) ${(median(perConn.A) / median(perConn.B)).toFixed(3)}, per round ${ratios.join(" ")}`,
  );
} finally {
  for (const gate of gates) killGroup(gate.pid);
  rmSync(scratch, { recursive: true, force: true });
}
