/**
 * The Node adapter: echogate's {@linkcode Transport} over `node:net`.
 *
 * @see https://nodejs.org/api/net.html
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import {
  type Address,
  AddrInUseError,
  checkFingerprint,
  type ConnectOptions,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  type Endpoint,
  formatEndpoint,
  formatSubject,
  isSpecificIp,
  type Listener,
  type ListenHandlers,
  PushStreamSocket,
  type ReadQueueSource,
  type StreamSocket,
  type TlsClientOptions,
  TlsConfigError,
  TlsHandshakeError,
  type TlsInfo,
  type TlsServerOptions,
  toRetainable,
  type Transport,
} from "../src/mod.ts";
import { type CliHost, processHost } from "./_process_host.ts";
import { socketBudget } from "./_descriptors.ts";
import { bindNodeDatagram } from "./_dgram.ts";
import { lookupHost } from "./_lookup.ts";
import { explainConnectError } from "./_connect_errors.ts";
import { tcpListenOptions } from "./_reuse_port.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";
import { NODE_TLS_SERVER_PROFILE } from "./_tls_profile.ts";

const RESOLVED: Promise<void> = Promise.resolve();

const WRAPPER: unique symbol = Symbol("echogate.NodeStreamSocket");
type TaggedSocket = net.Socket & { [WRAPPER]: NodeStreamSocket };

// --- socket ---

class NodeStreamSocket extends PushStreamSocket {
  readonly localAddr: Address;
  #socket: net.Socket;
  #error: Error | undefined;
  #drainWaiters: ((error?: unknown) => void)[] | undefined; // made, with its listeners, on first use
  #closed: Promise<void> | undefined;

  /**
   * @param local The local address when the listener already knows it (shared, not per socket);
   *   for a unix socket, its path, which is then reported as both ends' address.
   */
  constructor(socket: net.Socket, local?: Address) {
    super(readSource(socket));
    this.#socket = socket;
    if (local?.transport !== "unix") void socket.remotePort; // makes Node cache the peer's address now, while it is known
    this.localAddr = local ?? localTcpAddress(socket);
    // Listeners shared by all sockets (they find this object through the socket), so an idle
    // connection holds no closures.
    (socket as TaggedSocket)[WRAPPER] = this;
    socket.on("data", NodeStreamSocket.#onData);
    socket.on("error", NodeStreamSocket.#onError);
    // Node has an "end" listener of its own on every socket (the same function for all); adding a
    // second would turn that event's slot into an array (64 bytes per connection). Ours takes its
    // place and calls it.
    const nodeOnEnd = NodeStreamSocket.#nodeOnEnd ??= soleListener(socket, "end");
    const ends = socket.listenerCount("end");
    if (nodeOnEnd !== undefined) socket.off("end", nodeOnEnd);
    socket.on("end", socket.listenerCount("end") < ends ? NodeStreamSocket.#onEndForNode : NodeStreamSocket.#onEnd);
  }

  static #nodeOnEnd: ((this: net.Socket) => void) | undefined;

  static #onData(this: TaggedSocket, chunk: Buffer): void {
    this[WRAPPER].push(chunk);
  }

  static #onEndForNode(this: TaggedSocket): void {
    NodeStreamSocket.#nodeOnEnd!.call(this);
    this[WRAPPER].end();
  }

  static #onEnd(this: TaggedSocket): void {
    this[WRAPPER].end();
  }

  static #onError(this: TaggedSocket, error: Error): void {
    const wrapper = this[WRAPPER];
    wrapper.#error ??= error;
    wrapper.end(error);
  }

  static #onClose(this: TaggedSocket): void {
    const wrapper = this[WRAPPER];
    wrapper.end();
    wrapper.#callDrainWaiters(wrapper.#error ?? new Error("Socket is closed"));
  }

  static #onDrain(this: TaggedSocket): void {
    this[WRAPPER].#callDrainWaiters();
  }

  #callDrainWaiters(error?: Error): void {
    for (const waiter of this.#drainWaiters!.splice(0)) waiter(error);
  }

  // Built on demand from what Node caches on the socket (still there after close): an object
  // fewer per idle connection.
  get remoteAddr(): Address {
    const socket = this.#socket;
    return this.localAddr.transport === "unix" ? this.localAddr : remoteTcpAddress(socket);
  }

  // Only TLS sockets have a session to report.
  get tls(): TlsInfo | undefined {
    const socket = this.#socket as tls.TLSSocket;
    return socket.encrypted ? tlsInfo(socket) : undefined;
  }

  get closed(): Promise<void> {
    const socket = this.#socket;
    return this.#closed ??= socket.closed ? RESOLVED : new Promise((resolve) => socket.once("close", () => resolve()));
  }

  writeNow(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (socket.destroyed) throw new Error("Socket is closed");
    // Behind a backlog Node keeps what it is given until it drains: hand it bytes it may keep.
    return socket.write(socket.writableLength > 0 ? toRetainable(bytes) : bytes);
  }

  onDrain(callback: (error?: unknown) => void): void {
    if (this.#socket.destroyed) queueMicrotask(() => callback(this.#error ?? new Error("Socket is closed")));
    else if (!this.#socket.writableNeedDrain) queueMicrotask(() => callback());
    else {
      if (this.#drainWaiters === undefined) {
        // The first wait for drain: only now do the drain and close listeners go on.
        this.#drainWaiters = [];
        this.#socket.on("drain", NodeStreamSocket.#onDrain);
        this.#socket.on("close", NodeStreamSocket.#onClose);
      }
      this.#drainWaiters.push(callback);
    }
  }

  closeWrite(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableFinished) return RESOLVED;
    return new Promise((resolve) => {
      socket.once("finish", resolve);
      socket.once("close", resolve);
      socket.end();
    });
  }

  close(): void {
    this.#socket.destroy();
    this.end();
  }

  /**
   * Hands the connection over to another reader (a TLS handshake): our data listener off, input
   * paused, and `buffered` plus whatever was queued put back in front of the socket's input,
   * where a TLSSocket wrapping it reads first. Error and end listeners stay: they only settle this
   * wrapper, and keep a late error from going unhandled.
   */
  release(buffered: Uint8Array | undefined): net.Socket {
    const socket = this.#socket;
    socket.pause();
    socket.off("data", NodeStreamSocket.#onData);
    const queued = this.takeQueued();
    if (buffered !== undefined && buffered.length > 0) queued.unshift(buffered);
    if (queued.length > 0) socket.unshift(Buffer.concat(queued));
    return socket;
  }
}

/** This end of a TCP socket, from what Node caches on it. */
function localTcpAddress(socket: net.Socket): Address {
  return { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
}

/** The peer of a TCP socket, from what Node caches on it. */
function remoteTcpAddress(socket: net.Socket): Address {
  return { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
}

/** The one listener for `event` on `socket`, if there is exactly one. */
function soleListener(socket: net.Socket, event: string): ((this: net.Socket) => void) | undefined {
  const listeners = socket.listeners(event);
  return listeners.length === 1 ? listeners[0] as (this: net.Socket) => void : undefined;
}

// --- TLS ---

/** What Deno's node:tls puts on a TLS socket's handle: the TCP connection underneath. */
interface DenoTlsHandle {
  _nativeTcpHandle?: { readStart(): number; readStop(): number };
}

/**
 * What pauses `socket`'s input: the socket itself, except on Deno's node:tls. There, pausing a
 * TLS socket only holds its decrypted bytes back while the TCP connection is still read, without
 * bound (measured: 286 MB taken in 4 s from a peer that never read its echo), and end of input
 * that arrives meanwhile is lost (its TLSWrap drops the EOF it held when a resume pauses again).
 * Pausing the TCP connection underneath does neither: the peer is held back by TCP.
 */
function readSource(socket: net.Socket): ReadQueueSource {
  const tcp = (socket as { _handle?: DenoTlsHandle })._handle?._nativeTcpHandle;
  if (tcp === undefined) return socket;
  return { pause: () => void tcp.readStop(), resume: () => void tcp.readStart() };
}

function tlsInfo(socket: tls.TLSSocket): TlsInfo {
  const info: TlsInfo = {};
  const version = socket.getProtocol();
  if (version) info.version = version;
  if (socket.alpnProtocol) info.alpn = socket.alpnProtocol;
  const servername = (socket as { servername?: string | false }).servername;
  if (servername) info.servername = servername;
  const peer = socket.getPeerCertificate();
  const subject = peer && formatSubject(peer.subject as unknown as Record<string, string>);
  if (subject) {
    info.peerSubject = subject;
    info.authorized = socket.authorized;
  }
  return info;
}

/** Node's secure-context options for a server, checked now so a bad pair fails before binding. */
function serverContextOptions(options: TlsServerOptions): tls.SecureContextOptions & tls.TlsOptions {
  const context = {
    ...NODE_TLS_SERVER_PROFILE,
    cert: options.cert,
    key: options.key,
    ...(options.clientCa !== undefined && { ca: options.clientCa, requestCert: true, rejectUnauthorized: true }),
    ...(options.alpn && { ALPNProtocols: [...options.alpn] }),
  };
  checkPair(options);
  try {
    tls.createSecureContext(context);
  } catch (error) {
    throw new TlsConfigError((error as Error).message, { cause: error });
  }
  return context;
}

/**
 * Checks that the certificate and CA parse and that the key belongs to the certificate (Deno's
 * node:tls, which this code also runs on, does not check the pair when it builds a context).
 */
function checkPair(options: TlsServerOptions): void {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(options.cert);
  } catch (error) {
    throw new TlsConfigError(`the certificate is not a PEM certificate: ${(error as Error).message}`, { cause: error });
  }
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(options.key));
  } catch (error) {
    throw new TlsConfigError(`the key is not a PEM private key: ${(error as Error).message}`, { cause: error });
  }
  if (!matches) throw new TlsConfigError("the key does not belong to the certificate");
  if (options.clientCa !== undefined) {
    try {
      new X509Certificate(options.clientCa);
    } catch (error) {
      throw new TlsConfigError(`the client CA is not a PEM certificate: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * Makes a client's first renegotiation an error on `socket` (Node's own limit allows three in
 * ten minutes); the error closes the connection as any read error does. Bun's BoringSSL and
 * Deno's rustls refuse renegotiation themselves.
 */
function refuseRenegotiation(socket: tls.TLSSocket): tls.TLSSocket {
  socket.disableRenegotiation();
  return socket;
}

/** Node's handshake timeout, or Deno's node:tls one: a plain `Error` with Node's message and no code. */
function isHandshakeTimeout(error: NodeJS.ErrnoException): boolean {
  return error.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ||
    (error.code === undefined && error.message === "TLS handshake timeout");
}

/** A TCP connection whose TLS handshake waits for `startTls` (a listener with `deferTls`). */
class NodeDeferredTlsSocket extends NodeStreamSocket {
  #tlsServer: tls.Server;
  #local: Address | undefined;

  constructor(socket: net.Socket, local: Address | undefined, tlsServer: tls.Server) {
    super(socket, local);
    this.#local = local;
    this.#tlsServer = tlsServer;
  }

  startTls(buffered?: Uint8Array): Promise<StreamSocket> {
    const socket = this.release(buffered) as PendingUpgrade;
    return new Promise((resolve, reject) => {
      const local = this.#local;
      socket[UPGRADE] = {
        resolve: (secure) => resolve(new NodeStreamSocket(secure, local)),
        reject,
      };
      socket.once(
        "close",
        () => settleUpgrade(socket)?.reject(new TlsHandshakeError("failed", "closed during the TLS handshake")),
      );
      // The TLS server's own path for a connection: its context (reloaded or not), client CA, ALPN
      // and handshake timeout; the bytes put back in front of the socket are read first.
      this.#tlsServer.emit("connection", socket);
    });
  }
}

const UPGRADE: unique symbol = Symbol("echogate.upgrade");
type PendingUpgrade = net.Socket & {
  [UPGRADE]?: { resolve(secure: tls.TLSSocket): void; reject(error: Error): void };
};

/** The pending `startTls` of the TCP connection under `socket` (a TLSSocket or that connection), taken once. */
function settleUpgrade(socket: net.Socket): PendingUpgrade[typeof UPGRADE] {
  const raw = ((socket as { _parent?: net.Socket })._parent ?? socket) as PendingUpgrade;
  const pending = raw[UPGRADE];
  raw[UPGRADE] = undefined;
  return pending;
}

function listenTls(
  endpoint: Endpoint,
  handlers: ListenHandlers,
  options: TlsServerOptions,
  reusePort: boolean | undefined,
  deferTls: boolean | undefined,
): Promise<Listener> {
  if ("path" in endpoint) return Promise.reject(new TypeError("TLS is served over TCP only"));
  let context: tls.TlsOptions;
  let where: ReturnType<typeof tcpListenOptions>;
  try {
    context = serverContextOptions(options);
    where = tcpListenOptions(endpoint.hostname, endpoint.port, reusePort);
  } catch (error) {
    return Promise.reject(error);
  }
  const server = tls.createServer({
    ...context,
    allowHalfOpen: true,
    noDelay: true,
    handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  } as tls.TlsOptions);
  let local: Address | undefined;
  server.on(
    "secureConnection",
    deferTls
      ? (socket) => {
        const pending = settleUpgrade(socket);
        if (pending) pending.resolve(refuseRenegotiation(socket));
        else socket.destroy(); // its TCP connection closed meanwhile, its startTls rejected
      }
      : (socket) => handlers.onSocket(new NodeStreamSocket(refuseRenegotiation(socket), local)),
  );
  // The peer's address, cached on the TCP socket while it is known: a client certificate Node
  // refuses after the handshake destroys the connection before tlsClientError, leaving the TLS
  // socket without an address (deferred connections cached theirs when they were accepted).
  if (!deferTls) server.on("connection", (socket: net.Socket) => void socket.remotePort);
  server.on("tlsClientError", (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    // Node's TLS socket whose client certificate was refused, and Deno's whose handshake failed,
    // have no peer address; their TCP socket has it.
    const peer = socket.remoteAddress === undefined ? (socket as { _parent?: net.Socket })._parent ?? socket : socket;
    const remoteAddr = remoteTcpAddress(peer);
    socket.destroy();
    const reason = isHandshakeTimeout(error) ? "timeout" : "failed";
    // OpenSSL's message carries its file and line; its reason is the useful part. A client
    // certificate refused after the handshake shows as a hang-up: its verification error says why.
    const refused = socket.authorizationError as Error | string | null | undefined; // Node's is a code
    const message = refused
      ? `client certificate refused: ${typeof refused === "string" ? refused : refused.message}`
      : (error as { reason?: string }).reason ?? error.message.split("\n")[0]!;
    if (deferTls) settleUpgrade(socket)?.reject(new TlsHandshakeError(reason, message));
    else handlers.onHandshakeError?.({ remoteAddr, reason, message });
  });
  // A plain TCP listener accepts. Deferred: each connection is handed to the TLS server later;
  // otherwise once its first byte shows a handshake (screenPlainText).
  const listening = net.createServer({ allowHalfOpen: true, noDelay: true });
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  listening.on(
    "connection",
    deferTls
      ? (socket) => handlers.onSocket(new NodeDeferredTlsSocket(socket, local, server))
      : (socket) =>
        screenPlainText(socket, handshakeTimeoutMs, server, (reason, message) =>
          handlers.onHandshakeError?.({ remoteAddr: remoteTcpAddress(socket), reason, message })),
  );
  return new Promise((resolve, reject) => {
    listening.once("error", (error) => reject(toListenError(error, endpoint)));
    listening.listen(where, () => {
      listening.removeAllListeners("error");
      listening.on("error", handlers.onError);
      const bound = listening.address() as net.AddressInfo;
      const addr: Address = { transport: "tcp", hostname: bound.address, port: bound.port };
      if (isSpecificIp(addr.hostname)) local = addr;
      resolve({
        addr,
        close: () => Promise.resolve(void listening.close()),
        maxSockets: socketBudget(),
        reloadTls(next) {
          try {
            server.setSecureContext(serverContextOptions(next));
            return Promise.resolve();
          } catch (error) {
            return Promise.reject(error);
          }
        },
      });
    });
  });
}

/** A fatal TLS alert, unexpected_message, in a TLS 1.0 record as a first record goes. */
const PLAIN_TEXT_ALERT = new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x0a]);
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Hands a new connection to `tlsServer` once its first byte starts a handshake record. Plain text
 * is answered at once with a fatal alert and closed: OpenSSL would close it without a word, or,
 * under five bytes, wait for the rest of a record header until the handshake timeout, so a plain
 * client could not tell it reached TLS (docs/tls.md). A connection silent for the handshake timeout
 * is closed as OpenSSL's own timeout would.
 */
function screenPlainText(
  socket: net.Socket,
  timeoutMs: number,
  tlsServer: tls.Server,
  refused: (reason: "failed" | "timeout", message: string) => void,
): void {
  const done = () => {
    socket.off("data", onData);
    socket.off("timeout", onTimeout);
    socket.setTimeout(0);
  };
  const onTimeout = () => {
    done();
    socket.destroy();
    refused("timeout", "TLS handshake timeout");
  };
  const onData = (chunk: Buffer) => {
    done();
    if (chunk[0] === TLS_HANDSHAKE_RECORD) {
      socket.pause();
      socket.unshift(chunk);
      tlsServer.emit("connection", socket);
      return;
    }
    // The rest is read and dropped until the peer closes (or the timeout), so closing does not
    // reset the connection before the alert is read.
    socket.end(PLAIN_TEXT_ALERT);
    socket.resume();
    socket.setTimeout(timeoutMs, () => socket.destroy());
    refused("failed", "not TLS: the client sent plain text");
  };
  socket.on("error", ignoreError);
  socket.on("data", onData);
  socket.on("timeout", onTimeout);
  socket.setTimeout(timeoutMs);
}

function ignoreError(): void {
  // The connection closes; nothing to report before its handshake started.
}

/** A plain TCP (or unix) connection to `endpoint`, once it is open. */
function openConnection(endpoint: Endpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in endpoint
      ? net.createConnection({ path: endpoint.path, allowHalfOpen: true })
      : net.createConnection({ host: endpoint.hostname, port: endpoint.port, allowHalfOpen: true, noDelay: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** A TCP (or unix) connection with `prefix` written in clear text on it, for a TLS handshake to follow. */
async function connectWithPrefix(
  endpoint: Endpoint,
  prefix: NonNullable<ConnectOptions["beforeTls"]>,
): Promise<net.Socket> {
  const socket = await openConnection(endpoint);
  const local: Address = "path" in endpoint ? { transport: "unix", path: endpoint.path } : localTcpAddress(socket);
  const remote: Address = "path" in endpoint ? local : remoteTcpAddress(socket);
  let bytes: Uint8Array;
  try {
    bytes = prefix({ localAddr: local, remoteAddr: remote });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  // Written out before the handshake starts: Deno's node:tls writes its ClientHello past
  // whatever the socket still holds.
  await new Promise<void>((resolve, reject) => socket.write(bytes, (error) => error ? reject(error) : resolve()));
  return socket;
}

async function connectTls(
  endpoint: Endpoint,
  options: TlsClientOptions,
  beforeTls?: ConnectOptions["beforeTls"],
): Promise<NodeStreamSocket> {
  // The clear-text prefix goes out first; the ClientHello follows on the same connection.
  const tcp = beforeTls ? await connectWithPrefix(endpoint, beforeTls) : undefined;
  return await new Promise((resolve, reject) => {
    const where = "path" in endpoint ? { path: endpoint.path } : { host: endpoint.hostname, port: endpoint.port };
    // The name verified: --servername, else the host. SNI names a host, never an address (RFC 6066):
    // for an address, none is sent ("" keeps Bun's and Deno's node:tls from sending the host) and
    // the address is verified by our own check.
    const name = options.servername ?? ("path" in endpoint ? undefined : endpoint.hostname);
    const byAddress = name !== undefined && net.isIP(name) !== 0;
    const socket = tls.connect({
      ...where,
      ...(tcp && { socket: tcp }),
      allowHalfOpen: true,
      // Trusted in addition to the system roots, not instead of them.
      ...(options.ca !== undefined && { ca: [...tls.rootCertificates, options.ca] }),
      ...(name !== undefined && { servername: byAddress ? "" : name }),
      ...(byAddress &&
        { checkServerIdentity: (_: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name, cert) }),
      ...(options.cert !== undefined && { cert: options.cert, key: options.key }),
      ...(options.alpn && { ALPNProtocols: [...options.alpn] }),
      // A pinned fingerprint replaces the CA and name checks (checked on secureConnect).
      rejectUnauthorized: options.insecure !== true && options.fingerprint === undefined,
    } as unknown as tls.ConnectionOptions);
    const failed = (error: Error) => {
      tcp?.destroy();
      reject(error);
    };
    socket.once("error", failed);
    socket.once("secureConnect", () => {
      const ready = () => {
        socket.off("error", failed);
        if (!("path" in endpoint)) socket.setNoDelay(true);
        resolve(
          new NodeStreamSocket(socket, "path" in endpoint ? { transport: "unix", path: endpoint.path } : undefined),
        );
      };
      if (options.fingerprint === undefined) return ready();
      // Before the socket is handed out, so nothing is sent to a server that is not the pinned one.
      checkFingerprint(socket.getPeerCertificate()?.raw, options.fingerprint).then(ready, (error) => {
        socket.destroy();
        failed(error);
      });
    });
  });
}

// --- transport ---

function toListenError(error: NodeJS.ErrnoException, endpoint: Endpoint): Error {
  if (error.code !== "EADDRINUSE") return error;
  return new AddrInUseError(formatEndpoint(endpoint), { cause: error });
}

/**
 * echogate's transport for Node (`node:net`), with half-open sockets.
 *
 * @example
 * ```ts ignore
 * import { serveEcho } from "../src/mod.ts";
 * import { transport } from "./node.ts";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * ```
 */
export const transport: Transport = {
  runtime: "node",
  listen(endpoint, handlers, options) {
    if (options?.tls) return listenTls(endpoint, handlers, options.tls, options.reusePort, options.deferTls);
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    // Every accepted socket's local address, when the listener is bound to one.
    let local: Address | undefined = unixPath !== undefined ? { transport: "unix", path: unixPath } : undefined;
    server.on("connection", (socket) => handlers.onSocket(new NodeStreamSocket(socket, local)));
    return new Promise((resolve, reject) => {
      server.once("error", (error) => reject(toListenError(error, endpoint)));
      const ready = () => {
        server.removeAllListeners("error");
        // After listening, errors are accept failures: Node keeps listening, and libuv has already
        // skipped ECONNABORTED and handled EMFILE (it accepts and closes the pending connection).
        server.on("error", handlers.onError);
        const bound = server.address();
        const addr: Address = unixPath !== undefined || typeof bound === "string" || bound === null
          ? { transport: "unix", path: unixPath ?? String(bound) }
          : { transport: "tcp", hostname: bound.address, port: bound.port };
        if (addr.transport === "tcp" && isSpecificIp(addr.hostname)) local = addr;
        // server.close() stops accepting at once; its callback would wait for every open connection.
        resolve({ addr, close: () => Promise.resolve(void server.close()), maxSockets: socketBudget() });
      };
      // Node binds a path synchronously (outside node:cluster workers, which refuse --unix).
      if ("path" in endpoint) {
        bindWithMode(endpoint.path, options?.unixMode, () => server.listen({ path: endpoint.path }, ready));
      } else {
        // `reusePort` is for workers: under node:cluster the primary owns the socket and shares it.
        let where: ReturnType<typeof tcpListenOptions>;
        try {
          where = tcpListenOptions(endpoint.hostname, endpoint.port, options?.reusePort);
        } catch (error) {
          return reject(error);
        }
        server.listen(where, ready);
      }
    });
  },
  connect(endpoint, options) {
    const explained = (error: unknown) => Promise.reject(explainConnectError(error, endpoint, options?.tls));
    if (options?.tls) return connectTls(endpoint, options.tls, options.beforeTls).catch(explained);
    const local: Address | undefined = "path" in endpoint ? { transport: "unix", path: endpoint.path } : undefined;
    return openConnection(endpoint).then((socket) => new NodeStreamSocket(socket, local), explained);
  },
  removeSocketFile: removeStaleSocketFile,
  explainError: explainConnectError,
  // Node writes a Buffer as is; any other Uint8Array gets wrapped in a new Buffer first.
  allocate: (size) => Buffer.allocUnsafeSlow(size),
  bindDatagram: bindNodeDatagram,
  lookup: lookupHost,
};

/**
 * Builds what the CLI needs from Node: arguments, environment, output, exit, signals and files. Its output starts at once (listeners on the
 * process's streams): call it once, when the CLI runs, never at import.
 *
 * @returns A new host around {@linkcode transport}.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { createHost } from "./node.ts";
 *
 * const host = createHost();
 * host.exit(await runCli(host));
 * ```
 */
export function createHost(): CliHost {
  return processHost(transport);
}
