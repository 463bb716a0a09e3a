// Worker processes for `--workers` on runtimes with Node's `process` (Node and Bun).
//
// Workers are plain child processes that each listen with `reusePort` (the kernel spreads the
// connections) on Bun, whose `node:cluster` is young, and on Node 22.12+, where that measured
// faster and cheaper than node:cluster (docs/workers.md). Node 20 has no SO_REUSEPORT in `net`,
// so there its workers are `node:cluster` workers: the primary holds the one listening socket and
// hands connections round-robin. ECHOGATE_NODE_WORKERS=cluster keeps node:cluster on newer Node
// (scripts/bench/workers.mjs uses it to compare the two). Deno starts its workers here too
// (spawnWorker), for the IPC channel its Deno.Command cannot open.
//
// Each worker has an IPC channel of its own to the supervisor (node:cluster's, or "ipc" in its
// stdio), which carries its messages ("listening", the penalties it gives): never its standard
// output, where log lines carry text peers chose.

import { type ChildProcess, spawn } from "node:child_process";
import cluster from "node:cluster";
import os from "node:os";
import process from "node:process";
import type { WorkerProcess, WorkerSpawner } from "../src/cli/host.ts";
import { netReusePort } from "./_reuse_port.ts";

const isBun = typeof (process.versions as Record<string, string | undefined>).bun === "string";
/** Workers as child processes that each listen with reusePort (else node:cluster workers). */
const reusePortWorkers = isBun || (netReusePort && process.env.ECHOGATE_NODE_WORKERS !== "cluster");

/** The stdio of a worker: input and output piped, errors shared, and its IPC channel. */
const WORKER_STDIO: ("pipe" | "inherit" | "ipc")[] = ["pipe", "pipe", "inherit", "ipc"];

function wrap(child: ChildProcess): WorkerProcess {
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
    } else child.once("exit", (code, signal) => resolve({ code, signal }));
  });
  let gone = false;
  void exited.then(() => (gone = true));
  child.stdin?.on("error", () => {}); // a worker that died mid-write: its exit is reported instead
  return {
    pid: child.pid ?? 0,
    output: (async function* () {
      if (!child.stdout) return;
      child.stdout.setEncoding("utf8");
      for await (const text of child.stdout) yield text as string;
    })(),
    send(text) {
      if (!gone && child.stdin?.writable) child.stdin.write(text);
    },
    onMessage(handler) {
      child.on("message", (message: unknown) => handler(message));
    },
    kill(signal) {
      if (gone) return;
      try {
        child.kill(signal);
      } catch {
        // Exited meanwhile.
      }
    },
    exited,
  };
}

/** Starts this program's workers: child processes with reusePort on Bun and Node 22.12+, `node:cluster` on older Node. */
export const processWorkers: WorkerSpawner = {
  sharedSocket: !reusePortWorkers,
  cores: () => (typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length),
  spawn(args, env) {
    if (reusePortWorkers) return spawnWorker(process.execPath, [...process.execArgv, process.argv[1]!, ...args], env);
    cluster.setupPrimary({ exec: process.argv[1]!, args: [...args], stdio: WORKER_STDIO });
    return wrap(cluster.fork(env).process);
  },
};

/**
 * Starts `command` with `args` as a worker: `env` added to this process's environment, standard
 * input and output piped, standard error shared, and an IPC channel for its messages.
 *
 * @example
 * ```ts ignore
 * const worker = spawnWorker(process.execPath, ["cli.js", "echo", "serve"], { ECHOGATE_WORKER: "1" });
 * worker.onMessage((message) => console.log(message));
 * ```
 */
export function spawnWorker(command: string, args: readonly string[], env: Record<string, string>): WorkerProcess {
  return wrap(spawn(command, [...args], { stdio: WORKER_STDIO, env: { ...process.env, ...env } }));
}

/**
 * Sends `message` to the supervisor over this worker's IPC channel; false when there is none.
 * A channel that breaks meanwhile (the supervisor died) drops it: the worker stops anyway once its
 * standard input ends.
 *
 * @example
 * ```ts ignore
 * sendToSupervisor({ t: "listening", address: "127.0.0.1:50007", port: 50007 });
 * ```
 */
export function sendToSupervisor(message: object): boolean {
  if (typeof process.send !== "function" || process.connected === false) return false;
  try {
    process.send(message, undefined, undefined, () => {}); // the callback takes a send error
  } catch {
    // The channel closed meanwhile.
  }
  return true;
}

/** Standard input as text. */
export async function* readStdin(): AsyncIterable<string> {
  process.stdin.setEncoding("utf8");
  for await (const text of process.stdin) yield text as string;
}
