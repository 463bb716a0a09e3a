// Runs everything CI checks, in order, then prints the sum as one line: "N passed, N failed".
// Exits non-zero if anything failed.
//
//   1. the npm build (scripts/build_npm.ts), counted as one check: the node CLI tests run its output;
//   2. static checks, one each: deno fmt --check, deno lint, deno doc --lint, deno test --doc,
//      deno publish --dry-run;
//   3. the one test suite (test/*.test.ts) on node, bun and deno, then on Node 22, 24 and 26
//      (node22, node24, node26: binaries from npm, see scripts/node_matrix.mjs);
//   4. the packed package (scripts/test_pack.mjs): npx, bunx, deno npm:, ESM, CJS, publint, attw,
//      on the machine's Node; on each of node22, node24, node26 the checks that depend on the Node
//      (engine-strict install, ESM, CJS, the adapter by condition, npx);
//   5. no process the run started is left running (one check; leftovers are listed and killed).
//
//   npm test                              all of it
//   npm test -- test/gate.test.ts         only some test files, on node, bun and deno (skips the static
//                                         and pack checks and the extra Nodes)
//   ECHOGATE_RUNTIMES=deno npm test       some runtimes only (node22, node24, node26 too)

import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { killQuietly, leftoverProcesses, taggedProcesses, TEST_RUN_VARIABLE } from "./_leftovers.mjs";
import { ensureNode, envWithNode, NODE_MATRIX } from "./node_matrix.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = `${root}node_modules/.bin`;
const results = `${root}.test-results`;
const files = process.argv.slice(2);
const NODE_MAJORS = Object.keys(NODE_MATRIX); // node22, node24, node26
// Some test files only: the three runtimes, for a quick loop; everything: the Node majors too.
const runtimeList = process.env.ECHOGATE_RUNTIMES ??
  ["node", "bun", "deno", ...(files.length === 0 ? NODE_MAJORS : [])].join(",");
const runtimes = runtimeList.split(",").map((s) => s.trim()).filter(Boolean);
const everything = files.length === 0 && process.env.ECHOGATE_RUNTIMES === undefined;
const EXPORTS = [
  "adapters/mod.ts",
  "src/mod.ts",
  "src/cli.ts",
  "adapters/node.ts",
  "adapters/deno.ts",
  "adapters/bun.ts",
];
const STATIC_CHECKS = [
  ["deno fmt --check", ["fmt", "--check"]],
  ["deno lint", ["lint"]],
  ["deno doc --lint (every export documented)", ["doc", "--lint", ...EXPORTS]],
  ["deno test --doc (every example type-checks and runs)", ["test", "--doc", "--allow-all", "src/", "adapters/"]],
  ["deno publish --dry-run", ["publish", "--dry-run", "--allow-dirty"]],
];

// Tags every process of this run (inherited by their children) for the leftover check.
const runId = `${process.pid}-${Date.now()}`;
// Stopped from outside (Ctrl-C, a CI timeout): take everything the run started down with us.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    for (const { pid } of taggedProcesses(runId)) killQuietly(pid);
    process.exit(128 + { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal]);
  });
}

/** Runs a command with output shown live and captured; resolves with exit code and output. */
function run(command, args, env = process.env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...env, FORCE_COLOR: "0", [TEST_RUN_VARIABLE]: runId },
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk, process.stdout.write(chunk)));
    child.stderr.on("data", (chunk) => (output += chunk, process.stderr.write(chunk)));
    child.on("error", (error) => resolve({ code: 1, output: String(error) }));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

function vitestCounts(jsonPath) {
  try {
    const report = JSON.parse(readFileSync(jsonPath, "utf8"));
    return { passed: report.numPassedTests, failed: report.numFailedTests };
  } catch {
    return { passed: 0, failed: 0 };
  }
}

/** Runs vitest under `launcher` (node, or deno) and reads the counts from its JSON report. */
async function vitestSuite(name, launcher, env) {
  const out = `${results}/${name}.json`;
  const reporters = ["--reporter=default", "--reporter=json", `--outputFile.json=${out}`];
  const { code } = await run(launcher[0], [...launcher.slice(1), vitest, "run", ...reporters, ...files], env);
  return { code, ...vitestCounts(out) };
}

/**
 * Node `name` (node22, ...) from the cache, installed on first use, and an environment that puts
 * it first on PATH: the suite's child processes (`node npm/bin/echogate.mjs`, `npx`) run on it too.
 * Resolves to undefined, with the reason printed, where it cannot be installed.
 */
function matrixNode(name) {
  try {
    const node = ensureNode(name);
    return { node, env: envWithNode(node) };
  } catch (error) {
    console.log(`${name}: cannot run: ${error.message}`);
    return undefined;
  }
}

const vitest = `${root}node_modules/vitest/vitest.mjs`;
const suites = {
  node: () => vitestSuite("node", ["node"]),
  deno: () => vitestSuite("deno", [`${bin}/deno`, "run", "-A"]),
  // bun runs the same files with its own runner, which maps `vitest` imports onto bun:test.
  bun: async () => {
    const { code, output } = await run(`${bin}/bun`, [
      "test",
      "--timeout",
      "30000",
      ...(files.length ? files.map((f) => `./${f}`) : ["./test"]),
    ]);
    const passed = Number(/^\s*(\d+) pass\s*$/m.exec(output)?.[1] ?? 0);
    const failed = Number(/^\s*(\d+) fail\s*$/m.exec(output)?.[1] ?? 0);
    return { code, passed, failed };
  },
};
for (const name of NODE_MAJORS) {
  suites[name] = async () => {
    const found = matrixNode(name);
    if (!found) return { code: 1, passed: 0, failed: 0 };
    return await vitestSuite(name, [found.node], found.env);
  };
}

rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

let passed = 0;
let failed = 0;
const summary = [];
const build = await run(`${bin}/deno`, ["run", "-A", `${root}scripts/build_npm.ts`]);
if (build.code !== 0) {
  failed++;
  summary.push("build: failed");
} else {
  passed++;
  summary.push("build: passed");
  if (everything) {
    for (const [name, args] of STATIC_CHECKS) {
      console.log(`\n=== ${name} ===`);
      const { code } = await run(`${bin}/deno`, args);
      if (code === 0) passed++;
      else failed++;
      summary.push(`${name}: ${code === 0 ? "passed" : "failed"}`);
    }
  }
  for (const runtime of runtimes) {
    const suite = suites[runtime];
    if (!suite) {
      console.error(`Unknown runtime "${runtime}" in ECHOGATE_RUNTIMES`);
      process.exit(2);
    }
    console.log(`\n=== ${runtime}${NODE_MATRIX[runtime] ? ` (Node ${NODE_MATRIX[runtime]})` : ""} ===`);
    const result = await suite();
    // A runner that fails without counting a failed test (crash, unhandled error) still fails the run.
    const runnerFailed = result.code !== 0 && result.failed === 0 ? 1 : 0;
    passed += result.passed;
    failed += result.failed + runnerFailed;
    summary.push(
      `${runtime}: ${result.passed} passed, ${result.failed} failed${
        runnerFailed ? " (runner exited " + result.code + ")" : ""
      }`,
    );
  }
  if (everything) {
    for (const name of ["node", ...NODE_MAJORS]) {
      const label = name === "node" ? "pack" : `pack ${name}`;
      console.log(`\n=== ${label} ===`);
      const found = name === "node" ? { node: "node", env: process.env } : matrixNode(name);
      // The extra Nodes rerun only the checks that depend on the Node (install, ESM, CJS, npx, adapter).
      const env = name === "node" ? found?.env : { ...found?.env, ECHOGATE_PACK_NODE_ONLY: "1" };
      const { code, output } = found
        ? await run(found.node, [`${root}scripts/test_pack.mjs`], env)
        : { code: 1, output: "" };
      const counts = /^(\d+) passed, (\d+) failed$/m.exec(output);
      const packPassed = Number(counts?.[1] ?? 0);
      const packFailed = Number(counts?.[2] ?? 0) + (code !== 0 && !Number(counts?.[2] ?? 0) ? 1 : 0);
      passed += packPassed;
      failed += packFailed;
      summary.push(`${label}: ${packPassed} passed, ${packFailed} failed`);
    }
  }
}
const leftovers = await leftoverProcesses(runId);
if (leftovers === undefined) summary.push("leftover processes: not checked (no /proc)");
else if (leftovers.length === 0) {
  passed++;
  summary.push("leftover processes: none");
} else {
  failed++;
  summary.push(`leftover processes: ${leftovers.length} still running after the run (killed now):`);
  for (const { pid, command } of leftovers) summary.push(`  ${pid} ${command}`);
}
console.log(`\n${summary.join("\n")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
