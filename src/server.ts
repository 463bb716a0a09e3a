/**
 * The protocol-independent server: binds through a {@linkcode Transport}, runs one handler per
 * connection, keeps count, logs connect/close/errors, enforces `maxConns` and closes every
 * connection the same careful way.
 *
 * @module
 */

import { AcceptErrorReport } from "./accept_errors.ts";
import { LogThrottle } from "./_log_throttle.ts";
import { formatAddress } from "./address.ts";
import { AddrInUseError } from "./errors.ts";
import { newServerCounters, refusalReason, type ServerCounters } from "./metrics/counters.ts";
import { closeGracefully } from "./close.ts";
import { within } from "./_timers.ts";
import { errorMessage, silentLogger } from "./log.ts";
import { createProxyTrust, DEFAULT_PROXY_TIMEOUT_MS, ProxiedSocket, ProxyHeaderReads } from "./proxy_protocol/mod.ts";
import { connectEvent, Connection, type ConnectionHooks, ConnectionList } from "./server_connection.ts";
import { TlsHandshakeError, type TlsHandshakeFailure, type TlsServerOptions } from "./tls.ts";
import type { Address, Endpoint, Listener, ListenOptions, StreamSocket, Transport } from "./types.ts";
import type {
  ChunkAnswering,
  ConnectionContext,
  ConnectionHandler,
  ConnectionResponding,
  EchogateServer,
  ServerOptions,
} from "./server_types.ts";

export type * from "./server_types.ts";

/**
 * Binds a server and runs `handler` for every connection.
 *
 * @param options Where to listen and server-wide limits.
 * @param handler The protocol, run once per connection.
 * @param protocol The name printed in the "listening" event.
 * @returns The running server.
 *
 * @example A server that says hi and hangs up
 * ```ts ignore
 * import { serve } from "./mod.ts";
 * import { transport } from "../adapters/deno.ts";
 *
 * const server = await serve({ transport, port: 0 }, async (socket) => {
 *   await socket.write(new TextEncoder().encode("hi\n"));
 * }, "echo");
 * await server.close();
 * ```
 */
export async function serve(
  options: ServerOptions,
  handler: ConnectionHandler & Partial<ChunkAnswering> & Partial<ConnectionResponding>,
  protocol: "echo" | "gate",
): Promise<EchogateServer> {
  const logger = options.logger ?? silentLogger;
  const maxConns = options.maxConns ?? Infinity;
  const lingerMs = options.lingerMs ?? 2000;
  const logsClose = logger.wants?.("close") ?? true;
  const connections = new ConnectionList();
  let stopping = false;
  let emptied: { promise: Promise<void>; resolve(): void } | undefined;
  // Counted where the server already does per-connection work; bytes come from the connections'
  // own counts, added in when they close (and read from the open ones when asked).
  const counters = newServerCounters();

  const hooks: ConnectionHooks = {
    logger,
    startedAt: Date.now(),
    answerChunk: handler.answerChunk,
    replyPrefix: handler.replyPrefix,
    finish,
  };

  function run(socket: StreamSocket): void {
    const connection = new Connection(socket, hooks, stopping);
    connections.add(connection);
    counters.accepted++;
    const tls = socket.tls;
    const proxy = socket instanceof ProxiedSocket ? formatAddress(socket.proxy) : undefined;
    logger.log(connectEvent(connection.remote, proxy, tls));
    if (handler.answerChunk && socket.answerEach) {
      // Answered chunk by chunk, each before the next is read: never anything unanswered here.
      connection.idle = true;
      try {
        socket.answerEach(connection);
      } catch (error) {
        connection.ended(error);
      }
      return;
    }
    const responder = handler.respond && socket.answerEach
      ? handler.respond(socket, connection, closed, lingerMs)
      : undefined;
    if (responder !== undefined) {
      try {
        socket.answerEach!(responder);
      } catch (error) {
        responder.ended(error);
      }
      return;
    }
    let handled: Promise<void>;
    try {
      handled = handler(socket, connection);
    } catch (error) {
      handled = Promise.reject(error);
    }
    handled.then(() => connection.ended(), (error) => connection.ended(error ?? new Error("Handler failed")));
  }

  async function finish(connection: Connection): Promise<void> {
    await closeGracefully(connection.socket, { lingerMs, pendingRead: connection.pendingRead });
    closed(connection);
  }

  // A connection's socket is closed: its `close` event, and it is gone.
  function closed(context: ConnectionContext): void {
    const connection = context as Connection;
    const socket = connection.socket;
    const durationMs = Date.now() - connection.connectedAt;
    const { bytesIn, bytesOut } = connection;
    counters.receivedBytes += bytesIn;
    counters.sentBytes += bytesOut;
    if (logsClose) {
      logger.log(
        socket instanceof ProxiedSocket
          ? {
            event: "close",
            remote: connection.remote,
            proxy: formatAddress(socket.proxy),
            bytesIn,
            bytesOut,
            durationMs,
          }
          : { event: "close", remote: connection.remote, bytesIn, bytesOut, durationMs },
      );
    }
    connections.delete(connection);
    if (connections.size === 0 && emptied) {
      emptied.resolve();
      emptied = undefined;
    }
  }

  /** Resolves once no connection is open. */
  function allClosed(): Promise<void> {
    if (connections.size === 0) return Promise.resolve();
    if (!emptied) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => (resolve = done));
      emptied = { promise, resolve };
    }
    return emptied.promise;
  }

  // Accept failures come in bursts: reported by kind, at most one line per interval.
  const acceptErrors = new AcceptErrorReport(logger);
  const reportAcceptError = (error: unknown) => acceptErrors.add(error);
  function refuse(socket: StreamSocket, reason: string): void {
    const proxy = socket instanceof ProxiedSocket ? { proxy: formatAddress(socket.proxy) } : undefined;
    counters.refused[stopping ? "shutting_down" : "proxy_header"]++;
    logger.log({ event: "refused", remote: formatAddress(socket.remoteAddr), reason, ...proxy });
    socket.close();
  }
  // Refusals at admission (a penalised source, a limit reached, an untrusted peer) cost the peer
  // one connect each, so they come in floods: the first of a burst is logged, the rest counted
  // (`more`). A bad PROXY header is logged each time, by `refuse`.
  const admissionRefusals = new LogThrottle<{ remote: Address; proxy: Address | undefined; reason: string }>(
    ({ remote, proxy, reason }, more) =>
      logger.log({
        event: "refused",
        remote: formatAddress(remote),
        reason,
        ...(proxy && { proxy: formatAddress(proxy) }),
        ...(more > 0 && { more }),
      }),
  );
  function refuseAtAdmission(socket: StreamSocket, reason: string): void {
    const proxy = socket instanceof ProxiedSocket ? socket.proxy : undefined;
    counters.refused[refusalReason(reason)]++;
    admissionRefusals.add({ remote: socket.remoteAddr, proxy, reason });
    socket.close();
  }

  function admitAndRun(socket: StreamSocket): void {
    const reason = stopping
      ? "shutting down"
      : connections.size >= maxConns
      ? `${maxConns} connections open`
      : options.admit?.(socket);
    if (reason !== undefined) return refuseAtAdmission(socket, reason);
    run(socket);
  }

  // With proxyProtocol: connections whose header is still being read (bounded by the header
  // timeout and by maxConns), closed with the server.
  const trustsProxy = options.proxyProtocol ? createProxyTrust(options.proxyProtocol.trusted) : undefined;
  const awaitingHeader = new ProxyHeaderReads(
    options.proxyProtocol?.timeoutMs ?? DEFAULT_PROXY_TIMEOUT_MS,
    (socket, outcome) => {
      if ("reason" in outcome) return refuse(socket, stopping ? "shutting down" : outcome.reason);
      try {
        if (deferredTls) startTlsAfterHeader(socket, outcome);
        else admitAndRun(outcome);
      } catch (error) {
        socket.close();
        logger.log({ event: "error", remote: formatAddress(socket.remoteAddr), message: errorMessage(error) });
      }
    },
  );

  // With proxyProtocol and tls: the header comes in clear text, then the TLS handshake runs over
  // the same connection, from the bytes that followed the header. Handshakes under way are
  // bounded like header reads and closed with the server.
  const deferredTls = options.proxyProtocol !== undefined && options.tls !== undefined;
  const handshaking = new Set<StreamSocket>();
  function startTlsAfterHeader(socket: StreamSocket, proxied: ProxiedSocket): void {
    if (!socket.startTls) throw new TypeError(`The ${options.transport.runtime} transport cannot defer TLS`);
    handshaking.add(socket);
    socket.startTls(proxied.takeBuffered()).then((secure) => {
      handshaking.delete(socket);
      try {
        admitAndRun(new ProxiedSocket(secure, proxied.header, NO_BYTES, secure.tls));
      } catch (error) {
        secure.close();
        logger.log({ event: "error", remote: formatAddress(proxied.remoteAddr), message: errorMessage(error) });
      }
    }, (error) => {
      handshaking.delete(socket);
      socket.close();
      if (stopping) return;
      // Logged under the client's address, as everything after the header is.
      reportHandshakeError({
        remoteAddr: proxied.remoteAddr,
        reason: error instanceof TlsHandshakeError ? error.reason : "failed",
        message: errorMessage(error),
      }, formatAddress(proxied.proxy));
    });
  }

  // Failed TLS handshakes (plain text on a TLS port, scanners, stalled peers) come in bursts too.
  const handshakeFailures = new LogThrottle<{ failure: TlsHandshakeFailure; proxy: string | undefined }>(
    ({ failure, proxy }, more) =>
      logger.log({
        event: "tls-handshake-failed",
        remote: formatAddress(failure.remoteAddr),
        ...(proxy !== undefined ? { proxy } : {}),
        reason: failure.reason,
        message: failure.message,
        ...(more ? { more } : {}),
      }),
  );
  function reportHandshakeError(failure: TlsHandshakeFailure, proxy?: string): void {
    counters.tlsHandshakeFailures[failure.reason]++;
    handshakeFailures.add({ failure, proxy });
    try {
      options.onHandshakeError?.(failure);
    } catch {
      // A hook's failure must not reach the listener.
    }
  }
  let maxSockets = Infinity; // known once bound
  const listener = await bind(options, {
    onSocket(socket) {
      if (connections.size + awaitingHeader.size + handshaking.size >= maxSockets) {
        // Out of descriptors soon: refuse as an accept failure would, and say so (throttled).
        socket.close();
        counters.refused.out_of_fds++;
        reportAcceptError(
          Object.assign(
            new Error(`Out of file descriptors: ${connections.size} connections open, refusing new ones`),
            { code: "EMFILE" },
          ),
        );
        return;
      }
      if (trustsProxy) {
        const reason = stopping
          ? "shutting down"
          : !trustsProxy(socket.remoteAddr)
          ? "not a trusted proxy (this listener takes PROXY protocol headers)"
          : awaitingHeader.size + handshaking.size >= maxConns
          ? `${maxConns} connections waiting for a PROXY header${deferredTls ? " or TLS handshake" : ""}`
          : undefined;
        if (reason !== undefined) return refuseAtAdmission(socket, reason);
        awaitingHeader.start(socket);
        return;
      }
      admitAndRun(socket);
    },
    onError: reportAcceptError,
    onHandshakeError: (failure) => reportHandshakeError(failure),
  });
  maxSockets = listener.maxSockets ?? Infinity;
  const url = formatAddress(listener.addr);
  logger.log({ event: "listening", protocol, address: url });

  let closing: Promise<void> | undefined;
  async function close(drainMs = 0): Promise<void> {
    stopping = true;
    await listener.close();
    acceptErrors.close();
    admissionRefusals.close();
    handshakeFailures.close();
    awaitingHeader.closeAll();
    for (const socket of handshaking) socket.close();
    if (drainMs > 0) {
      for (const connection of connections) {
        connection.stopping = true;
        // Waiting for input that may never come: send FIN now so the peer knows we are done.
        if (connection.idle) connection.socket.closeWrite().catch(() => {});
      }
      await within(allClosed(), drainMs);
    }
    for (const connection of connections) connection.socket.close();
    await allClosed();
  }
  return {
    addr: listener.addr,
    url,
    get connections() {
      return connections.size;
    },
    counters(): ServerCounters {
      const snapshot = { ...counters, refused: { ...counters.refused } };
      snapshot.tlsHandshakeFailures = { ...counters.tlsHandshakeFailures };
      snapshot.open = connections.size;
      for (const connection of connections) {
        snapshot.receivedBytes += connection.bytesIn;
        snapshot.sentBytes += connection.bytesOut;
      }
      return snapshot;
    },
    close(closeOptions) {
      return closing ??= close(closeOptions?.drainMs);
    },
    ...(listener.reloadTls && {
      async reloadTls(tls: TlsServerOptions) {
        try {
          await listener.reloadTls!(tls);
        } catch (error) {
          logger.log({ event: "tls-reload", ok: false, message: errorMessage(error) });
          throw error;
        }
        logger.log({ event: "tls-reload", ok: true });
      },
    }),
  };
}

const NO_BYTES = new Uint8Array(0);

/** Listens, replacing a stale unix socket file (one nothing listens on) if need be. */
async function bind(options: ServerOptions, handlers: Parameters<Transport["listen"]>[1]): Promise<Listener> {
  const { transport, tls } = options;
  const endpoint: Endpoint = options.path !== undefined
    ? { path: options.path }
    : { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0 };
  if (tls) {
    if ("path" in endpoint) throw new TypeError("TLS is served over TCP only, not on a unix socket");
    // A certificate or key the runtime refuses rejects with a TlsConfigError. Behind a PROXY
    // header, the handshake waits for the header (startTls).
    const listenOptions: ListenOptions = options.proxyProtocol ? { tls, deferTls: true } : { tls };
    if (options.reusePort) listenOptions.reusePort = true;
    return await transport.listen(endpoint, handlers, listenOptions);
  }
  const listenOptions: ListenOptions | undefined = "path" in endpoint
    ? (options.unixMode === undefined ? undefined : { unixMode: options.unixMode })
    : (options.reusePort ? { reusePort: true } : undefined);
  try {
    return await transport.listen(endpoint, handlers, listenOptions);
  } catch (error) {
    if (!("path" in endpoint) || !(error instanceof AddrInUseError)) throw error;
    let live: StreamSocket | undefined;
    try {
      live = await transport.connect(endpoint);
    } catch {
      // Nothing answers: a socket file left over from a server that died is replaced; anything
      // else there (a regular file, a directory, a symlink) makes removeSocketFile refuse.
      await transport.removeSocketFile(endpoint.path);
      return await transport.listen(endpoint, handlers, listenOptions);
    }
    live.close();
    throw error;
  }
}
