/**
 * The Deno adapter: echogate's {@linkcode Transport} over `Deno.listen` and `Deno.connect`.
 *
 * Reads use `conn.read()`, not `conn.readable`: iterating the stream closes the whole
 * connection at end of input (denoland/deno#22258), which breaks half-close.
 *
 * @see https://docs.deno.com/api/deno/~/Deno.listen
 * @module
 */

import {
  ACCEPT_BACKOFF_MS,
  acceptErrorKind,
  type Address,
  AddrInUseError,
  type ChunkResponder,
  type Endpoint,
  formatEndpoint,
  type StreamSocket,
  type Transport,
} from "../src/mod.ts";
import type { CliHost } from "../src/cli/host.ts";
import { EXIT_FLUSH_MS, LineOutput, type WriteText } from "../src/cli/output.ts";
import { sleep } from "../src/_timers.ts";
import { softOpenFilesLimit } from "./_proc_limits.ts";

// --- types (a structural copy of what we use; no dependency on Deno's global types) ---

/** @see https://docs.deno.com/api/deno/~/Deno.Conn */
interface DenoConn {
  readonly remoteAddr: DenoAddr;
  readonly localAddr: DenoAddr;
  read(buffer: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  setNoDelay?(noDelay?: boolean): void;
}
type DenoAddr = { transport: "tcp"; hostname: string; port: number } | { transport: "unix"; path: string };
/** @see https://docs.deno.com/api/deno/~/Deno.Listener */
interface DenoListener {
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
/** @see https://docs.deno.com/api/deno/~/Deno */
interface DenoApi {
  listen(options: { hostname: string; port: number } | { transport: "unix"; path: string }): DenoListener;
  connect(options: { hostname: string; port: number } | { transport: "unix"; path: string }): Promise<DenoConn>;
  remove(path: string): Promise<void>;
  readTextFile(path: string): Promise<string>;
  args: string[];
  env: { get(name: string): string | undefined };
  exit(code: number): never;
  addSignalListener(signal: "SIGINT" | "SIGTERM", handler: () => void): void;
  readTextFileSync(path: string): string;
  readDirSync(path: string): Iterable<unknown>;
  statSync(path: string): { isFile: boolean };
  stdout: DenoOutputStream;
  stderr: DenoOutputStream;
  errors: {
    AddrInUse: new () => Error;
    BadResource: new () => Error;
    Interrupted: new () => Error;
    NotFound: new () => Error;
  };
}

const Deno: DenoApi = (globalThis as unknown as { Deno: DenoApi }).Deno;
if (!Deno) throw new Error("[echogate] Using the Deno adapter in a runtime without Deno");

// Read buffers adapt: 4 KiB at first (a gate token over 1 KiB shows in the first read), doubled
// while reads fill them, cut to a quarter (down to 512 bytes, so idle connections stay cheap) while
// reads use less than a quarter.
const FIRST_READ = 4 * 1024;
const MIN_READ = 512;
const MAX_READ = 64 * 1024;

function nextReadSize(size: number, n: number): number {
  if (n === size) return size < MAX_READ ? size * 2 : size;
  return n < size / 4 && size > MIN_READ ? Math.max(MIN_READ, size / 4) : size;
}

// --- socket ---

class DenoStreamSocket implements StreamSocket {
  readonly remoteAddr: Address;
  #conn: DenoConn;
  #readSize = FIRST_READ;
  #writing: Promise<void> | undefined;
  #isClosed = false;
  #closed: Promise<void> | undefined;
  #markClosed: (() => void) | undefined;

  constructor(conn: DenoConn, remoteAddr: Address = conn.remoteAddr) {
    this.#conn = conn;
    this.remoteAddr = remoteAddr;
  }

  get localAddr(): Address {
    return this.#conn.localAddr;
  }

  get closed(): Promise<void> {
    return this.#closed ??= this.#isClosed ? Promise.resolve() : new Promise((resolve) => (this.#markClosed = resolve));
  }

  async read(): Promise<Uint8Array | null> {
    // A fresh buffer per read: read() chunks stay valid after the next read.
    const buffer = new Uint8Array(this.#readSize);
    const n = await this.#readInto(buffer);
    if (n === null) return null;
    this.#readSize = nextReadSize(this.#readSize, n);
    return buffer.subarray(0, n);
  }

  answerEach(responder: ChunkResponder): void {
    void this.#answerLoop(responder);
  }

  async #answerLoop(responder: ChunkResponder): Promise<void> {
    let failure: unknown;
    try {
      // One buffer, reused for every read (answerEach lends its chunks). It starts at the floor,
      // not at FIRST_READ: small exchanges then never allocate (and leave as garbage) a bigger one.
      let buffer = new Uint8Array(MIN_READ);
      while (!this.#isClosed) {
        // #readInto's work, inline: its async frame would stay alive on every idle connection.
        let n: number | null;
        try {
          n = await this.#conn.read(buffer);
        } catch (error) {
          if (this.#isClosed) break; // closed by us while the read was pending
          throw error;
        }
        if (n === null) break;
        const reply = responder.answer(buffer.subarray(0, n));
        if (reply === null) break;
        // Awaited before the next read, which may overwrite a reply that is the lent chunk itself.
        if (reply !== undefined && reply.length > 0) await this.write(reply);
        const size = nextReadSize(buffer.length, n);
        if (size !== buffer.length) buffer = new Uint8Array(size);
      }
    } catch (error) {
      failure = error;
    }
    responder.ended(failure);
  }

  async #readInto(buffer: Uint8Array): Promise<number | null> {
    if (this.#isClosed) return null;
    try {
      return await this.#conn.read(buffer);
    } catch (error) {
      if (this.#isClosed) return null; // closed by us while the read was pending
      throw error;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#writing = this.#writeAll(bytes);
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    // conn.write() may take only part of the data.
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  async closeWrite(): Promise<void> {
    if (this.#isClosed) return;
    try {
      // A write still in flight (answerEach's) goes out before the FIN.
      await this.#writing;
      await this.#conn.closeWrite();
    } catch {
      // Already shut down or reset: nothing to flush.
    }
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    this.#markClosed?.();
  }
}

// --- transport ---

function toListenError(error: unknown, endpoint: Endpoint): unknown {
  if (!(error instanceof Deno.errors.AddrInUse)) return error;
  return new AddrInUseError(formatEndpoint(endpoint), { cause: error });
}

function denoEndpoint(endpoint: Endpoint) {
  return "path" in endpoint ? { transport: "unix" as const, path: endpoint.path } : endpoint;
}

/**
 * echogate's transport for Deno.
 *
 * @example
 * ```ts ignore
 * import { serveEcho } from "../src/mod.ts";
 * import { transport } from "./deno.ts";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * ```
 */
export const transport: Transport = {
  runtime: "deno",
  listen(endpoint, handlers) {
    let listener: DenoListener;
    try {
      listener = Deno.listen(denoEndpoint(endpoint));
    } catch (error) {
      return Promise.reject(toListenError(error, endpoint));
    }
    let stopped = false;
    const accepting = (async () => {
      while (!stopped) {
        let conn: DenoConn;
        try {
          conn = await listener.accept();
        } catch (error) {
          if (stopped || error instanceof Deno.errors.BadResource) return;
          handlers.onError(error);
          // A connection reset while it waited (ENOTCONN here) is gone: accept the next at once.
          // Out of descriptors, the next accept would fail too: back off instead of spinning.
          const kind = acceptErrorKind(error);
          if (kind !== "connection") await sleep(kind === "exhaustion" ? ACCEPT_BACKOFF_MS : 0);
          continue;
        }
        if ("path" in endpoint) {
          // A unix peer has no name of its own; report the socket path like the other adapters.
          handlers.onSocket(new DenoStreamSocket(conn, listener.addr));
        } else {
          conn.setNoDelay?.(true);
          handlers.onSocket(new DenoStreamSocket(conn));
        }
      }
    })();
    return Promise.resolve({
      addr: listener.addr,
      async close() {
        stopped = true;
        try {
          listener.close();
        } catch {
          // Already closed.
        }
        await accepting;
      },
    });
  },
  async connect(endpoint) {
    const conn = await Deno.connect(denoEndpoint(endpoint));
    if (!("path" in endpoint)) conn.setNoDelay?.(true);
    return new DenoStreamSocket(conn);
  },
  async removeSocketFile(path) {
    await Deno.remove(path).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
  },
};

const encoder = new TextEncoder();

/**
 * How text goes to standard output or error: written at once to a terminal or a file, as before
 * (writeSync never waits on a reader there), and to a pipe or socket with the async write, which
 * runs off the event loop: writeSync on a full pipe blocks the whole server until its reader reads.
 */
function writerFor(name: "stdout" | "stderr"): WriteText {
  const stream = Deno[name];
  let direct = stream.isTerminal();
  try {
    direct ||= Deno.statSync(`/proc/self/fd/${name === "stdout" ? 1 : 2}`).isFile;
  } catch {
    // Not Linux, or no permission: treat it as a pipe.
  }
  if (direct) {
    return (text) => {
      const bytes = encoder.encode(text);
      for (let written = 0; written < bytes.length;) written += stream.writeSync(bytes.subarray(written));
    };
  }
  return async (text) => {
    const bytes = encoder.encode(text);
    for (let written = 0; written < bytes.length;) written += await stream.write(bytes.subarray(written));
  };
}

const output = new LineOutput(writerFor("stdout"), writerFor("stderr"));

/**
 * What the CLI needs from Deno: arguments, environment, output, exit, signals and files.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { host } from "./deno.ts";
 *
 * host.exit(await runCli(host));
 * ```
 */
export const host: CliHost = {
  transport,
  get args() {
    return Deno.args;
  },
  env: (name) => Deno.env.get(name),
  writeOut: output.out,
  writeErr: output.err,
  exit(code) {
    void output.close(EXIT_FLUSH_MS).then(() => Deno.exit(code));
  },
  onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
  readTextFile: (path) => Deno.readTextFile(path),
  fileDescriptors() {
    try {
      const limit = softOpenFilesLimit(Deno.readTextFileSync("/proc/self/limits"));
      return limit === undefined ? undefined : { limit, open: [...Deno.readDirSync("/proc/self/fd")].length };
    } catch {
      return undefined; // not Linux, or no read permission
    }
  },
  isTerminal: (stream) => Deno[stream].isTerminal(),
  onOutputDropped: (reporter) => output.onDropped(reporter),
};
