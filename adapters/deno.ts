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
  type Address,
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
import type { CliHost } from "../src/cli/host.ts";
import { bindNodeDatagram } from "./_dgram.ts";
import { bindDenoDatagram } from "./_deno_datagram.ts";
import { Deno, type DenoConn, type DenoListener } from "./_deno_api.ts";
import { type AcceptControl, acceptEach, bindAgain } from "./_deno_accept.ts";
import { closeQuietly, DenoStreamSocket, withTransport } from "./_deno_socket.ts";
import { denoHost } from "./_deno_host.ts";
import { lookupHost } from "./_lookup.ts";
import { explainConnectError } from "./_connect_errors.ts";
import { serveHttpDeno } from "./_http_deno.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";
import { tlsEndpoint, toListenError } from "./_listen.ts";
import { handshakeTimeoutMs, reopenWithTls, startHandshakeTimer } from "./_tls_common.ts";

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
  const { hostname } = tlsEndpoint(endpoint);
  const timeoutMs = handshakeTimeoutMs(options);
  const open = (tls: TlsServerOptions, port: number): DenoListener => {
    try {
      return Deno.listenTls({
        hostname,
        port,
        // Unstable, like Deno.listen's: workers run with --unstable-net.
        ...(reusePort && { reusePort: true }),
        cert: tls.cert,
        key: tls.key,
        ...(tls.alpn && { alpnProtocols: [...tls.alpn] }),
      });
    } catch (error) {
      const name = (error as Error).name;
      if (name === "AddrInUse") throw toListenError(error, { hostname, port });
      if (name === "PermissionDenied" || name === "AddrNotAvailable") throw error;
      throw new TlsConfigError((error as Error).message, { cause: error });
    }
  };
  let listener = open(options, tlsEndpoint(endpoint).port);
  const addr = listener.addr as Address & { transport: "tcp" };
  const control: AcceptControl = { stopped: false };

  // Deno accepts before the handshake: each connection gets the handshake timeout, and reaches
  // the core only once its handshake is done.
  const handshake = (conn: DenoConn) => {
    const remoteAddr = conn.remoteAddr as Address;
    let timedOut: string | undefined;
    const timer = startHandshakeTimer(timeoutMs, (message) => {
      timedOut = message;
      closeQuietly(conn);
    });
    conn.handshake!().then((info) => {
      clearTimeout(timer);
      conn.setNoDelay?.(true);
      handlers.onSocket(new DenoStreamSocket(conn, remoteAddr, info.alpnProtocol ? { alpn: info.alpnProtocol } : {}));
    }, (error) => {
      clearTimeout(timer);
      if (timedOut === undefined) closeQuietly(conn);
      handlers.onHandshakeError?.({
        remoteAddr,
        reason: timedOut !== undefined ? "timeout" : "failed",
        message: timedOut ?? (error as Error).message,
      });
    });
  };
  const accepting = acceptEach(() => listener, handshake, handlers, control);
  return {
    addr,
    async close() {
      control.stopped = true;
      closeQuietly(listener);
      await accepting;
    },
    async reloadTls(next) {
      // Deno cannot swap a live listener's certificate: the listener is reopened on the same address.
      let resume!: () => void;
      try {
        await reopenWithTls({
          check: (tls) => open(tls, 0).close(),
          open: (tls) => bindAgain(() => open(tls, addr.port)),
          async close() {
            control.reopening = new Promise((resolve) => (resume = resolve));
            // The port is free only once the pending accept has given the listener up.
            const ended = new Promise<void>((resolve) => (control.acceptEnded = resolve));
            closeQuietly(listener);
            await ended;
          },
          adopt(replacement, tls) {
            listener = replacement;
            options = tls;
          },
        }, { next, current: options, reusePort });
      } finally {
        control.reopening = undefined;
        resume?.();
      }
    },
  };
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
      closeQuietly(conn);
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
    closeQuietly(tcp); // closed already, when startTls took it
    throw error;
  }
  conn.setNoDelay?.(true);
  return new DenoStreamSocket(conn, undefined, info.alpnProtocol ? { alpn: info.alpnProtocol } : {});
}

// --- transport ---

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
  if (options?.resettable) return await (await nodeTransport()).connect(endpoint, options);
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
  // For --trace. The backlog as `ss -ltn` shows it (Deno 2.9; docs/trace.md): measured, not documented.
  calls: { listen: "Deno.listen()", connect: "Deno.connect()", backlog: 511 },
  // Deno.serve has no connection limit or idle timeout: a server that asks for them (--metrics)
  // runs on Deno's node:http, which keeps both.
  async serveHttp(endpoint, handler, limits) {
    if (limits === undefined) return await serveHttpDeno(endpoint, handler);
    return await (await nodeTransport()).serveHttp!(endpoint, handler, limits);
  },
  async listen(endpoint, handlers, options) {
    const tls = options?.tls;
    // Deno.listenTls can neither ask for client certificates nor close a connection whose handshake
    // stalls (docs/tls.md): those run on Deno's node:tls, unless the caller chose to hold them.
    // So do listeners that defer the handshake (Deno has no server-side startTls).
    if (tls && (options?.deferTls || tls.clientCa !== undefined || tls.stalledHandshakes !== "hold")) {
      return await (await nodeTransport()).listen(endpoint, handlers, options);
    }
    if (tls) return listenTlsNative(endpoint, handlers, tls, options?.reusePort);
    // Deno's own sockets cannot send an RST; its node:net can (resetAndDestroy).
    if (options?.resettable) return await (await nodeTransport()).listen(endpoint, handlers, options);
    let listener: DenoListener;
    try {
      // reusePort is unstable in Deno: without --unstable-net, Deno exits (the supervisor adds the flag).
      listener = "path" in endpoint
        ? bindWithMode(endpoint.path, options?.unixMode, () => Deno.listen(denoEndpoint(endpoint)))
        : Deno.listen(options?.reusePort ? { ...endpoint, reusePort: true } : endpoint);
    } catch (error) {
      return Promise.reject(toListenError(error, endpoint));
    }
    const control: AcceptControl = { stopped: false };
    // A unix peer has no name of its own; report the socket path like the other adapters.
    const onConn = "path" in endpoint
      ? (conn: DenoConn) => handlers.onSocket(new DenoStreamSocket(conn, listener.addr))
      : (conn: DenoConn) => {
        conn.setNoDelay?.(true);
        handlers.onSocket(new DenoStreamSocket(conn));
      };
    const accepting = acceptEach(() => listener, onConn, handlers, control);
    return Promise.resolve({
      addr: listener.addr,
      async close() {
        control.stopped = true;
        closeQuietly(listener);
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
      ? bindDenoDatagram(Deno.listenDatagram, endpoint, handlers)
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
