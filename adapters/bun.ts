/**
 * The Bun adapter: echogate's {@linkcode Transport} over `Bun.listen` and `Bun.connect`.
 *
 * Bun sockets are callback-driven and buffer nothing on write: `write()` returns how many
 * bytes the kernel took, so the rest waits in our queue until `drain`. Sockets are opened
 * with `allowHalfOpen: true` (Bun's default is false).
 *
 * @see https://bun.sh/docs/api/tcp
 * @module
 */

import {
  type Address,
  AddrInUseError,
  type Endpoint,
  formatEndpoint,
  isSpecificIp,
  PushStreamSocket,
  type StreamSocket,
  type Transport,
  WriteQueue,
} from "../src/mod.ts";
import { type CliHost, processHost } from "./_process_host.ts";
import { socketBudget } from "./_descriptors.ts";
import { unlink } from "node:fs/promises";

// --- types (a structural copy of what we use; no dependency on @types/bun) ---

/** @see https://bun.sh/reference/bun/Socket */
interface BunSocket {
  data: BunStreamSocket;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  write(bytes: Uint8Array): number;
  shutdown(halfClose?: boolean): void;
  end(): void;
  pause(): void;
  resume(): void;
  setNoDelay?(noDelay?: boolean): boolean;
}
interface BunSocketHandler {
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
}
type BunEndpoint = { hostname: string; port: number } | { unix: string };
/** @see https://bun.sh/reference/bun/listen */
interface BunApi {
  listen(options: BunEndpoint & { socket: BunSocketHandler; allowHalfOpen: boolean; reusePort?: boolean }): {
    readonly hostname?: string;
    readonly port?: number;
    stop(closeActiveConnections?: boolean): void;
  };
  connect(options: BunEndpoint & { socket: BunSocketHandler; allowHalfOpen: boolean }): Promise<BunSocket>;
}

const Bun: BunApi = (globalThis as unknown as { Bun: BunApi }).Bun;
if (!Bun) throw new Error("[echogate] Using the Bun adapter in a runtime without Bun");

const RESOLVED: Promise<void> = Promise.resolve();

// --- socket ---

class BunStreamSocket extends PushStreamSocket {
  readonly remoteAddr: Address;
  readonly localAddr: Address;
  #socket: BunSocket;
  // Bun's write() buffers nothing (it returns the bytes taken), so the rest waits here for drain.
  // Made on the first write the kernel does not take whole: most sockets never need one.
  #writes: WriteQueue | undefined;
  #isClosed = false; // by us or by Bun
  #bunClosed = false; // Bun's close callback ran
  #closed: Promise<void> | undefined;
  #markClosed: (() => void) | undefined;

  constructor(socket: BunSocket, known: KnownAddresses) {
    super(socket);
    this.#socket = socket;
    this.remoteAddr = known.unix ?? { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
    this.localAddr = known.unix ?? known.local ??
      { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
  }

  get closed(): Promise<void> {
    return this.#closed ??= this.#bunClosed ? RESOLVED : new Promise((resolve) => (this.#markClosed = resolve));
  }

  onData(chunk: Uint8Array): void {
    this.push(chunk);
  }

  onDrained(): void {
    this.#writes?.flush();
  }

  onEnd(error?: Error): void {
    this.end(error);
  }

  onClose(error?: Error): void {
    this.#isClosed = true;
    this.#bunClosed = true;
    this.onEnd(error);
    this.#writes?.fail(error ?? new Error("Socket is closed"));
    this.#markClosed?.();
    this.#markClosed = undefined;
  }

  writeNow(bytes: Uint8Array): boolean {
    if (this.#isClosed) throw new Error("Socket is closed");
    if (this.#writes === undefined) {
      const n = this.#socket.write(bytes);
      if (n === bytes.length) return true; // the common case: no queue needed
      if (n < 0) throw new Error("Socket is closed");
      bytes = bytes.subarray(n);
    }
    return this.#writeQueue().writeNow(bytes);
  }

  onDrain(callback: (error?: unknown) => void): void {
    this.#writeQueue().onDrain(callback);
  }

  closeWrite(): Promise<void> {
    // Bun's end() has dropped queued bytes on large writes: flush first, then shutdown().
    return this.#isClosed ? RESOLVED : this.#writeQueue().closeWrite();
  }

  #writeQueue(): WriteQueue {
    return this.#writes ??= new WriteQueue(this.#socket);
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#socket.end();
    this.onEnd();
  }
}

// --- transport ---

/** Addresses shared by every socket of a listener rather than built per socket. */
interface KnownAddresses {
  /** A unix socket's path, reported as both ends' address. */
  unix?: Address;
  /** The local address, when the listener is bound to one. */
  local?: Address;
}

function handlerFor(known: KnownAddresses, onSocket?: (socket: StreamSocket) => void): BunSocketHandler {
  return {
    open(socket) {
      socket.data = new BunStreamSocket(socket, known);
      if (known.unix === undefined) socket.setNoDelay?.(true);
      onSocket?.(socket.data);
    },
    data: (socket, chunk) => socket.data.onData(chunk),
    drain: (socket) => socket.data.onDrained(),
    end: (socket) => socket.data.onEnd(),
    close: (socket, error) => socket.data?.onClose(error),
    error: (socket, error) => socket.data?.onEnd(error),
  };
}

function bunEndpoint(endpoint: Endpoint): BunEndpoint {
  return "path" in endpoint ? { unix: endpoint.path } : endpoint;
}

/**
 * echogate's transport for Bun.
 *
 * @example
 * ```ts ignore
 * import { serveEcho } from "../src/mod.ts";
 * import { transport } from "./bun.ts";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * ```
 */
export const transport: Transport = {
  runtime: "bun",
  listen(endpoint, handlers, options) {
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const known: KnownAddresses = unixPath !== undefined ? { unix: { transport: "unix", path: unixPath } } : {};
    let listener: ReturnType<BunApi["listen"]>;
    try {
      listener = Bun.listen({
        ...bunEndpoint(endpoint),
        allowHalfOpen: true,
        ...(options?.reusePort && unixPath === undefined ? { reusePort: true } : {}),
        socket: handlerFor(known, handlers.onSocket),
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "EADDRINUSE") return Promise.reject(error);
      return Promise.reject(new AddrInUseError(formatEndpoint(endpoint), { cause: error }));
    }
    const addr: Address = unixPath !== undefined
      ? { transport: "unix", path: unixPath }
      : { transport: "tcp", hostname: listener.hostname ?? "", port: listener.port ?? 0 };
    if (addr.transport === "tcp" && isSpecificIp(addr.hostname)) known.local = addr;
    // stop(false) stops accepting and leaves open connections to the core.
    return Promise.resolve({ addr, close: () => Promise.resolve(listener.stop(false)), maxSockets: socketBudget() });
  },
  async connect(endpoint) {
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const known: KnownAddresses = unixPath !== undefined ? { unix: { transport: "unix", path: unixPath } } : {};
    const socket = await Bun.connect({ ...bunEndpoint(endpoint), allowHalfOpen: true, socket: handlerFor(known) });
    return socket.data;
  },
  async removeSocketFile(path) {
    await unlink(path).catch((error: { code?: string }) => {
      if (error.code !== "ENOENT") throw error;
    });
  },
};

/**
 * What the CLI needs from Bun (which provides Node's `process`).
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { host } from "./bun.ts";
 *
 * host.exit(await runCli(host));
 * ```
 */
export const host: CliHost = processHost(transport);
