#!/usr/bin/env node
// Do reports to an HAProxy runtime API that never answers slow the gate's knocks? For each
// runtime, a gate is run twice: without --haproxy-runtime, and with two runtime APIs that never
// answer (a missing unix socket, and a TCP address nothing routes back from, whose connect hangs
// until the 5 s timeout). Meanwhile wrong knocks from rotating sources (127.0.1.1-250) get one
// source after another penalised, so reports keep piling up; `echogate bench --mode connect
// --knock` measures the welcome knocks of 127.0.0.1 alongside. Prints a markdown table.
//
//   node scripts/fleet_knocks.mjs [--duration S] [--runtimes node,deno,bun] [--reporting-first]
//   (after npm run build; the load and the gate share the machine, so compare runs in both orders)

import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import net from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const duration = Number(option("duration", "5"));
const runtimes = option("runtimes", "node,deno,bun").split(",");
const cli = {
  node: ["node", `${ROOT}npm/bin/echogate.mjs`],
  deno: [`${ROOT}node_modules/.bin/deno`, "run", "-A", `${ROOT}src/cli.ts`],
  bun: [`${ROOT}node_modules/.bin/bun`, `${ROOT}src/cli.ts`],
};
const run = promisify(execFile);
const UNREACHABLE = "unix:/tmp/echogate-fleet-knocks-missing.sock,10.255.255.1:9999";

function startGate(runtime, extra) {
  const [command, ...rest] = cli[runtime];
  const child = spawn(command, [
    ...rest,
    ...["gate", "serve", "--port", "0", "--penalty-exempt", "none", "--penalties", "authfail:1,min:0.5", ...extra],
  ], { env: { ...process.env, ECHOGATE_TOKEN: "s3cret" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stderr.on("data", (chunk) => (err += chunk));
  const port = new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /listening on \S+:(\d+)/.exec(out);
      if (match) (clearInterval(timer), resolve(Number(match[1])));
      if (child.exitCode !== null) (clearInterval(timer), reject(new Error(err)));
    }, 20);
  });
  return { child, port, stderr: () => err };
}

/** Wrong knocks, one source after another, until stopped; resolves with how many were sent. */
function penalise(port) {
  let stop = false;
  let sent = 0;
  const one = (i) =>
    new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress: `127.0.1.${1 + (i % 250)}` });
      socket.on("connect", () => socket.end("wrong"));
      socket.on("data", () => {});
      socket.on("close", resolve);
      socket.on("error", resolve);
    });
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      await one(i);
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return sent;
  })();
  return { stop: () => ((stop = true), done) };
}

/** `echogate bench --mode connect --knock` for --duration seconds: its JSON report (it exits 1 on errors, and still reports). */
async function bench(port) {
  const args = ["bench", "--mode", "connect", "--knock", "s3cret", "--port", String(port), "--conns", "32"];
  args.push("--duration", String(duration), "--json");
  const { stdout } = await run(cli.node[0], [cli.node[1], ...args]).catch((error) => error);
  return JSON.parse(stdout);
}

const rows = [];
for (const runtime of runtimes) {
  // --reporting-first: the other order, to see how much the order alone moves the figures.
  for (const reporting of args.includes("--reporting-first") ? [true, false] : [false, true]) {
    const gate = startGate(runtime, reporting ? ["--haproxy-runtime", UNREACHABLE, "--haproxy-table", "t"] : []);
    const port = await gate.port;
    const load = penalise(port);
    const report = await bench(port);
    const wrong = await load.stop();
    gate.child.kill("SIGTERM");
    const failures = (gate.stderr().match(/HAProxy runtime API/g) ?? []).length;
    rows.push([
      runtime,
      reporting ? "2, never answering" : "none",
      Math.round(report.opsPerS),
      report.latencyMs?.p50,
      report.latencyMs?.p99,
      report.errors ?? 0,
      wrong,
      reporting ? failures : "-",
    ]);
    await new Promise((resolve) => gate.child.once("close", resolve));
  }
}
console.log(
  "| runtime | runtime APIs | welcome knocks/s | p50 ms | p99 ms | errors | wrong knocks sent (127.0.1.1-250) | failure lines |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
