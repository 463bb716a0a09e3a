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
  alpnWireFormat,
  checkFingerprint,
  type ConnectOptions,
  type DatagramHandlers,
  type DatagramSocket,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type Endpoint,
  formatEndpoint,
  formatSubject,
  isSpecificIp,
  type Listener,
  type ListenHandlers,
  PushStreamSocket,
  type StreamSocket,
  type TlsClientOptions,
  TlsConfigError,
  type TlsInfo,
  type TlsServerOptions,
  type Transport,
  WriteQueue,
} from "../src/mod.ts";
import { checkServerIdentity, type PeerCertificate, rootCertificates } from "node:tls";
import { isIP } from "node:net";
import { type CliHost, processHost } from "./_process_host.ts";
import { socketBudget } from "./_descriptors.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";
import { lookupHost } from "./_lookup.ts";
import { BUN_TLS_SERVER_PROFILE } from "./_tls_profile.ts";
import { explainConnectError } from "./_connect_errors.ts";

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
  // TLS sockets only:
  terminate?(): void;
  readonly authorized?: boolean;
  readonly alpnProtocol?: string | false | null;
  getTLSVersion?(): string | null;
  getServername?(): string | undefined;
  getPeerCertificate?(): PeerCertificate | undefined;
}
interface BunSocketHandler {
  open(socket: BunSocket): void;
  data(socket: BunSocket, chunk: Uint8Array): void;
  drain(socket: BunSocket): void;
  end(socket: BunSocket): void;
  close(socket: BunSocket, error?: Error): void;
  error(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
  handshake?(socket: BunSocket, success: boolean, authorizationError: Error | null): void;
}
/** @see https://bun.sh/reference/bun/TLSOptions */
interface BunTlsOptions {
  cert?: string;
  key?: string;
  ca?: string | string[];
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  serverName?: string;
  ALPNProtocols?: ArrayBuffer;
  ciphers?: string;
  secureOptions?: number;
}
type BunEndpoint = { hostname: string; port: number } | { unix: string };
/** @see https://bun.sh/reference/bun/listen */
interface BunApi {
  listen(
    options: BunEndpoint & {
      socket: BunSocketHandler;
      allowHalfOpen: boolean;
      reusePort?: boolean;
      tls?: BunTlsOptions;
    },
  ): {
    readonly hostname?: string;
    readonly port?: number;
    stop(closeActiveConnections?: boolean): void;
    reload(options: { socket: BunSocketHandler; tls?: BunTlsOptions }): void;
  };
  connect(
    options: BunEndpoint & { socket: BunSocketHandler; allowHalfOpen: boolean; tls?: BunTlsOptions },
  ): Promise<BunSocket>;
  udpSocket(options: { hostname: string; port: number; socket: BunUdpHandler }): Promise<BunUdpSocket>;
}
/** @see https://bun.sh/reference/bun/udp/Socket */
interface BunUdpSocket {
  readonly address: { address: string; port: number };
  /** False when the kernel did not take the datagram (its buffer is full); `drain` follows. */
  send(bytes: Uint8Array, port: number, hostname: string): boolean;
  close(): void;
}
interface BunUdpHandler {
  data(socket: BunUdpSocket, bytes: Uint8Array, port: number, hostname: string): void;
  drain(socket: BunUdpSocket): void;
  /** Called with the socket as `this`. Without it, an ICMP error ends the process (oven-sh/bun#29116). */
  error(this: BunUdpSocket, error: Error): void;
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

// --- TLS ---

/** A TLS socket: handed out only once its handshake is done (and, with a client CA, the client verified). */
class BunTlsStreamSocket extends BunStreamSocket {
  #bun: BunSocket;
  handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settled by the handshake: `undefined` while it runs, then whether it succeeded. */
  handshakeDone: boolean | undefined;
  /** A client's wait for the handshake. */
  handshaken: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(socket: BunSocket, known: KnownAddresses) {
    super(socket, known);
    this.#bun = socket;
  }

  get tls(): TlsInfo {
    const socket = this.#bun;
    const info: TlsInfo = {};
    const version = socket.getTLSVersion?.();
    if (version) info.version = version;
    if (socket.alpnProtocol) info.alpn = socket.alpnProtocol;
    const servername = socket.getServername?.();
    if (servername) info.servername = servername;
    const subject = formatSubject(socket.getPeerCertificate?.()?.subject as unknown as Record<string, string>);
    if (subject) {
      info.peerSubject = subject;
      info.authorized = socket.authorized === true;
    }
    return info;
  }
}

function bunServerTls(options: TlsServerOptions): BunTlsOptions {
  return {
    ...BUN_TLS_SERVER_PROFILE,
    cert: options.cert,
    key: options.key,
    ...(options.clientCa !== undefined && { ca: options.clientCa, requestCert: true, rejectUnauthorized: true }),
    ...(options.alpn && { ALPNProtocols: alpnWireFormat(options.alpn).buffer as ArrayBuffer }),
  };
}

function toTlsConfigError(error: unknown): Error {
  const code = (error as { code?: string }).code;
  // Bun reports a refused certificate or key with BoringSSL's words.
  if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") return error as Error;
  return new TlsConfigError((error as Error).message, { cause: error });
}

function tlsServerHandler(
  known: KnownAddresses,
  handlers: ListenHandlers,
  options: TlsServerOptions,
): BunSocketHandler {
  const timeoutMs = options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  const requireClient = options.clientCa !== undefined;
  const fail = (socket: BunSocket, reason: "timeout" | "failed", message: string) => {
    const wrapper = socket.data as BunTlsStreamSocket;
    if (wrapper.handshakeDone !== undefined) return;
    wrapper.handshakeDone = false;
    clearTimeout(wrapper.handshakeTimer);
    const remoteAddr = wrapper.remoteAddr;
    wrapper.close();
    handlers.onHandshakeError?.({ remoteAddr, reason, message });
  };
  return {
    ...handlerFor(known),
    open(socket) {
      const wrapper = new BunTlsStreamSocket(socket, known);
      socket.data = wrapper;
      socket.setNoDelay?.(true);
      wrapper.handshakeTimer = setTimeout(
        () => fail(socket, "timeout", `no TLS handshake within ${timeoutMs / 1000} s`),
        timeoutMs,
      );
    },
    handshake(socket, success, authorizationError) {
      const wrapper = socket.data as BunTlsStreamSocket;
      if (wrapper.handshakeDone !== undefined) return;
      // Bun reports a client certificate it could not verify as a successful handshake with an
      // authorization error (rejectUnauthorized is not enforced on its servers): refuse it here.
      if (!success || (requireClient && (authorizationError !== null || socket.authorized !== true))) {
        return fail(socket, "failed", authorizationError?.message ?? "TLS handshake failed");
      }
      wrapper.handshakeDone = true;
      clearTimeout(wrapper.handshakeTimer);
      handlers.onSocket(wrapper);
    },
    close(socket, error) {
      const wrapper = socket.data as BunTlsStreamSocket | undefined;
      if (wrapper && wrapper.handshakeDone === undefined) {
        fail(socket, "failed", error?.message ?? "closed during the TLS handshake");
      }
      wrapper?.onClose(error);
    },
  };
}

function listenTls(
  endpoint: Endpoint,
  handlers: ListenHandlers,
  options: TlsServerOptions,
  reusePort: boolean | undefined,
): Promise<Listener> {
  if ("path" in endpoint) return Promise.reject(new TypeError("TLS is served over TCP only"));
  const known: KnownAddresses = {};
  let socket = tlsServerHandler(known, handlers, options);
  let current = options;
  let listener: ReturnType<BunApi["listen"]>;
  const share = reusePort ? { reusePort: true } : {};
  try {
    listener = Bun.listen({ ...endpoint, ...share, allowHalfOpen: true, socket, tls: bunServerTls(options) });
  } catch (error) {
    if ((error as { code?: string }).code === "EADDRINUSE") {
      return Promise.reject(new AddrInUseError(formatEndpoint(endpoint), { cause: error }));
    }
    return Promise.reject(toTlsConfigError(error));
  }
  const addr: Address = { transport: "tcp", hostname: listener.hostname ?? "", port: listener.port ?? 0 };
  if (isSpecificIp(addr.hostname)) known.local = addr;
  const reopen = (handler: BunSocketHandler, tls: TlsServerOptions) =>
    Bun.listen({
      ...endpoint,
      ...share,
      port: addr.port,
      allowHalfOpen: true,
      socket: handler,
      tls: bunServerTls(tls),
    });
  return Promise.resolve({
    addr,
    close: () => Promise.resolve(listener.stop(false)),
    maxSockets: socketBudget(),
    reloadTls(next) {
      // Bun's listener.reload() swaps handlers but keeps the old certificate (measured with Bun
      // 1.4), so the listener is reopened on the same address: open connections stay. Alone on
      // the port, a connection attempt in the instant between close and bind is refused; with
      // reusePort (workers) the new listener binds beside the old one before the old one closes,
      // and the other workers' listeners stay as they are.
      let replacement: ReturnType<BunApi["listen"]>;
      try {
        // Checked on a throwaway port first, so a bad pair leaves the live listener alone.
        Bun.listen({ hostname: "127.0.0.1", port: 0, allowHalfOpen: true, socket, tls: bunServerTls(next) })
          .stop(true);
        const nextSocket = tlsServerHandler(known, handlers, next);
        if (reusePort) {
          replacement = reopen(nextSocket, next);
          listener.stop(false);
        } else {
          listener.stop(false);
          try {
            replacement = reopen(nextSocket, next);
          } catch (error) {
            listener = reopen(socket, current);
            throw error;
          }
        }
        socket = nextSocket;
        current = next;
      } catch (error) {
        return Promise.reject(toTlsConfigError(error));
      }
      listener = replacement;
      return Promise.resolve();
    },
  });
}

function settleHandshake(wrapper: BunTlsStreamSocket, failure?: Error): void {
  wrapper.handshakeDone = failure === undefined;
  if (failure) wrapper.handshaken?.reject(failure);
  else wrapper.handshaken?.resolve();
}

async function connectTls(endpoint: Endpoint, options: TlsClientOptions): Promise<StreamSocket> {
  const unixPath = "path" in endpoint ? endpoint.path : undefined;
  const known: KnownAddresses = unixPath !== undefined ? { unix: { transport: "unix", path: unixPath } } : {};
  const host = "path" in endpoint ? undefined : endpoint.hostname;
  const servername = options.servername ?? host;
  // SNI names a host, never an address (RFC 6066); without a serverName Bun sends the host, so an
  // address gets "" (no SNI). The name is verified below either way.
  const sni = servername === undefined || isIP(servername) !== 0 ? "" : servername;
  const insecure = options.insecure === true;
  let handshaken!: Promise<void>;
  const base = handlerFor(known);
  const socket = await Bun.connect({
    ...bunEndpoint(endpoint),
    allowHalfOpen: true,
    tls: {
      // Trusted in addition to the system roots, not instead of them.
      ...(options.ca !== undefined && { ca: [...rootCertificates, options.ca] }),
      ...(options.cert !== undefined && { cert: options.cert, key: options.key }),
      serverName: sni,
      ...(options.alpn && { ALPNProtocols: alpnWireFormat(options.alpn).buffer as ArrayBuffer }),
      // A pinned fingerprint replaces the CA and name checks (checked in handshake()).
      rejectUnauthorized: !insecure && options.fingerprint === undefined,
    },
    socket: {
      ...base,
      open(socket) {
        const wrapper = new BunTlsStreamSocket(socket, known);
        socket.data = wrapper;
        if (unixPath === undefined) socket.setNoDelay?.(true);
        handshaken = new Promise((resolve, reject) => (wrapper.handshaken = { resolve, reject }));
        handshaken.catch(() => {});
      },
      handshake(socket, success, authorizationError) {
        const wrapper = socket.data as BunTlsStreamSocket;
        let failure: Error | undefined;
        if (success && options.fingerprint !== undefined) {
          checkFingerprint(socket.getPeerCertificate?.()?.raw, options.fingerprint).then(
            () => settleHandshake(wrapper),
            (error) => settleHandshake(wrapper, error),
          );
          return;
        }
        if (!success) failure = authorizationError ?? new Error("TLS handshake failed");
        else if (!insecure) {
          // Verified here as well: Bun has let a wrong CA through in some releases (oven-sh/bun#33754).
          const peer = socket.getPeerCertificate?.();
          failure = authorizationError ??
            (socket.authorized === false ? new Error("the server's certificate is not trusted") : undefined) ??
            (peer ? checkServerIdentity(servername ?? host ?? "", peer) : new Error("the server sent no certificate"));
        }
        settleHandshake(wrapper, failure);
      },
      close(socket, error) {
        const wrapper = socket.data as BunTlsStreamSocket | undefined;
        wrapper?.handshaken?.reject(error ?? new Error("closed during the TLS handshake"));
        base.close(socket, error);
      },
    },
  });
  const wrapper = socket.data as BunTlsStreamSocket;
  try {
    await handshaken;
  } catch (error) {
    wrapper.close();
    throw error;
  }
  return wrapper;
}

async function connectBun(endpoint: Endpoint, options: ConnectOptions | undefined): Promise<StreamSocket> {
  if (options?.tls && options.beforeTls) return await (await nodeTransport()).connect(endpoint, options);
  if (options?.tls) return await connectTls(endpoint, options.tls);
  const unixPath = "path" in endpoint ? endpoint.path : undefined;
  const known: KnownAddresses = unixPath !== undefined ? { unix: { transport: "unix", path: unixPath } } : {};
  const socket = await Bun.connect({ ...bunEndpoint(endpoint), allowHalfOpen: true, socket: handlerFor(known) });
  return socket.data;
}

// --- transport ---

// TLS after a clear-text prefix (a PROXY header) runs on Bun's node:net and node:tls, with the Node
// adapter's code: Bun.listen and Bun.connect start TLS at once, and Bun's node:tls adopts an
// accepted connection into a server-side TLS socket, the bytes already read first.
async function nodeTransport(): Promise<Transport> {
  return (await import("./node.ts")).transport;
}

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
    // Bun.listen's TLS starts at accept; node:tls runs it after a clear-text header, in place.
    if (options?.tls && options.deferTls) {
      return nodeTransport().then((node) => node.listen(endpoint, handlers, options));
    }
    if (options?.tls) return listenTls(endpoint, handlers, options.tls, options.reusePort);
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const known: KnownAddresses = unixPath !== undefined ? { unix: { transport: "unix", path: unixPath } } : {};
    let listener: ReturnType<BunApi["listen"]>;
    try {
      const listen = () =>
        Bun.listen({
          ...bunEndpoint(endpoint),
          allowHalfOpen: true,
          ...(options?.reusePort && unixPath === undefined ? { reusePort: true } : {}),
          socket: handlerFor(known, handlers.onSocket),
        });
      listener = unixPath === undefined ? listen() : bindWithMode(unixPath, options?.unixMode, listen);
    } catch (error) {
      if ((error as { code?: string }).code !== "EADDRINUSE") return Promise.reject(error);
      return Promise.reject(new AddrInUseError(formatEndpoint(endpoint), { cause: error }));
    }
    const addr: Address = unixPath !== undefined
      ? { transport: "unix", path: unixPath }
      : { transport: "tcp", hostname: listener.hostname ?? "", port: listener.port ?? 0 };
    if (addr.transport === "tcp" && isSpecificIp(addr.hostname)) known.local = addr;
    // Bun.listen reports no accept failures (it has no callback for them); a connection reset in the
    // accept queue reaches us as one that closes at once (test/accept_errors.test.ts).
    // stop(false) stops accepting and leaves open connections to the core.
    return Promise.resolve({ addr, close: () => Promise.resolve(listener.stop(false)), maxSockets: socketBudget() });
  },
  connect(endpoint, options) {
    return connectBun(endpoint, options).catch((error) => {
      throw explainConnectError(error, endpoint, options?.tls);
    });
  },
  removeSocketFile: removeStaleSocketFile,
  explainError: explainConnectError,
  async bindDatagram(endpoint, handlers) {
    const wrapper = new BunDatagramSocket(handlers);
    try {
      wrapper.bind(await Bun.udpSocket({ ...endpoint, socket: wrapper.handler }));
    } catch (error) {
      if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
      throw new AddrInUseError(`udp ${formatEndpoint(endpoint)}`, { cause: error });
    }
    return wrapper;
  },
  lookup: lookupHost,
};

// --- datagrams ---

/**
 * Tries per datagram when send() throws: pending errors of earlier datagrams (one per ICMP
 * error that arrived since) are taken first; more than one between two tries is rare.
 */
const SEND_ATTEMPTS = 3;

class BunDatagramSocket implements DatagramSocket {
  #socket: BunUdpSocket | undefined;
  #addr: Address | undefined;
  #drainWaiters: (() => void)[] = [];
  #full = false;
  #closed = false;
  #handlers: DatagramHandlers;
  readonly handler: BunUdpHandler;

  constructor(handlers: DatagramHandlers) {
    this.#handlers = handlers;
    this.handler = {
      data: (_socket, bytes, port, hostname) => {
        if (!this.#closed) handlers.onMessage(bytes, hostname, port);
      },
      drain: () => {
        this.#full = false;
        for (const waiter of this.#drainWaiters.splice(0)) waiter();
      },
      // Always installed: an unhandled UDP error (ECONNREFUSED from an ICMP port unreachable)
      // would be an uncaught exception. Bun does not say which peer it came from, and reports
      // each ICMP error twice: as the socket's pending error (a receive returned it), then read
      // from the error queue (`errqueue: true`). Passed on once, from the queue.
      error(error: Error & { code?: string; errqueue?: boolean }) {
        if (error.code === "ECONNREFUSED" && error.errqueue !== true) return;
        handlers.onError(error);
      },
    };
  }

  bind(socket: BunUdpSocket): void {
    this.#socket = socket;
    this.#addr = { transport: "udp", hostname: socket.address.address, port: socket.address.port };
  }

  get addr(): Address {
    return this.#addr!;
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.#closed) return false;
    // Bun's send() copies nothing it does not send at once: the bytes are free on return.
    for (let attempt = 1;; attempt++) {
      try {
        if (this.#socket!.send(bytes, port, hostname)) return true;
        this.#full = true;
        return false;
      } catch (error) {
        // Bun sets IP_RECVERR: an ICMP error for an earlier datagram, to another peer, stays
        // pending on the socket, and the next send() throws it instead of sending. Taking it
        // clears it, so the same datagram is sent again (the error is reported from the error
        // queue). One that still throws is this peer's own: reported, as node:dgram does.
        if (attempt < SEND_ATTEMPTS) continue;
        this.#handlers.onError(error, hostname, port);
        return true;
      }
    }
  }

  onDrain(callback: () => void): void {
    if (!this.#full || this.#closed) queueMicrotask(callback);
    else this.#drainWaiters.push(callback);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#socket!.close();
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
    return RESOLVED;
  }
}

/**
 * Builds what the CLI needs from Bun (which provides Node's `process`). Its output starts at once (listeners on the
 * process's streams): call it once, when the CLI runs, never at import.
 *
 * @returns A new host around {@linkcode transport}.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { createHost } from "./bun.ts";
 *
 * const host = createHost();
 * host.exit(await runCli(host));
 * ```
 */
export function createHost(): CliHost {
  return processHost(transport);
}
