import type { FileDescriptorUsage } from "../bench/mod.ts";
import type { Transport } from "../types.ts";
import type { ProcessFacts } from "../metrics/mod.ts";

/**
 * What the CLI needs from the runtime beyond sockets. Each adapter exports one as `host`.
 *
 * @example A host for tests that records output
 * ```ts ignore
 * import type { CliHost } from "../mod.ts";
 *
 * const out: string[] = [];
 * const host: CliHost = { ...realHost, args: ["--version"], writeOut: (line) => out.push(line) };
 * ```
 */
export interface CliHost {
  /** The socket API. */
  readonly transport: Transport;
  /** Command-line arguments after the program name. */
  readonly args: readonly string[];
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** Writes one line to standard output. */
  writeOut(line: string): void;
  /** Writes one line to standard error. */
  writeErr(line: string): void;
  /** Ends the process with `code`. */
  exit(code: number): void;
  /**
   * Runs `handler` instead of the runtime's default for an error nothing caught (an uncaught
   * exception or an unhandled rejection); the handler must end the process.
   */
  onFatal?(handler: (error: unknown) => void): void;
  /** Runs `handler` on every delivery of `signal`. */
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void): void;
  /** Reads a UTF-8 text file. */
  readTextFile(path: string): Promise<string>;
  /**
   * Reads a small secret file (`--token-file`): only a regular file of at most `maxBytes`
   * bytes is read, and a FIFO or device never blocks or floods the read. Where missing,
   * {@linkcode CliHost.readTextFile} is used and the size checked after the read.
   */
  readSmallFile?(path: string, maxBytes: number): Promise<SmallFile>;
  /** Every address a host name resolves to (the system resolver's answers). */
  lookupAddresses?(hostname: string): Promise<string[]>;
  /** Writes a UTF-8 text file (`bench --hdr`). */
  writeTextFile?(path: string, text: string): Promise<void>;
  /**
   * Resolves when `path` could be written by {@linkcode CliHost.writeTextFile}, rejects with the
   * reason when not; `bench` asks before sending any load, so a bad `--hdr` costs no run.
   */
  checkOutputFile?(path: string): Promise<void>;
  /**
   * The descriptor limit and how many are open, where the runtime can tell (Linux `/proc`);
   * `bench` checks `--conns` against it before connecting.
   */
  fileDescriptors?(): FileDescriptorUsage | undefined;
  /** Resident memory, CPU time and open descriptors of this process, for `--metrics`. */
  processFacts?(): ProcessFacts;
  /**
   * Sets what reports log lines dropped because standard output or error was not read in time
   * (see {@linkcode LineOutput}); servers log it as a `log-dropped` event.
   */
  onOutputDropped?(reporter: (stream: "stdout" | "stderr", lines: number) => void): void;
  /** Whether `stream` is a terminal; `bench` then keeps a live progress line on standard error. */
  isTerminal?(stream: "stdout" | "stderr"): boolean;
  /** Starts worker processes for `--workers`; absent where the runtime cannot. */
  readonly workers?: WorkerSpawner;
  /** Standard input as text, as it arrives (a worker reads its supervisor's messages there). */
  readInput?(): AsyncIterable<string>;
  /**
   * Sends a message to the supervisor that started this process as a worker, over the IPC channel
   * it opened for that alone: never standard output, whose log lines carry text peers chose.
   * Returns false when this process has no such channel (it was not started by a supervisor).
   */
  sendToSupervisor?(message: object): boolean;
}

/**
 * What {@linkcode CliHost.readSmallFile} found: the file's text and permission bits, or why it
 * was not read.
 *
 * @example Refuse anything but a small regular file
 * ```ts ignore
 * import type { SmallFile } from "../mod.ts";
 *
 * function textOf(file: SmallFile): string {
 *   if (file.kind === "file") return file.text;
 *   throw new Error(file.kind === "too-big" ? `${file.size} bytes` : file.type);
 * }
 * ```
 */
export type SmallFile =
  /** A regular file within the bound: its text (UTF-8) and its permission bits (`mode & 0o7777`). */
  | { kind: "file"; text: string; mode: number }
  /** Not a regular file; `type` says what it is: "a FIFO", "a directory", "a character device". */
  | { kind: "not-regular"; type: string }
  /** Larger than the bound; `size` is its size, or at least the bound plus one. */
  | { kind: "too-big"; size: number };

/**
 * Starts copies of this CLI as worker processes, each listening on the same port.
 *
 * @example Start one worker and print what it says
 * ```ts ignore
 * import type { WorkerSpawner } from "../mod.ts";
 *
 * async function demo(spawner: WorkerSpawner) {
 *   const worker = spawner.spawn(["echo", "serve", "--port", "0"], { ECHOGATE_WORKER: "1" });
 *   for await (const text of worker.output) console.log(text);
 * }
 * ```
 */
export interface WorkerSpawner {
  /**
   * True when the runtime shares one listening socket itself (`node:cluster` on Node): every
   * worker then gets the same arguments, even `--port 0`. False when each worker binds with
   * `reusePort`: workers after the first get the port the first one bound.
   */
  readonly sharedSocket: boolean;
  /** How many processes `--workers auto` starts: the cores available to this process. */
  cores(): number;
  /**
   * Starts a worker: this program, with `args` (the command line after the program name) and
   * `env` added to the environment. Its standard input and output are pipes to the caller, its
   * standard error is the caller's, and it has an IPC channel to the caller for its messages
   * ({@linkcode WorkerProcess.onMessage}).
   */
  spawn(args: readonly string[], env: Record<string, string>): WorkerProcess;
}

/**
 * A running worker process.
 *
 * @example Stop a worker at once
 * ```ts ignore
 * import type { WorkerProcess } from "../mod.ts";
 *
 * async function kill(worker: WorkerProcess) {
 *   worker.kill("SIGKILL");
 *   await worker.exited;
 * }
 * ```
 */
export interface WorkerProcess {
  /** Its process id. */
  readonly pid: number;
  /** Its standard output, as text in the pieces it arrives in; ends when the worker closes it. */
  readonly output: AsyncIterable<string>;
  /** Writes text to its standard input (dropped once it has exited). */
  send(text: string): void;
  /**
   * Calls `handler` with each message the worker sends over its IPC channel
   * ({@linkcode CliHost.sendToSupervisor}), as the runtime decoded it: unchecked. Set it right
   * after spawning, before any message can arrive.
   */
  onMessage(handler: (message: unknown) => void): void;
  /** Sends it a signal. */
  kill(signal: "SIGTERM" | "SIGKILL"): void;
  /** Resolves once it has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}
