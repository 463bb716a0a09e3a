/**
 * The protocol-independent server: binds through a {@linkcode Transport}, runs one handler per
 * connection, keeps count, logs connect/close/errors, enforces `maxConns` and closes every
 * connection the same careful way.
 *
 * @module
 */

import { formatAddress } from "./address.ts";
import { AddrInUseError } from "./errors.ts";
import { errorMessage, type Logger, silentLogger } from "./log.ts";
import { TIMED_OUT, within } from "./_timers.ts";
import type { Address, Endpoint, Listener, StreamSocket, Transport } from "./types.ts";

/**
 * Where and how a server listens. Give `path` for a unix socket, else `hostname`/`port`.
 *
 * @example
 * ```ts
 * import type { ServerOptions } from "./mod.ts";
 *
 * const options: Omit<ServerOptions, "transport"> = { hostname: "::1", port: 0, maxConns: 100 };
 * ```
 */
export interface ServerOptions {
  /** The runtime's socket API (each adapter exports one as `transport`). */
  transport: Transport;
  /** Host to bind. @default {"127.0.0.1"} */
  hostname?: string;
  /** Port to bind; 0 picks a free one. The protocol sets the default. */
  port?: number;
  /** Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** Receives server events. @default {silentLogger} */
  logger?: Logger;
  /** Connections beyond this many open ones are closed at once. @default {Infinity} */
  maxConns?: number;
  /** How long a closing connection waits for the peer's FIN before closing anyway, in ms. @default {2000} */
  lingerMs?: number;
  /**
   * Decides at accept whether to serve a connection: return a reason to refuse it (it is then
   * closed at once, with a `refused` event), or `undefined` to serve it.
   */
  admit?: (socket: StreamSocket) => string | undefined;
}

/**
 * A running echo or gate server.
 *
 * @example Close a server when done
 * ```ts
 * import type { EchogateServer } from "./mod.ts";
 *
 * async function stop(server: EchogateServer): Promise<void> {
 *   console.log(`closing ${server.url}`);
 *   await server.close();
 * }
 * ```
 */
export interface EchogateServer {
  /** The address the server is bound to (with the real port when 0 was asked for). */
  readonly addr: Address;
  /** `addr` in printable form: `127.0.0.1:50007`, `[::1]:50007` or `unix:/path`. */
  readonly url: string;
  /** Connections open right now. */
  readonly connections: number;
  /**
   * Stops accepting, then shuts connections down gracefully: each finishes answering what it
   * already read, sends FIN and waits for the peer's; whatever is still open after `drainMs`
   * is closed at once. Resolves when every connection is closed.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

/** Per-connection state a {@linkcode ConnectionHandler} reads and updates. */
export interface ConnectionContext {
  /** The peer's printable address. */
  readonly remote: string;
  /** `Date.now()` when the connection was accepted. */
  readonly connectedAt: number;
  /** Where events go. */
  readonly logger: Logger;
  /** Bytes read from the peer so far. */
  bytesIn: number;
  /** Bytes written to the peer so far. */
  bytesOut: number;
  /** `Date.now()` of the last read or write; drives idle timeouts. */
  lastActivity: number;
  /** A read still pending when the handler returned; the close sequence awaits it instead of reading again. */
  pendingRead?: Promise<Uint8Array | null>;
  /**
   * True while the handler waits in `read()` with nothing unanswered; the server may then
   * half-close the socket to shut it down. Handlers set it around their reads.
   */
  idle: boolean;
  /** Set when the server shuts down: answer what was read, then return without reading more. */
  stopping: boolean;
}

/**
 * Runs one connection's protocol. The server closes the socket afterwards (flush, FIN, wait
 * for the peer's FIN, close), so a handler just returns when it is done.
 */
export type ConnectionHandler = (socket: StreamSocket, context: ConnectionContext) => Promise<void>;

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
  handler: ConnectionHandler,
  protocol: "echo" | "gate",
): Promise<EchogateServer> {
  const logger = options.logger ?? silentLogger;
  const maxConns = options.maxConns ?? Infinity;
  const lingerMs = options.lingerMs ?? 2000;
  const connections = new Map<StreamSocket, ConnectionContext>();
  let stopping = false;
  let emptied: { promise: Promise<void>; resolve(): void } | undefined;

  // No async frame per connection: an idle one holds only its context and a promise reaction.
  function run(socket: StreamSocket): void {
    const now = Date.now();
    const context: ConnectionContext = {
      remote: formatAddress(socket.remoteAddr),
      logger,
      connectedAt: now,
      bytesIn: 0,
      bytesOut: 0,
      lastActivity: now,
      idle: false,
      stopping,
    };
    connections.set(socket, context);
    logger.log({ event: "connect", remote: context.remote });
    let handled: Promise<void>;
    try {
      handled = handler(socket, context);
    } catch (error) {
      handled = Promise.reject(error);
    }
    handled.then(
      () => finish(socket, context),
      (error) => {
        logger.log({ event: "error", remote: context.remote, message: errorMessage(error) });
        return finish(socket, context);
      },
    );
  }

  async function finish(socket: StreamSocket, context: ConnectionContext): Promise<void> {
    await closeGracefully(socket, { lingerMs, pendingRead: context.pendingRead });
    logger.log({
      event: "close",
      remote: context.remote,
      bytesIn: context.bytesIn,
      bytesOut: context.bytesOut,
      durationMs: Date.now() - context.connectedAt,
    });
    connections.delete(socket);
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

  // Accept failures (out of descriptors, say) come in bursts: log the first, then at most one
  // line per interval with how many were left out.
  let acceptErrorLoggedAt = -Infinity;
  let acceptErrorsSuppressed = 0;
  function reportAcceptError(error: unknown): void {
    const now = Date.now();
    if (now - acceptErrorLoggedAt < ACCEPT_ERROR_LOG_INTERVAL_MS) {
      acceptErrorsSuppressed++;
      return;
    }
    const more = acceptErrorsSuppressed > 0 ? ` (${acceptErrorsSuppressed} more since the last report)` : "";
    logger.log({ event: "error", message: `Accept failed: ${errorMessage(error)}${more}` });
    acceptErrorLoggedAt = now;
    acceptErrorsSuppressed = 0;
  }
  let maxSockets = Infinity; // known once bound
  const listener = await bind(options, {
    onSocket(socket) {
      if (connections.size >= maxSockets) {
        // Out of descriptors soon: refuse as an accept failure would, and say so (throttled).
        socket.close();
        reportAcceptError(
          new Error(`Out of file descriptors: ${connections.size} connections open, refusing new ones`),
        );
        return;
      }
      const reason = stopping
        ? "shutting down"
        : connections.size >= maxConns
        ? `${maxConns} connections open`
        : options.admit?.(socket);
      if (reason !== undefined) {
        logger.log({ event: "refused", remote: formatAddress(socket.remoteAddr), reason });
        socket.close();
        return;
      }
      run(socket);
    },
    onError: reportAcceptError,
  });
  maxSockets = listener.maxSockets ?? Infinity;
  const url = formatAddress(listener.addr);
  logger.log({ event: "listening", protocol, address: url });

  let closing: Promise<void> | undefined;
  async function close(drainMs = 0): Promise<void> {
    stopping = true;
    await listener.close();
    if (drainMs > 0) {
      for (const [socket, context] of connections) {
        context.stopping = true;
        // Waiting for input that may never come: send FIN now so the peer knows we are done.
        if (context.idle) socket.closeWrite().catch(() => {});
      }
      await within(allClosed(), drainMs);
    }
    for (const socket of connections.keys()) socket.close();
    await allClosed();
  }
  return {
    addr: listener.addr,
    url,
    get connections() {
      return connections.size;
    },
    close(closeOptions) {
      return closing ??= close(closeOptions?.drainMs);
    },
  };
}

const ACCEPT_ERROR_LOG_INTERVAL_MS = 10_000;

/** Listens, replacing a stale unix socket file (one nothing listens on) if need be. */
async function bind(options: ServerOptions, handlers: Parameters<Transport["listen"]>[1]): Promise<Listener> {
  const { transport } = options;
  const endpoint: Endpoint = options.path !== undefined
    ? { path: options.path }
    : { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0 };
  try {
    return await transport.listen(endpoint, handlers);
  } catch (error) {
    if (!("path" in endpoint) || !(error instanceof AddrInUseError)) throw error;
    let live: StreamSocket | undefined;
    try {
      live = await transport.connect(endpoint);
    } catch {
      // Nothing answers: the file is left over from a server that died. Replace it.
      await transport.removeSocketFile(endpoint.path);
      return await transport.listen(endpoint, handlers);
    }
    live.close();
    throw error;
  }
}

/** Options for {@linkcode closeGracefully}. */
export interface CloseGracefullyOptions {
  /** How long to wait for the peer's FIN after ours, in ms. @default {2000} */
  lingerMs?: number;
  /** A read already in flight on the socket, to await instead of starting another. */
  pendingRead?: Promise<Uint8Array | null>;
}

/**
 * The one close sequence for every runtime: flush and send FIN, read and discard until the
 * peer's FIN (bounded by `lingerMs`), then close. Closing with unread input would make the
 * kernel send a reset, which can destroy a reply the peer has not read yet.
 *
 * @param socket The socket to close.
 * @param options Linger time and an in-flight read.
 *
 * @example
 * ```ts ignore
 * import { closeGracefully } from "./mod.ts";
 *
 * await closeGracefully(socket, { lingerMs: 1000 });
 * ```
 */
export async function closeGracefully(socket: StreamSocket, options: CloseGracefullyOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.lingerMs ?? 2000);
  try {
    await socket.closeWrite();
    let read = options.pendingRead ?? socket.read();
    while (true) {
      const chunk = await within(read, deadline - Date.now());
      if (chunk === null || chunk === TIMED_OUT) break;
      read = socket.read();
    }
  } catch {
    // The peer reset or the socket is already closed: nothing left to flush.
  } finally {
    socket.close();
  }
}
