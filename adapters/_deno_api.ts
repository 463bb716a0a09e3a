// The part of Deno's global API the Deno adapter and its CLI host use: a structural copy (no
// dependency on Deno's global types), and the global itself. A module of its own, so both files
// read `Deno` from here rather than from each other (an import cycle would read it before it is set).

import type { ListenDatagram } from "./_deno_datagram.ts";

/** @see https://docs.deno.com/api/deno/~/Deno.Conn */
export interface DenoConn {
  readonly remoteAddr: DenoAddr;
  readonly localAddr: DenoAddr;
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  setNoDelay?(noDelay?: boolean): void;
  /** TLS connections only. */
  handshake?(): Promise<{ alpnProtocol: string | null }>;
}
/** @see https://docs.deno.com/api/deno/~/Deno.NetAddr */
export type DenoAddr = { transport: "tcp"; hostname: string; port: number } | { transport: "unix"; path: string };
/** @see https://docs.deno.com/api/deno/~/Deno.Listener */
export interface DenoListener {
  readonly addr: DenoAddr;
  accept(): Promise<DenoConn>;
  close(): void;
}
/** @see https://docs.deno.com/api/deno/~/Deno.stdout */
interface DenoOutputStream {
  write(bytes: Uint8Array): Promise<number>;
  writeSync(bytes: Uint8Array): number;
  isTerminal(): boolean;
}
/** @see https://docs.deno.com/api/deno/~/Deno.CommandOptions */
interface DenoCommandOptions {
  args: string[];
  env: Record<string, string>;
  stdin: "piped";
  stdout: "piped";
  stderr: "inherit";
}
/** @see https://docs.deno.com/api/deno/~/Deno.ChildProcess */
interface DenoChild {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal: string): void;
}
/** @see https://docs.deno.com/api/deno/~/Deno */
export interface DenoApi {
  /** Only with --unstable-net. */
  listenDatagram?: ListenDatagram;
  listen(
    options: { hostname: string; port: number; reusePort?: boolean } | { transport: "unix"; path: string },
  ): DenoListener;
  connect(options: { hostname: string; port: number } | { transport: "unix"; path: string }): Promise<DenoConn>;
  listenTls(options: {
    hostname: string;
    port: number;
    reusePort?: boolean;
    cert: string;
    key: string;
    alpnProtocols?: string[];
  }): DenoListener;
  connectTls(options: {
    hostname: string;
    port: number;
    caCerts?: string[];
    alpnProtocols?: string[];
    cert?: string;
    key?: string;
  }): Promise<DenoConn>;
  startTls(conn: DenoConn, options: {
    hostname: string;
    caCerts?: string[];
    alpnProtocols?: string[];
  }): Promise<DenoConn>;
  remove(path: string): Promise<void>;
  readTextFile(path: string): Promise<string>;
  writeTextFile(path: string, text: string): Promise<void>;
  args: string[];
  env: { get(name: string): string | undefined };
  exit(code: number): never;
  addSignalListener(signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void): void;
  memoryUsage(): { rss: number };
  readTextFileSync(path: string): string;
  readDirSync(path: string): Iterable<unknown>;
  statSync(path: string): { isFile: boolean };
  stdout: DenoOutputStream;
  stderr: DenoOutputStream;
  execPath(): string;
  readonly mainModule: string;
  readonly pid: number;
  Command: new (command: string, options: DenoCommandOptions) => { spawn(): DenoChild };
  permissions: { querySync(descriptor: { name: string }): { state: string } };
  stdin: { readable: ReadableStream<Uint8Array> };
  errors: {
    AddrInUse: new () => Error;
    BadResource: new () => Error;
    Interrupted: new () => Error;
    NotFound: new () => Error;
    UnexpectedEof: new () => Error;
  };
}

/**
 * The `Deno` global, typed by the copy above. Loading this module outside Deno throws.
 *
 * @example
 * ```ts ignore
 * import { Deno } from "./_deno_api.ts";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * ```
 */
export const Deno: DenoApi = (globalThis as unknown as { Deno: DenoApi }).Deno;
if (!Deno) throw new Error("[echogate] Using the Deno adapter in a runtime without Deno");
