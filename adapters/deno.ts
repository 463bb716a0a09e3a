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
  type ConnectOptions,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type Endpoint,
  formatEndpoint,
  type Listener,
  type ListenHandlers,
  type StreamSocket,
  type TlsClientOptions,
  TlsConfigError,
  type TlsInfo,
  type TlsServerOptions,
  type Transport,
} from "../src/mod.ts";
import type { CliHost } from "../src/cli/host.ts";
import { sleep } from "../src/_timers.ts";
import { bindNodeDatagram } from "./_dgram.ts";
import { bindDenoDatagram } from "./_deno_datagram.ts";
import { Deno, type DenoAddr, type DenoConn, type DenoListener } from "./_deno_api.ts";
import { denoHost } from "./_deno_host.ts";
import { lookupHost } from "./_lookup.ts";
import { explainConnectError } from "./_connect_errors.ts";
import { prefixedBuffer } from "./_prefixed_buffer.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";

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

// answerEach keeps one buffer and cuts it only after this many reads in a row used under a
// quarter of it: a stream's reads vary in size, and cutting at the first small one traded the
// buffer for a new one every few reads (garbage that Deno's heap and glibc then keep).
const SHRINK_AFTER = 8;

// --- socket ---

/** Deno's TLS connections (Deno.startTls, Deno.connectTls; Deno 2.9) name their addresses without `transport`. */
function withTransport(addr: DenoAddr): Address {
  return "transport" in addr ? addr : { transport: "tcp", ...(addr as { hostname: string; port: number }) };
}

class DenoStreamSocket implements StreamSocket {
  readonly remoteAddr: Address;
  declare readonly tls?: TlsInfo; // set on TLS connections only
  #conn: DenoConn;
  #readSize = FIRST_READ;
  #writing: Promise<unknown> | undefined; // the last write, which closeWrite() lets finish first
  #isClosed = false;
  #closed: Promise<void> | undefined;
  #markClosed: (() => void) | undefined;

  constructor(conn: DenoConn, remoteAddr: Address = withTransport(conn.remoteAddr), tls?: TlsInfo) {
    this.#conn = conn;
    this.remoteAddr = remoteAddr;
    if (tls) (this as { tls?: TlsInfo }).tls = tls;
  }

  get localAddr(): Address {
    return withTransport(this.#conn.localAddr);
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
      // With a reply prefix, chunks are read right behind a copy of it, so prefix + chunk is
      // answered from this buffer too: no reply buffer per chunk, which Deno would leave to GC
      // and glibc to hold (docs/reliability.md).
      const prefix = responder.replyPrefix;
      const offset = prefix?.length ?? 0;
      let buffer = prefixedBuffer(prefix, MIN_READ);
      let readInto = buffer.subarray(offset);
      let smallReads = 0;
      while (!this.#isClosed) {
        // #readInto's work, inline: its async frame would stay alive on every idle connection.
        let n: number | null;
        try {
          n = await this.#conn.read(readInto);
        } catch (error) {
          if (this.#isClosed || isTruncation(error)) break; // closed by us while the read was pending
          throw error;
        }
        if (n === null) break;
        const reply = offset === 0
          ? responder.answer(buffer.subarray(0, n))
          : responder.answer(readInto.subarray(0, n), buffer.subarray(0, offset + n));
        if (reply === null) break;
        // Awaited before the next read, which may overwrite a reply that is the lent chunk itself.
        // conn.write() itself, not write(): no promise of our own per chunk.
        if (reply !== undefined && reply.length > 0) {
          const written = await (this.#writing = this.#conn.write(reply));
          if (written < reply.length) await this.write(reply.subarray(written));
        }
        let size = nextReadSize(readInto.length, n);
        if (size >= readInto.length) smallReads = 0;
        else if (++smallReads < SHRINK_AFTER) size = readInto.length;
        if (size !== readInto.length) {
          smallReads = 0;
          buffer = prefixedBuffer(prefix, size);
          readInto = buffer.subarray(offset);
        }
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
      if (this.#isClosed || isTruncation(error)) return null; // closed by us while the read was pending
      throw error;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#writing = this.#writeAll(bytes);
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    // conn.write() may take only part of the data.
    let written = await this.#conn.write(bytes);
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

/**
 * A TLS peer that sends FIN without close_notify makes Deno's read() reject with UnexpectedEof
 * (denoland/deno#23960). Everything it sent was authenticated, so that is end of input as on TCP.
 */
function isTruncation(error: unknown): boolean {
  return error instanceof Deno.errors.UnexpectedEof;
}

// --- TLS ---

// TLS servers run on Deno's node:tls, with the Node adapter's code: Deno.listenTls cannot ask for
// client certificates (denoland/deno#26825), and a connection of its whose handshake stalls keeps
// its descriptor after close() until the peer leaves. With `stalledHandshakes: "hold"` plain TLS
// runs on Deno.listenTls, about twice as fast. Clients use Deno.startTls / Deno.connectTls, except
// for what those cannot do: skip verification (--insecure), pin a fingerprint (they show no peer certificate), or present a client certificate while
// verifying a name other than the host.
async function nodeTransport(): Promise<Transport> {
  return (await import("./node.ts")).transport;
}

function listenTlsNative(
  endpoint: Endpoint,
  handlers: ListenHandlers,
  options: TlsServerOptions,
  reusePort: boolean | undefined,
): Listener {
  if ("path" in endpoint) throw new TypeError("TLS is served over TCP only");
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  const open = (tls: TlsServerOptions, port: number): DenoListener => {
    try {
      return Deno.listenTls({
        hostname: endpoint.hostname,
        port,
        // Unstable, like Deno.listen's: workers run with --unstable-net.
        ...(reusePort && { reusePort: true }),
        cert: tls.cert,
        key: tls.key,
        ...(tls.alpn && { alpnProtocols: [...tls.alpn] }),
      });
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) throw toListenError(error, { ...endpoint, port });
      const name = (error as Error).name;
      if (name === "PermissionDenied" || name === "AddrNotAvailable") throw error;
      throw new TlsConfigError((error as Error).message, { cause: error });
    }
  };
  let listener = open(options, endpoint.port);
  const addr = listener.addr as Address & { transport: "tcp" };
  let stopped = false;
  let reopening: Promise<void> | undefined;

  // Deno accepts before the handshake: each connection gets the handshake timeout, and reaches
  // the core only once its handshake is done.
  const handshake = (conn: DenoConn) => {
    const remoteAddr = conn.remoteAddr as Address;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, timeoutMs);
    conn.handshake!().then((info) => {
      clearTimeout(timer);
      conn.setNoDelay?.(true);
      handlers.onSocket(new DenoStreamSocket(conn, remoteAddr, info.alpnProtocol ? { alpn: info.alpnProtocol } : {}));
    }, (error) => {
      clearTimeout(timer);
      if (!timedOut) closeQuietly(conn);
      handlers.onHandshakeError?.({
        remoteAddr,
        reason: timedOut ? "timeout" : "failed",
        message: timedOut ? `no TLS handshake within ${timeoutMs / 1000} s` : (error as Error).message,
      });
    });
  };
  let acceptEnded: (() => void) | undefined;
  const accepting = (async () => {
    while (!stopped) {
      let conn: DenoConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (reopening) {
          acceptEnded?.();
          await reopening;
          continue;
        }
        if (stopped || error instanceof Deno.errors.BadResource) return;
        await afterAcceptError(error, handlers);
        continue;
      }
      handshake(conn);
    }
  })();
  return {
    addr,
    async close() {
      stopped = true;
      closeQuietly(listener);
      await accepting;
    },
    async reloadTls(next) {
      // Deno cannot swap a live listener's certificate: the listener is reopened on the same
      // address. Open connections stay. Alone on the port, connection attempts until the new bind
      // are refused; with reusePort (workers) the new listener binds beside the old one first.
      open(next, 0).close(); // the pair is checked on a throwaway port first
      const beside = reusePort ? open(next, addr.port) : undefined;
      let resume!: () => void;
      reopening = new Promise((resolve) => (resume = resolve));
      // The port is free only once the pending accept has given the listener up.
      const ended = new Promise<void>((resolve) => (acceptEnded = resolve));
      closeQuietly(listener);
      await ended;
      try {
        listener = beside ?? await bindAgain(() => open(next, addr.port));
        options = next;
      } catch (error) {
        listener = await bindAgain(() => open(options, addr.port));
        throw error;
      } finally {
        reopening = undefined;
        resume();
      }
    },
  };
}

/** Retries a bind that fails with "in use" for up to a second: a closed listener lets its port go a moment later. */
async function bindAgain(bind: () => DenoListener): Promise<DenoListener> {
  for (let attempt = 0;; attempt++) {
    try {
      return bind();
    } catch (error) {
      if (!(error instanceof AddrInUseError) || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * Reports a failed accept and waits as its kind asks. A connection reset while it waited
 * (ENOTCONN here) is gone: accept the next at once. Out of descriptors, the next accept would
 * fail too: back off instead of spinning.
 */
async function afterAcceptError(error: unknown, handlers: ListenHandlers): Promise<void> {
  handlers.onError(error);
  const kind = acceptErrorKind(error);
  if (kind !== "connection") await sleep(kind === "exhaustion" ? ACCEPT_BACKOFF_MS : 0);
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

async function connectTlsNative(
  endpoint: Endpoint,
  options: TlsClientOptions,
  beforeTls?: ConnectOptions["beforeTls"],
): Promise<StreamSocket> {
  if ("path" in endpoint) throw new TypeError("TLS over a unix socket is not supported on Deno");
  if (options.cert !== undefined) {
    // Only connectTls presents a client certificate; it verifies the host connected to.
    const conn = await Deno.connectTls({
      ...endpoint,
      ...(options.ca !== undefined && { caCerts: [options.ca] }),
      ...(options.alpn && { alpnProtocols: [...options.alpn] }),
      cert: options.cert,
      key: options.key,
    });
    let info: { alpnProtocol: string | null };
    try {
      info = await conn.handshake!();
    } catch (error) {
      conn.close();
      throw error;
    }
    conn.setNoDelay?.(true);
    return new DenoStreamSocket(conn, undefined, info.alpnProtocol ? { alpn: info.alpnProtocol } : {});
  }
  const tcp = await Deno.connect(endpoint);
  let conn: DenoConn;
  let info: { alpnProtocol: string | null };
  try {
    if (beforeTls) {
      // In clear text, ahead of the ClientHello (a PROXY header).
      const prefix = beforeTls({ localAddr: withTransport(tcp.localAddr), remoteAddr: withTransport(tcp.remoteAddr) });
      for (let written = 0; written < prefix.length;) written += await tcp.write(prefix.subarray(written));
    }
    // startTls over a TCP connection: the name verified (and sent as SNI) may differ from the host.
    conn = await Deno.startTls(tcp, {
      hostname: options.servername ?? endpoint.hostname,
      ...(options.ca !== undefined && { caCerts: [options.ca] }), // in addition to the system roots
      ...(options.alpn && { alpnProtocols: [...options.alpn] }),
    });
    info = await conn.handshake!();
  } catch (error) {
    try {
      tcp.close();
    } catch {
      // Already closed by startTls.
    }
    throw error;
  }
  conn.setNoDelay?.(true);
  return new DenoStreamSocket(conn, undefined, info.alpnProtocol ? { alpn: info.alpnProtocol } : {});
}

// --- transport ---

function toListenError(error: unknown, endpoint: Endpoint): unknown {
  if (!(error instanceof Deno.errors.AddrInUse)) return error;
  return new AddrInUseError(formatEndpoint(endpoint), { cause: error });
}

function denoEndpoint(endpoint: Endpoint) {
  return "path" in endpoint ? { transport: "unix" as const, path: endpoint.path } : endpoint;
}

async function connectDeno(endpoint: Endpoint, options: ConnectOptions | undefined): Promise<StreamSocket> {
  const tls = options?.tls;
  if (
    tls &&
    (tls.insecure || tls.fingerprint !== undefined || (tls.cert !== undefined && options?.beforeTls !== undefined) ||
      (tls.cert !== undefined && !("path" in endpoint) &&
        (tls.servername ?? endpoint.hostname) !== endpoint.hostname))
  ) {
    return await (await nodeTransport()).connect(endpoint, options);
  }
  if (options?.tls) return await connectTlsNative(endpoint, options.tls, options.beforeTls);
  const conn = await Deno.connect(denoEndpoint(endpoint));
  if (!("path" in endpoint)) conn.setNoDelay?.(true);
  return new DenoStreamSocket(conn);
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
  async listen(endpoint, handlers, options) {
    const tls = options?.tls;
    // Deno.listenTls can neither ask for client certificates nor close a connection whose handshake
    // stalls (docs/tls.md): those run on Deno's node:tls, unless the caller chose to hold them.
    // So do listeners that defer the handshake (Deno has no server-side startTls).
    if (tls && (options?.deferTls || tls.clientCa !== undefined || tls.stalledHandshakes !== "hold")) {
      return await (await nodeTransport()).listen(endpoint, handlers, options);
    }
    if (tls) return listenTlsNative(endpoint, handlers, tls, options?.reusePort);
    let listener: DenoListener;
    try {
      // reusePort is unstable in Deno: without --unstable-net, Deno exits (the supervisor adds the flag).
      listener = "path" in endpoint
        ? bindWithMode(endpoint.path, options?.unixMode, () => Deno.listen(denoEndpoint(endpoint)))
        : Deno.listen(options?.reusePort ? { ...endpoint, reusePort: true } : endpoint);
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
          await afterAcceptError(error, handlers);
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
  connect(endpoint, options) {
    return connectDeno(endpoint, options).catch((error) => {
      throw explainConnectError(error, endpoint, options?.tls);
    });
  },
  removeSocketFile: removeStaleSocketFile,
  explainError: explainConnectError,
  // Deno.listenDatagram exists only with --unstable-net; Deno's node:dgram works without a flag.
  bindDatagram: (endpoint, handlers) =>
    Deno.listenDatagram
      ? bindDenoDatagram(Deno.listenDatagram, endpoint, handlers, Deno.errors.AddrInUse)
      : bindNodeDatagram(endpoint, handlers),
  lookup: lookupHost,
};

/**
 * Builds what the CLI needs from Deno: arguments, environment, output, exit, signals and files. Its output starts at once (listeners on the
 * process's streams): call it once, when the CLI runs, never at import.
 *
 * @returns A new host around {@linkcode transport}.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { createHost } from "./deno.ts";
 *
 * const host = createHost();
 * host.exit(await runCli(host));
 * ```
 */
export function createHost(): CliHost {
  return denoHost(transport);
}
