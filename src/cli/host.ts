import type { FileDescriptorUsage } from "../bench/mod.ts";
import type { Transport } from "../types.ts";

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
  /** Runs `handler` on every delivery of `signal`. */
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void): void;
  /** Reads a UTF-8 text file. */
  readTextFile(path: string): Promise<string>;
  /**
   * The descriptor limit and how many are open, where the runtime can tell (Linux `/proc`);
   * `bench` checks `--conns` against it before connecting.
   */
  fileDescriptors?(): FileDescriptorUsage | undefined;
  /**
   * Sets what reports log lines dropped because standard output or error was not read in time
   * (see {@linkcode LineOutput}); servers log it as a `log-dropped` event.
   */
  onOutputDropped?(reporter: (stream: "stdout" | "stderr", lines: number) => void): void;
  /** Whether `stream` is a terminal; `bench` then keeps a live progress line on standard error. */
  isTerminal?(stream: "stdout" | "stderr"): boolean;
}
