// The gate's token check alone: nanoseconds per check of createTokenMatcher() from the built
// package (npm/), by token count and by candidate (a match, a miss at the first or the last of
// 1024 bytes, a short miss), on whichever runtime runs this script. With --echogate DIR, the same
// for another built checkout beside this one, measured in alternating rounds (e.g. before a change).
//
//   npm run build && node scripts/bench/token.mjs [--echogate DIR] [--rounds 7]
//   node_modules/.bin/deno run -A scripts/bench/token.mjs      node_modules/.bin/bun scripts/bench/token.mjs
//
// Prints a markdown table: the median over rounds of the mean CPU time per check in each round
// (CPU time, so that a loaded machine stretches the figures less than wall time would).

import { resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseCommandLine } from "../_args.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseCommandLine(
  "bench_token",
  "Usage: node scripts/bench/token.mjs [--echogate DIR] [--rounds 7] [--ms 200]   (or under deno run -A, or bun)",
  {
    strings: {
      echogate: undefined,
      rounds: "7",
      ms: "200",
    },
  },
);
const ROUNDS = Number(values.rounds);
const MS = Number(values.ms);

async function load(dir) {
  const module = await import(pathToFileURL(resolve(dir, "npm/esm/src/mod.js")).href);
  return module.createTokenMatcher;
}
const implementations = [["this checkout", await load(ROOT)]];
if (values.echogate) implementations.unshift([`--echogate ${values.echogate}`, await load(values.echogate)]);

const encoder = new TextEncoder();
const long = "k".repeat(1024);
const lastDiffers = encoder.encode("k".repeat(1023) + "x");
const firstDiffers = encoder.encode("x" + "k".repeat(1023));
const CANDIDATES = [
  ["match (1024 B)", encoder.encode(long)],
  ["miss at byte 0 of 1024", firstDiffers],
  ["miss at byte 1023 of 1024", lastDiffers],
  ["short miss (6 B)", encoder.encode("guess!")],
];
const TOKEN_COUNTS = [1, 10, 100];

/** CPU microseconds this process has used: unlike wall time, not inflated when others hold the core. */
function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Mean CPU ns per call of `check(candidate)` over about MS milliseconds of CPU time. */
function time(check, candidate) {
  let calls = 0;
  let sink = 0;
  const started = cpuMicros();
  let elapsed = 0;
  while (elapsed < MS * 1000) {
    for (let i = 0; i < 1000; i++) sink += check(candidate) ? 1 : 0;
    calls += 1000;
    elapsed = cpuMicros() - started;
  }
  if (sink < 0) console.log(sink); // keeps the calls observable
  return (elapsed * 1000) / calls;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runtime = typeof Deno !== "undefined"
  ? `deno ${Deno.version.deno}`
  : typeof Bun !== "undefined"
  ? `bun ${Bun.version}`
  : `node ${process.version}`;

const rows = [];
for (const count of TOKEN_COUNTS) {
  // The last token is the 1024-byte one the candidates are made from; the others are random.
  const tokens = Array.from({ length: count - 1 }, (_, i) => `token-${i}-${Math.random().toString(36).slice(2)}`);
  tokens.push(long);
  const checks = implementations.map(([name, create]) => [name, create(tokens)]);
  for (const [label, candidate] of CANDIDATES) {
    const samples = checks.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? checks.keys() : [...checks.keys()].reverse();
      for (const index of order) samples[index].push(time(checks[index][1], candidate));
    }
    rows.push([String(count), label, ...samples.map((s) => median(s).toFixed(0))]);
  }
}

const header = ["tokens", "candidate", ...implementations.map(([name]) => `${name} (CPU ns/check)`)];
console.log(`${runtime}, ${ROUNDS} rounds of ${MS} ms CPU time per cell\n`);
console.log(`| ${header.join(" | ")} |`);
console.log(`| ${header.map(() => "---").join(" | ")} |`);
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
