// Child processes in tests: the CLI under test and the seed's Python servers, their output collected, every one
// of them (and whatever it started) killed when a suite ends.

import { afterAll } from "vitest";
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RuntimeName } from "../adapters/mod.ts";
import { RUNTIME } from "./_net.ts";
import { alive, childPids, listeningPorts } from "./_proc.ts";
import { deadline, waitFor, waitUntil } from "./_wait.ts";

export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));

const BIN = `${ROOT}node_modules/.bin`;

/** The command that runs echogate's CLI on `runtime` (node runs the built package). */
export function cliCommand(runtime: RuntimeName): string[] {
  switch (runtime) {
    case "node":
      return ["node", `${ROOT}npm/bin/echogate.mjs`];
    case "deno":
      return [`${BIN}/deno`, "run", "-A", `${ROOT}src/cli.ts`];
    case "bun":
      return [`${BIN}/bun`, `${ROOT}src/cli.ts`];
  }
}

/** The command that runs a script file on `runtime`, the script's path to be appended. */
export function scriptCommand(runtime: RuntimeName): string[] {
  return runtime === "node" ? ["node"] : runtime === "deno" ? [`${BIN}/deno`, "run", "-A"] : [`${BIN}/bun`];
}

/** A child process whose output is collected as it arrives. */
export interface Child {
  readonly process: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (or 128 + signal number style -1 when killed by a signal). */
  readonly exited: Promise<number>;
  /** Kills the process (if still running) and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

// Every child still running, by process group: killed when a suite ends, even one that failed
// early, and when the test process exits.
const running = new Set<number>();

/** Kills the process group `pgid` (the child and whatever it started), if it still exists. */
function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    globalThis.process.kill(-pgid, signal);
  } catch {
    // Gone already.
  }
}

afterAll(async () => {
  const groups = [...running];
  for (const pgid of groups) killGroup(pgid, "SIGKILL");
  // Until each leader is reaped, so the run's leftover check does not see it.
  await waitUntil(() => groups.every((pgid) => !running.has(pgid)), { timeoutMs: 10_000, what: "children to exit" })
    .catch(() => {});
});
globalThis.process.on("exit", () => {
  for (const pgid of running) killGroup(pgid, "SIGKILL");
});

/**
 * Spawns a command and collects its output. The child leads a process group of its own, so
 * {@linkcode Child.stop} ends everything it started too (a shell's children, npx's server).
 */
export function startChild(command: string[], env: Record<string, string> = {}): Child {
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...globalThis.process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const pgid = child.pid;
  if (pgid !== undefined) running.add(pgid);
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const exited = new Promise<number>((resolve) => {
    child.on("close", (code) => resolve(code ?? -1));
    child.on("error", () => resolve(-1));
  });
  void exited.then(() => {
    // The leader is gone; kill what it may have left in its group, then forget the group.
    if (pgid !== undefined) {
      killGroup(pgid, "SIGKILL");
      running.delete(pgid);
    }
  });
  return {
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal = "SIGKILL") {
      // process.kill, not child.kill: Deno's ChildProcess.kill ends a Deno child without running its signal listeners.
      // The signal goes to the leader (which may handle it: SIGTERM is a graceful shutdown); SIGKILL to the whole group.
      if (child.exitCode === null && child.signalCode === null && pgid !== undefined) {
        if (signal === "SIGKILL") killGroup(pgid, signal);
        else globalThis.process.kill(pgid, signal);
      }
      return await deadline(exited, 10_000, `${command.join(" ")} to exit`);
    },
  };
}

/** Runs a command to completion (bounded by `ms`) and returns its exit code and output. */
export async function runCommand(
  command: string[],
  options: { env?: Record<string, string>; ms?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = startChild(command, options.env);
  try {
    const code = await deadline(child.exited, options.ms ?? 20_000, command.join(" "));
    return { code, stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    await child.stop();
  }
}

/** A CLI server started in a child process, with the port it printed. */
export interface ChildServer extends Child {
  readonly port: number;
  readonly address: string;
}

/** Starts `echogate <args>` on `runtime` and waits for its "listening on" line. */
export async function startCliServer(
  runtime: RuntimeName,
  args: string[],
  env?: Record<string, string>,
): Promise<ChildServer> {
  const child = startChild([...cliCommand(runtime), ...args], env);
  try {
    const address = await waitFor(
      () => {
        if (child.process.exitCode !== null) throw new Error(`Server exited early: ${child.stderr()}`);
        return /listening on (\S+)/.exec(child.stdout())?.[1] ?? /"address":"([^"]+)"/.exec(child.stdout())?.[1];
      },
      15_000,
      `${runtime} server to listen`,
    );
    const port = Number(/:(\d+)$/.exec(address)?.[1] ?? 0);
    return { ...child, port, address };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/** Starts one of the seed's Python servers on a free port and waits until it listens. */
export async function startSeedServer(script: "echo_server.py" | "gate_server.py"): Promise<Child & { port: number }> {
  const child = startChild(["python3", "-u", `${ROOT}test/seed/${script}`, "0"]);
  try {
    const port = await waitFor(
      () => {
        if (child.process.exitCode !== null) throw new Error(`${script} exited: ${child.stderr()}`);
        return listeningPorts(child.process.pid!)[0];
      },
      10_000,
      `${script} to listen`,
    );
    return { ...child, port };
  } catch (error) {
    await child.stop();
    throw error;
  }
}

/**
 * Runs `echogate <args>` on the runtime under test to completion and returns its exit code and output.
 *
 * @example
 * const { code, stdout } = await runEchogate(["--version"]);
 */
export function runEchogate(
  args: string[],
  options: { env?: Record<string, string>; ms?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand([...cliCommand(RUNTIME), ...args], options);
}

/**
 * Stops `child` and every process it started (a supervisor's workers), and waits until all are gone: none may
 * outlive a test.
 */
export async function stopTree(child: Child): Promise<void> {
  const children = child.process.pid === undefined ? [] : childPids(child.process.pid);
  for (const pid of children) {
    try {
      globalThis.process.kill(pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  }
  await child.stop();
  await waitUntil(() => !children.some(alive), { timeoutMs: 10_000, what: "the child's children to be gone" });
}

/**
 * A command line as the list of its arguments: the template's text is split at white space, and each value put
 * in stands for itself (a value inside a word, as in `--prefix=${p}`, joins that word).
 *
 * @example
 * argv`--port ${port} --conns 2 --duration 0.5`; // ["--port", "8001", "--conns", "2", "--duration", "0.5"]
 */
export function argv(strings: TemplateStringsArray, ...values: unknown[]): string[] {
  const marker = (i: number) => `\uE000${i}\uE000`;
  const line = strings.reduce((text, part, i) => text + (i > 0 ? marker(i - 1) : "") + part, "");
  return line.split(/\s+/).filter(Boolean).map((word) =>
    word.replace(/\uE000(\d+)\uE000/g, (_, i: string) => String(values[Number(i)]))
  );
}
