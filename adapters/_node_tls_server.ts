// The Node adapter's TLS server (node:tls), which Deno and Bun also use for what their own TLS
// servers cannot do: ask for client certificates, start TLS after a clear-text PROXY header.

import * as net from "node:net";
import * as tls from "node:tls";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Buffer } from "node:buffer";
import {
  type Address,
  type Endpoint,
  type Listener,
  type ListenHandlers,
  type StreamSocket,
  TlsConfigError,
  TlsHandshakeError,
  type TlsServerOptions,
} from "../src/mod.ts";
import { isSpecificIp } from "../src/address.ts";
import { NodeStreamSocket, remoteTcpAddress } from "./_node_socket.ts";
import { socketBudget } from "./_descriptors.ts";
import { tcpListenOptions } from "./_reuse_port.ts";
import { NODE_TLS_SERVER_PROFILE } from "./_tls_profile.ts";
import { tlsEndpoint, toListenError } from "./_listen.ts";
import { handshakeTimeoutMs, PLAIN_TEXT_ALERT } from "./_tls_common.ts";

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

/**
 * Listens for TLS on `node:tls`: each connection's handshake starts once its first byte shows one
 * (plain text gets an alert), or, with `deferTls`, when the core calls `startTls`.
 */
export function listenTls(
  endpoint: Endpoint,
  handlers: ListenHandlers,
  options: TlsServerOptions,
  reusePort: boolean | undefined,
  deferTls: boolean | undefined,
): Promise<Listener> {
  let context: tls.TlsOptions;
  let where: ReturnType<typeof tcpListenOptions>;
  try {
    context = serverContextOptions(options);
    const { hostname, port } = tlsEndpoint(endpoint);
    where = tcpListenOptions(hostname, port, reusePort);
  } catch (error) {
    return Promise.reject(error);
  }
  const server = tls.createServer({
    ...context,
    allowHalfOpen: true,
    noDelay: true,
    handshakeTimeout: handshakeTimeoutMs(options),
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
  const timeoutMs = handshakeTimeoutMs(options);
  listening.on(
    "connection",
    deferTls
      ? (socket) => handlers.onSocket(new NodeDeferredTlsSocket(socket, local, server))
      : (socket) =>
        screenPlainText(socket, timeoutMs, server, (reason, message) =>
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
    refused("timeout", "TLS handshake timeout"); // first: a destroyed socket has no peer address (no penalty)
    socket.destroy();
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
