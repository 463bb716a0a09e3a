// The processes of a run: servers pinned to their CPU, the load generator, and what /proc says of them.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { killGroup, rssKiB } from "../_proc.mjs";
import { BUN, DENO, FD_LIMIT, GENERATOR, options, ROOT } from "./options.mjs";

export const CPU_COUNT = cpus().length;
export const PIN = !options["no-pin"] && CPU_COUNT >= 2 && hasCommand("taskset");
export const SERVER_CPUS = "0";
export const GENERATOR_CPUS = CPU_COUNT > 2 ? `1-${CPU_COUNT - 1}` : "1";
export const scratch = mkdtempSync(join(tmpdir(), "echogate-bench-"));
export const live = new Set(); // child processes to kill on exit

export function hasCommand(name) {
  try {
    execFileSync("bash", ["-c", `command -v ${name}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Kills a child started with `detached: true` and everything in its process group. */
export function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  killGroup(child.pid);
}

export function pinned(cpuList, command) {
  return PIN ? ["taskset", "-c", cpuList, ...command] : command;
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export { cpuSeconds } from "../_proc.mjs";

/** Resident memory of a process in bytes, from /proc/<pid>/status VmRSS. */
export const rssBytes = (pid) => rssKiB(pid) * 1024;

export let serverCount = 0;
/**
 * Starts a server on the server CPU with a raised descriptor limit; its output goes to a file
 * (nothing has to read it, so logging costs it only its own writes). Resolves once it prints
 * "listening on HOST:PORT" (or, for the faults cells, the address of its proxy).
 */
export async function startServer(name, command) {
  const log = join(scratch, `server-${++serverCount}.log`);
  // exec: the pid we get is the server's own, for /proc.
  const child = spawn(
    "bash",
    ["-c", `ulimit -n ${FD_LIMIT} 2>/dev/null; exec "$@" >"${log}" 2>&1`, "bash", ...pinned(SERVER_CPUS, command)],
    { stdio: "ignore", detached: true },
  );
  live.add(child);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 30_000;
  while (true) {
    const output = existsSync(log) ? readFileSync(log, "utf8") : "";
    // "listening on HOST:PORT"; socat -d -d: "listening on AF=2 HOST:PORT"; echogate faults --json: its proxy's address.
    const address = /listening on (?:AF=\d+ )?(\S+)/.exec(output)?.[1] ??
      /"event":"proxy-created".*?"listen":"([^"]+)"/.exec(output)?.[1];
    if (address) {
      return {
        name,
        pid: child.pid,
        port: Number(/:(\d+)$/.exec(address)[1]),
        async stop() {
          kill(child);
          await exited;
          live.delete(child);
        },
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      kill(child);
      throw new Error(`${name} did not start: ${output.trim() || "no output"}`);
    }
    await sleep(50);
  }
}

/** How `runtime` runs the script at `path` (`denoFlags` go to deno run, e.g. --unstable-net). */
export function runScript(runtime, path, denoFlags = []) {
  switch (runtime) {
    case "node":
      return ["node", path];
    case "deno":
      return [DENO, "run", "-A", ...denoFlags, path];
    case "bun":
      return [BUN, path];
  }
}

/** echogate's CLI in the checkout at `root`: Node runs the built package, Deno and Bun the source. */
export function cliCommand(runtime, root) {
  return runScript(runtime, join(root, runtime === "node" ? "npm/bin/echogate.mjs" : "src/cli.ts"));
}

/**
 * Runs `echogate bench ... --json` on the generator CPUs and returns its report plus the CPU
 * seconds it used (bash's `times` after it exits) and the wall time.
 */
export function runGenerator(args) {
  const command = [...pinned(GENERATOR_CPUS, cliCommand(GENERATOR, ROOT)), "bench", "127.0.0.1", ...args, "--json"];
  const script = `ulimit -n ${FD_LIMIT} 2>/dev/null; "$@"; code=$?; times >&2; exit $code`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("bash", ["-c", script, "bash", ...command], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    live.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("close", (code) => {
      live.delete(child);
      const wallS = (performance.now() - started) / 1000;
      const lines = err.trim().split("\n");
      // `times` prints the shell's own times, then its children's: "0m1.160s 0m2.080s".
      const times = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines.at(-1) ?? "");
      const cpuS = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
      let report;
      try {
        report = JSON.parse(out);
      } catch {
        return reject(new Error(`generator exited ${code} without a report: ${lines.slice(0, -2).join(" ")}`));
      }
      resolve({ report, cpuS, wallS, stderr: lines.slice(0, -2).join("\n") });
    });
  });
}
