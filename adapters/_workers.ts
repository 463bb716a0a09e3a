// Worker processes for `--workers` on runtimes with Node's `process` (Node and Bun).
//
// Workers are plain child processes that each listen with `reusePort` (the kernel spreads the
// connections) on Bun, whose `node:cluster` is young, and on Node 22.12+, where that measured
// faster and cheaper than node:cluster (docs/workers.md). Node 20 has no SO_REUSEPORT in `net`,
// so there its workers are `node:cluster` workers: the primary holds the one listening socket and
// hands connections round-robin. ECHOGATE_NODE_WORKERS=cluster keeps node:cluster on newer Node
// (scripts/bench_workers.mjs uses it to compare the two).

import { type ChildProcess, spawn } from "node:child_process";
import cluster from "node:cluster";
import os from "node:os";
import process from "node:process";
import type { WorkerProcess, WorkerSpawner } from "../src/cli/host.ts";
import { netReusePort } from "./_reuse_port.ts";

const isBun = typeof (process.versions as Record<string, string | undefined>).bun === "string";
/** Workers as child processes that each listen with reusePort (else node:cluster workers). */
const reusePortWorkers = isBun || (netReusePort && process.env.ECHOGATE_NODE_WORKERS !== "cluster");

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
    kill(signal) {
      if (!gone) child.kill(signal);
    },
    exited,
  };
}

/** Starts this program's workers: child processes with reusePort on Bun and Node 22.12+, `node:cluster` on older Node. */
export const processWorkers: WorkerSpawner = {
  sharedSocket: !reusePortWorkers,
  cores: () => (typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length),
  spawn(args, env) {
    const stdio: ("pipe" | "inherit" | "ipc")[] = ["pipe", "pipe", "inherit"];
    if (reusePortWorkers) {
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
        stdio,
        env: { ...process.env, ...env },
      });
      return wrap(child);
    }
    cluster.setupPrimary({ exec: process.argv[1]!, args: [...args], stdio: [...stdio, "ipc"] });
    return wrap(cluster.fork(env).process);
  },
};

/** Standard input as text. */
export async function* readStdin(): AsyncIterable<string> {
  process.stdin.setEncoding("utf8");
  for await (const text of process.stdin) yield text as string;
}
