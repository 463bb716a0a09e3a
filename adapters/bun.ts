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
  type ConnectOptions,
  type Endpoint,
  type Listener,
  type ListenHandlers,
  type StreamSocket,
  type TlsClientOptions,
  TlsConfigError,
  type TlsServerOptions,
  type Transport,
} from "../src/mod.ts";
import { isSpecificIp } from "../src/address.ts";
import { alpnWireFormat } from "../src/tls.ts";
import { checkFingerprint } from "../src/tls_self_signed.ts";
import { checkServerIdentity, rootCertificates } from "node:tls";
import { type CliHost, processHost } from "./_process_host.ts";
import { socketBudget } from "./_descriptors.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";
import { lookupHost } from "./_lookup.ts";
import { BUN_TLS_SERVER_PROFILE } from "./_tls_profile.ts";
import { explainConnectError } from "./_connect_errors.ts";
import { PlainTextWatch } from "./_bun_plain_text.ts";
import { serveHttpBun } from "./_http_bun.ts";
import { Bun, type BunListener, type BunSocket, type BunSocketHandler, type BunTlsOptions } from "./_bun_api.ts";
import { bindBunDatagram } from "./_bun_datagram.ts";
import {
  bunEndpoint,
  BunTlsStreamSocket,
  handlerFor,
  type KnownAddresses,
  knownAddresses,
  settleHandshake,
} from "./_bun_socket.ts";
import { tlsEndpoint, toListenError } from "./_listen.ts";
import { handshakeTimeoutMs, reopenWithTls, serverName, startHandshakeTimer } from "./_tls_common.ts";

// --- TLS ---

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
  if (error instanceof AddrInUseError || code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
    return error as Error;
  }
  return new TlsConfigError((error as Error).message, { cause: error });
}

function tlsServerHandler(
  known: KnownAddresses,
  handlers: ListenHandlers,
  options: TlsServerOptions,
): BunSocketHandler {
  const timeoutMs = handshakeTimeoutMs(options);
  const requireClient = options.clientCa !== undefined;
  const plainText = new PlainTextWatch();
  const fail = (socket: BunSocket, reason: "timeout" | "failed", message: string) => {
    const wrapper = socket.data as BunTlsStreamSocket;
    plainText.stop(socket);
    if (wrapper.handshakeDone !== undefined) return;
    wrapper.handshakeDone = false;
    clearTimeout(wrapper.handshakeTimer);
    const remoteAddr = wrapper.remoteAddr;
    wrapper.close();
    handlers.onHandshakeError?.({ remoteAddr, reason, message });
  };
  // The watch has written the alert: a FIN follows, and the connection is read on (into Bun's TLS
  // layer) until the peer closes or the timeout, so closing does not reset it before the alert is read.
  const refusePlainText = (socket: BunSocket) => {
    const wrapper = socket.data as BunTlsStreamSocket;
    if (wrapper.handshakeDone !== undefined) return;
    wrapper.handshakeDone = false;
    clearTimeout(wrapper.handshakeTimer);
    socket.shutdown();
    wrapper.handshakeTimer = setTimeout(() => wrapper.close(), timeoutMs);
    const remoteAddr = wrapper.remoteAddr;
    handlers.onHandshakeError?.({ remoteAddr, reason: "failed", message: "not TLS: the client sent plain text" });
  };
  return {
    ...handlerFor(known),
    open(socket) {
      const wrapper = new BunTlsStreamSocket(socket, known);
      socket.data = wrapper;
      socket.setNoDelay?.(true);
      wrapper.handshakeTimer = startHandshakeTimer(timeoutMs, (message) => fail(socket, "timeout", message));
      plainText.watch(socket, () => refusePlainText(socket));
    },
    handshake(socket, success, authorizationError) {
      const wrapper = socket.data as BunTlsStreamSocket;
      plainText.stop(socket);
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
      if (wrapper?.handshakeDone === false) clearTimeout(wrapper.handshakeTimer);
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
  const known: KnownAddresses = {};
  let current = options;
  let listener: BunListener;
  const share = reusePort ? { reusePort: true } : {};
  const open = (tls: TlsServerOptions, where = tlsEndpoint(endpoint)) =>
    Bun.listen({
      ...where,
      ...share,
      allowHalfOpen: true,
      socket: tlsServerHandler(known, handlers, tls),
      tls: bunServerTls(tls),
    });
  try {
    listener = open(options);
  } catch (error) {
    return Promise.reject(toTlsConfigError(toListenError(error, endpoint)));
  }
  const addr: Address = { transport: "tcp", hostname: listener.hostname ?? "", port: listener.port ?? 0 };
  if (isSpecificIp(addr.hostname)) known.local = addr;
  return Promise.resolve({
    addr,
    close: () => Promise.resolve(listener.stop(false)),
    maxSockets: socketBudget(),
    // Bun's listener.reload() swaps handlers but keeps the old certificate (measured with Bun
    // 1.4): the listener is reopened on the same address.
    reloadTls: (next) =>
      reopenWithTls({
        check: (tls) => open(tls, { hostname: "127.0.0.1", port: 0 }).stop(true),
        open: (tls) => open(tls, { hostname: addr.hostname, port: addr.port }),
        close: () => listener.stop(false),
        adopt(replacement, tls) {
          listener = replacement;
          current = tls;
        },
      }, { next, current, reusePort }).catch((error) => Promise.reject(toTlsConfigError(error))),
  });
}

async function connectTls(endpoint: Endpoint, options: TlsClientOptions): Promise<StreamSocket> {
  const known = knownAddresses(endpoint);
  // Without a serverName Bun sends the host: "" sends none (an address, a unix socket).
  const { name, sni = "" } = serverName(endpoint, options);
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
        if (known.unix === undefined) socket.setNoDelay?.(true);
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
            (peer ? checkServerIdentity(name ?? "", peer) : new Error("the server sent no certificate"));
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
  const socket = await Bun.connect({
    ...bunEndpoint(endpoint),
    allowHalfOpen: true,
    socket: handlerFor(knownAddresses(endpoint)),
  });
  return socket.data;
}

// --- transport ---

// TLS after a clear-text prefix (a PROXY header) runs on Bun's node:net and node:tls, with the Node
// adapter's code: Bun.listen and Bun.connect start TLS at once, and Bun's node:tls adopts an
// accepted connection into a server-side TLS socket, the bytes already read first.
async function nodeTransport(): Promise<Transport> {
  return (await import("./node.ts")).transport;
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
  // For --trace. The backlog as `ss -ltn` shows it (Bun 1.4; docs/trace.md): measured, not documented.
  calls: { listen: "Bun.listen()", connect: "Bun.connect()", bindDatagram: "Bun.udpSocket()", backlog: 512 },
  // Bun.serve (and Bun's node:http) keep no connection limit: a server that asks for limits
  // (--metrics) runs behind a node:net listener that counts its connections.
  async serveHttp(endpoint, handler, limits) {
    if (limits === undefined) return await serveHttpBun(endpoint, handler);
    return await (await import("./_http_node.ts")).serveHttpNodeFronted(endpoint, handler, limits);
  },
  listen(endpoint, handlers, options) {
    // Bun.listen's TLS starts at accept; node:tls runs it after a clear-text header, in place.
    if (options?.tls && options.deferTls) {
      return nodeTransport().then((node) => node.listen(endpoint, handlers, options));
    }
    if (options?.tls) return listenTls(endpoint, handlers, options.tls, options.reusePort);
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const known = knownAddresses(endpoint);
    let listener: BunListener;
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
      return Promise.reject(toListenError(error, endpoint));
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
  bindDatagram: bindBunDatagram,
  lookup: lookupHost,
};

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
