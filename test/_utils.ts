// Shared test helpers. Tests run under node, deno and bun; everything here uses APIs all three have.

import { afterAll } from "vitest";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { detectRuntime, loadAdapter, type RuntimeName } from "../adapters/mod.ts";
import type { LogEvent, Logger, StreamSocket, Transport } from "../src/mod.ts";

export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
export const RUNTIME: RuntimeName = detectRuntime();
export const RUNTIMES: readonly RuntimeName[] = ["node", "deno", "bun"];
export const { transport }: { transport: Transport } = await loadAdapter();

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

/** Resolves with `promise`, or rejects with `what` after `ms`. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` every 20 ms until it returns a value other than undefined, or fails after `ms`. */
export async function waitFor<T>(check: () => T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  while (true) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Polls `predicate` every `intervalMs` until it holds; fails after `timeoutMs`, naming `what`. The
 * predicate is asked once more after the deadline, so a loaded machine that wakes late still sees
 * the state it was waiting for.
 *
 * @example
 * await waitUntil(() => child.stdout().includes("listening"), { what: "the listening line" });
 */
export async function waitUntil(
  predicate: () => boolean,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const { timeoutMs = 5000, intervalMs = 20, what = "a condition" } = options;
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The adapter's transport, with `watch` called on every socket its listeners accept before the
 * server gets it: a test wraps a method there to see the server call it (on a real socket).
 *
 * @example
 * let handshakes = 0;
 * const watched = watchingTransport((socket) => {
 *   const startTls = socket.startTls?.bind(socket);
 *   if (startTls) socket.startTls = (buffered) => (handshakes++, startTls(buffered));
 * });
 */
export function watchingTransport(watch: (socket: StreamSocket) => void): Transport {
  return {
    ...transport,
    listen: (endpoint, handlers, options) =>
      transport.listen(endpoint, {
        ...handlers,
        onSocket(socket) {
          watch(socket);
          handlers.onSocket(socket);
        },
      }, options),
  };
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
  await waitFor(() => (groups.every((pgid) => !running.has(pgid)) ? true : undefined), 10_000, "children to exit")
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

/** The TCP ports a process listens on, read from /proc (Linux): lets seed servers bind a free port themselves. */
export function listeningPorts(pid: number): number[] {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`).map((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "";
        } catch {
          return "";
        }
      }),
    );
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl local_address rem_address st ... inode(9); st 0A = LISTEN
      if (fields[3] === "0A" && inodes.has(fields[9]!)) ports.push(parseInt(fields[1]!.split(":")[1]!, 16));
    }
  }
  return ports;
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

/** Reads from `socket` until end of input; fails after `ms`. */
export async function readAll(socket: StreamSocket, ms = 10_000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await deadline(
    (async () => {
      for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) parts.push(chunk);
    })(),
    ms,
    "end of input",
  );
  return concat(parts);
}

/** Reads from `socket` until at least `n` bytes arrived (or end of input); fails after `ms`. */
export async function readAtLeast(socket: StreamSocket, n: number, ms = 10_000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  await deadline(
    (async () => {
      while (total < n) {
        const chunk = await socket.read();
        if (chunk === null) break;
        parts.push(chunk);
        total += chunk.length;
      }
    })(),
    ms,
    `${n} bytes`,
  );
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A logger that records events, with a helper to wait for one. */
export function recordingLogger(): Logger & {
  events: LogEvent[];
  waitForEvent(name: string, ms?: number): Promise<LogEvent>;
} {
  const events: LogEvent[] = [];
  return {
    events,
    log: (event) => void events.push(event),
    waitForEvent: (name, ms = 5000) => waitFor(() => events.find((e) => e.event === name), ms, `a "${name}" event`),
  };
}

/** The TCP port of a server's address. */
export function portOf(server: { addr: { transport: string; port?: number } }): number {
  if (server.addr.transport !== "tcp") throw new Error("not a TCP server");
  return server.addr.port!;
}

/** Tracks servers and sockets so `afterEach` can close every one of them. */
export function cleanup(): {
  add<T extends { close(): unknown }>(resource: T): T;
  child<T extends Child>(child: T): T;
  run(): Promise<void>;
} {
  const resources: { close(): unknown }[] = [];
  const children: Child[] = [];
  return {
    add(resource) {
      resources.push(resource);
      return resource;
    },
    child(child) {
      children.push(child);
      return child;
    },
    async run() {
      await Promise.all(resources.splice(0).map((r) => r.close()));
      await Promise.all(children.splice(0).map((c) => c.stop()));
    },
  };
}

/** True when this machine can bind ::1. */
export async function hasIPv6(): Promise<boolean> {
  try {
    const listener = await transport.listen({ hostname: "::1", port: 0 }, { onSocket: (s) => s.close(), onError() {} });
    await listener.close();
    return true;
  } catch {
    return false;
  }
}

export function tempSocketPath(name: string): string {
  return `/tmp/echogate-test-${RUNTIME}-${globalThis.process.pid}-${name}-${
    Math.random().toString(36).slice(2, 8)
  }.sock`;
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

/** Open file descriptors of a process (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** CPU time (user + system) a process has used, in seconds (Linux /proc, 100 ticks per second). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
