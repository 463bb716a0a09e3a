// Measuring: one run of the generator, a fresh server per measurement, idle memory, and a cell's ABBA rounds.

import { execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  FD_LIMIT,
  GENERATOR,
  IDLE_CONNS,
  IDLE_SETTLE_SECONDS,
  ROOT,
  ROUNDS,
  SECONDS,
  WARMUP_SECONDS,
} from "./options.mjs";
import {
  cpuSeconds,
  GENERATOR_CPUS,
  hasCommand,
  kill,
  live,
  pinned,
  rssBytes,
  runGenerator,
  scratch,
  sleep,
  startServer,
} from "./processes.mjs";
import { baselineCommand, echogateCommand, SCENARIOS } from "./scenarios.mjs";
import { format, median, percent } from "./report.mjs";

/** One throughput measurement of a running server. */
export async function measureThroughput(server, scenario, seconds) {
  const before = cpuSeconds(server.pid);
  const run = await runGenerator([...scenario.generator, "--port", String(server.port), "--duration", String(seconds)]);
  const serverCpuS = cpuSeconds(server.pid) - before;
  const { report } = run;
  // CPU seconds the server spent per operation: the cost the generator cannot hide.
  const serverCpuPerOpUs = report.operations > 0 ? (serverCpuS / report.operations) * 1e6 : NaN;
  // A cell held at a rate is only valid while the server keeps it.
  const rateMissed = scenario.rate !== undefined && report.opsPerS < 0.97 * scenario.rate;
  return {
    server: server.name,
    value: scenario.value(report, serverCpuPerOpUs),
    operations: report.operations,
    durationS: report.durationS,
    errors: report.errors + (rateMissed ? 1 : 0),
    mismatches: report.mismatches,
    firstProblem: report.firstMismatch ?? report.firstError ??
      (rateMissed ? `held ${Math.round(report.opsPerS)} of ${scenario.rate} ops/s` : undefined),
    // UDP: datagrams never echoed (the TCP report has no such field).
    ...(report.lost === undefined ? {} : { lost: report.lost, lossRate: report.lossRate }),
    latencyMs: report.latencyMs,
    serverCpuS,
    serverCpuPerOpUs,
    generatorCpuShare: run.cpuS / run.wallS,
  };
}

/**
 * One throughput measurement of a freshly started server, warmed up first (JIT, buffers) by a
 * short discarded run. A fresh process per measurement: on node, one server process can stay
 * in a fast or a slow state for its whole life (stream figures differ 3x between processes of
 * the same program), so reusing processes across rounds would turn that into a bias.
 */
export async function measureFresh(name, command, scenario) {
  const server = await startServer(name, command);
  try {
    await measureThroughput(server, scenario, WARMUP_SECONDS);
    return await measureThroughput(server, scenario, SECONDS);
  } finally {
    await server.stop();
  }
}

/** One idle-memory measurement: a fresh server, warmed, then IDLE_CONNS held connections. */
export async function measureIdle(name, command) {
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
        ...pinned(GENERATOR_CPUS, ["node", join(ROOT, "scripts/bench/hold.mjs")]),
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

/**
 * One cell: baseline (A), its copy (A') and echogate (B), `ROUNDS` rounds in the orders
 * A B A' / A' B A / ... Ratios are B/A and A'/A per round; for idle memory, A/B (higher is better).
 */
export async function runCell(runtime, name) {
  const upstream = SCENARIOS[name].upstream ? await startUpstream() : undefined;
  try {
    return await measureCell(runtime, name, upstream);
  } finally {
    await upstream?.stop();
  }
}

/**
 * The faults cells' upstream: a raw echo server on the generator's CPUs (the C reference, not
 * spinning, or bench/baseline/node.mjs without a compiler), and a config file with one proxy to it.
 */
async function startUpstream() {
  let command = ["node", join(ROOT, "bench/baseline/node.mjs"), "echo", "--mode", "raw"];
  if (hasCommand("cc")) {
    const binary = join(scratch, "echo_epoll");
    execFileSync("cc", ["-O2", "-o", binary, join(ROOT, "bench/reference/echo_epoll.c")]);
    command = [binary, ""];
  }
  const server = await startServer("upstream", pinned(GENERATOR_CPUS, command));
  const address = `127.0.0.1:${server.port}`;
  const config = join(scratch, "faults.json");
  writeFileSync(config, JSON.stringify([{ name: "bench", listen: "127.0.0.1:0", upstream: address }]));
  return { ...server, address, config };
}

async function measureCell(runtime, name, upstream) {
  const scenario = SCENARIOS[name];
  const fill = (command) =>
    upstream
      ? command.map((arg) => arg.replaceAll("{upstream}", upstream.address).replaceAll("{config}", upstream.config))
      : command;
  // A scenario with a `reference` compares echogate with echogate run another way, not with the baseline.
  const reference = scenario.referenceCommand ??
    (scenario.reference
      ? echogateCommand(runtime, scenario.reference.echogate)
      : baselineCommand(runtime, scenario.baseline, scenario));
  const commands = {
    baseline: fill(reference),
    copy: fill(reference),
    echogate: fill(echogateCommand(runtime, scenario.echogate, scenario)),
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
  // Throughput: echogate / baseline (higher is better); a cost: baseline / echogate (the same
  // sense). Idle memory is near zero for some servers, so there the difference echogate -
  // baseline is reported instead, in KiB.
  const ratio = (a, b) => (name === "idle" ? b - a : scenario.cost ? a / b : b / a);
  const problems = rounds.flatMap((r) => Object.values(r)).filter((m) => m.errors > 0 || m.mismatches > 0);
  return {
    runtime,
    scenario: name,
    unit: scenario.unit,
    cost: scenario.cost === true,
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
export async function checkGenerator() {
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
