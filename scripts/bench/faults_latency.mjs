// How accurately a latency toxic delays: round trips through an `echogate faults` proxy at a
// fixed rate, without the toxic and with it, in alternating order each round; the toxic's added
// time at each percentile is the difference. The upstream is bench/baseline/node.mjs (raw echo),
// the generator `echogate bench` (pingpong, latency from each message's slot, so coordinated
// omission is corrected), both on Node, the fault proxy on each runtime in turn. Prints a
// Markdown table (per runtime and round, then min/median/max over rounds); --out writes it too.
//
//   node scripts/bench/faults_latency.mjs [--runtimes node,deno,bun] [--rounds 3] [--seconds 10]
//        [--rate 1000] [--latency 100] [--conns 200] [--out FILE]
//
// Node runs echogate from npm/ (run `npm run build` first).

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { parseCommandLine } from "../_args.mjs";
import { killGroup } from "../_proc.mjs";

const { values } = parseCommandLine(
  "faults_latency",
  "Usage: node scripts/bench/faults_latency.mjs [--runtimes node,deno,bun] [--rounds 3] [--seconds 10]\n" +
    "       [--rate 1000] [--latency 100] [--conns 200] [--out FILE]",
  {
    strings: {
      runtimes: "node,deno,bun",
      rounds: "3",
      seconds: "10",
      rate: "1000",
      latency: "100",
      conns: "200",
      out: "",
    },
  },
);
const ROOT = new URL("../..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");
const RUNTIMES = values.runtimes.split(",");
const ROUNDS = Number(values.rounds);
const LATENCY = Number(values.latency);
const PERCENTILES = ["p50", "p90", "p99", "p999", "max"];
const scratch = mkdtempSync(join(tmpdir(), "faults-latency-"));
const children = new Set();

function cli(runtime) {
  if (runtime === "node") return ["node", join(ROOT, "npm/bin/echogate.mjs")];
  if (runtime === "deno") return [join(BIN, "deno"), "run", "-A", join(ROOT, "src/cli.ts")];
  return [join(BIN, "bun"), join(ROOT, "src/cli.ts")];
}

/** Starts `command` (output to a file); resolves to its process and the HOST:PORT after `pattern`. */
async function start(name, command, pattern) {
  const log = join(scratch, `${name}.log`);
  const child = spawn("bash", ["-c", `exec "$@" >"${log}" 2>&1`, "bash", ...command], {
    stdio: "ignore",
    detached: true,
  });
  children.add(child);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const output = existsSync(log) ? readFileSync(log, "utf8") : "";
    const address = pattern.exec(output)?.[1];
    if (address) return { child, address };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${name} did not start: ${readFileSync(log, "utf8").trim()}`);
}

function stop(child) {
  killGroup(child.pid);
  children.delete(child);
}

/** One `echogate bench` run against `port` at the set rate; resolves to its latency percentiles (ms). */
function generate(port, seconds) {
  const args = ["bench", "127.0.0.1", "--port", String(port), "--mode", "pingpong", "--prefix", "", "--size", "64"];
  args.push("--conns", values.conns, "--rate", values.rate, "--duration", String(seconds), "--json");
  return new Promise((resolve, reject) => {
    const child = spawn("node", [join(ROOT, "npm/bin/echogate.mjs"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("close", (code) => {
      try {
        const report = JSON.parse(out);
        resolve({ latency: report.latencyMs, ops: report.opsPerS, errors: report.errors });
      } catch {
        reject(new Error(`bench exited ${code}: ${err.trim()}`));
      }
    });
  });
}

async function api(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "user-agent": "faults_latency" },
    ...(body && { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.status === 204 ? undefined : response.json();
}

const fmt = (ms) => ms.toFixed(2);
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

async function main() {
  const upstream = await start(
    "upstream",
    ["node", join(ROOT, "bench/baseline/node.mjs"), "echo", "--mode", "raw"],
    /listening on (\S+)/,
  );
  const lines = [
    `Latency toxic of ${LATENCY} ms (downstream), pingpong of 64-byte messages at ${values.rate}/s over ${values.conns} ` +
    `connections, ${values.seconds} s per run, ${ROUNDS} rounds (order alternating); ${new Date().toISOString()}.`,
    "",
    `| runtime | round | ${PERCENTILES.map((p) => `${p} without`).join(" | ")} | ${
      PERCENTILES.map((p) => `${p} with`).join(" | ")
    } | ${PERCENTILES.map((p) => `${p} added`).join(" | ")} |`,
    `|${" --- |".repeat(2 + PERCENTILES.length * 3)}`,
  ];
  const summary = [];
  for (const runtime of RUNTIMES) {
    const faults = await start(`faults-${runtime}`, [...cli(runtime), "faults", "--port", "0"], /listening on (\S+)/);
    const base = `http://${faults.address}`;
    const proxy = await api(base, "POST", "/proxies", {
      name: "bench",
      listen: "127.0.0.1:0",
      upstream: upstream.address,
    });
    const port = Number(proxy.listen.split(":").at(-1));
    await generate(port, 1); // warm up
    const added = [];
    for (let round = 0; round < ROUNDS; round++) {
      const result = {};
      for (const withToxic of round % 2 ? [true, false] : [false, true]) {
        if (withToxic) {
          await api(base, "POST", "/proxies/bench/toxics", { type: "latency", attributes: { latency: LATENCY } });
        }
        result[withToxic ? "with" : "without"] = await generate(port, Number(values.seconds));
        if (withToxic) await api(base, "DELETE", "/proxies/bench/toxics/latency_downstream");
      }
      const diff = PERCENTILES.map((p) => result.with.latency[p] - result.without.latency[p]);
      added.push(diff);
      lines.push(
        `| ${runtime} | ${round + 1} | ${PERCENTILES.map((p) => fmt(result.without.latency[p])).join(" | ")} | ${
          PERCENTILES.map((p) => fmt(result.with.latency[p])).join(" | ")
        } | ${diff.map(fmt).join(" | ")} |`,
      );
      console.log(lines.at(-1), `(ops/s ${Math.round(result.without.ops)} / ${Math.round(result.with.ops)})`);
    }
    const p99 = added.map((diff) => diff[PERCENTILES.indexOf("p99")] - LATENCY);
    summary.push(
      `| ${runtime} | ${fmt(Math.min(...p99))} | ${fmt(median(p99))} | ${fmt(Math.max(...p99))} |`,
    );
    stop(faults.child);
  }
  stop(upstream.child);
  lines.push(
    "",
    `p99 added minus ${LATENCY} ms over the rounds (the goal: within ±2 ms):`,
    "",
    "| runtime | min | median | max |",
    "| --- | --- | --- | --- |",
    ...summary,
  );
  const text = lines.join("\n") + "\n";
  console.log(`\n${text}`);
  if (values.out) writeFileSync(values.out, text);
}

try {
  await main();
} catch (error) {
  console.error(`faults_latency: ${error.message}`);
  process.exitCode = 1;
} finally {
  for (const child of children) stop(child);
  rmSync(scratch, { recursive: true, force: true });
}
