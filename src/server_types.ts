/**
 * The server's contract: the options `serve()` takes, the {@linkcode EchogateServer} it returns,
 * and what a connection handler gets ({@linkcode ConnectionContext}).
 *
 * @module
 */

import type { ServerCounters } from "./metrics/counters.ts";
import type { Logger } from "./log.ts";
import type { ProxyProtocolOptions } from "./proxy_protocol/receive.ts";
import type { TlsHandshakeFailure, TlsServerOptions } from "./tls.ts";
import type { Address, ChunkResponder, StreamSocket, Transport } from "./types.ts";

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
  /**
   * Unix socket path; when set, `hostname` and `port` are ignored. A stale socket file there (one
   * nothing listens on) is replaced; anything else at the path makes listening fail, untouched.
   */
  path?: string;
  /**
   * With `path`: the socket file's permission bits. The default lets only this user (and root)
   * connect, which matters with `proxyProtocol`: every peer on a unix socket may send a PROXY
   * header. @default {0o600}
   */
  unixMode?: number;
  /** Receives server events. @default {silentLogger} */
  logger?: Logger;
  /** Connections beyond this many open ones are closed at once. @default {Infinity} */
  maxConns?: number;
  /** How long a closing connection waits for the peer's FIN before closing anyway, in ms. @default {2000} */
  lingerMs?: number;
  /**
   * Decides at accept whether to serve a connection: return a reason to refuse it (it is then
   * closed at once, with a `refused` event, throttled), or `undefined` to serve it.
   */
  admit?: (socket: StreamSocket) => string | undefined;
  /**
   * Expect a PROXY protocol header (v1 or v2) at the start of every connection, from trusted
   * proxies only: the protocol, the logs, `maxConns` and `admit` then see the client the header
   * names (`socket.remoteAddr`), with the proxy's own address as `proxy` in events.
   */
  proxyProtocol?: ProxyProtocolOptions;
  /** Share the port with other processes (`ListenOptions.reusePort`); TCP only. @default {false} */
  reusePort?: boolean;
  /** Serve TLS (PEM strings). Every protocol runs over it unchanged. Not with `path`. */
  tls?: TlsServerOptions;
  /** Called for each connection whose TLS handshake failed or timed out (after it is logged, throttled). */
  onHandshakeError?: (failure: TlsHandshakeFailure) => void;
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
  /** What the server counted since it started (a snapshot; counters exact to the byte). */
  counters(): ServerCounters;
  /**
   * A TLS server only: serves new connections with this certificate, key and client CA from now
   * on; open connections keep theirs. Rejects, keeping the old ones, when they are refused.
   * Logs a `tls-reload` event either way.
   */
  reloadTls?(tls: TlsServerOptions): Promise<void>;
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
 * The per-chunk form of a protocol that answers each chunk as it arrives. A handler that also
 * carries `answerChunk` (as echo's `chunk` and `raw` handlers do) is run through
 * {@linkcode StreamSocket.answerEach} where the adapter has it: the connection itself is the
 * responder, so an idle connection holds no promise, closure or async frame.
 *
 * @example A handler with both forms
 * ```ts
 * import { type ChunkAnswering, type ConnectionHandler } from "./mod.ts";
 * import { answerAll } from "./answer.ts";
 *
 * const answerChunk: ChunkAnswering["answerChunk"] = (chunk) => chunk; // echo it back
 * const handler: ConnectionHandler & ChunkAnswering = Object.assign(
 *   (socket: Parameters<ConnectionHandler>[0], context: Parameters<ConnectionHandler>[1]) =>
 *     answerAll(socket, (chunk) => answerChunk(chunk, context)),
 *   { answerChunk },
 * );
 * ```
 */
export interface ChunkAnswering {
  /**
   * Returns the answer to `chunk` (see {@linkcode ChunkResponder.answer}): bytes to write,
   * `undefined` for none, `null` to stop reading. Must not throw for bad input: answer or stop.
   */
  answerChunk(chunk: Uint8Array, context: ConnectionContext, framed?: Uint8Array): Uint8Array | null | undefined;
  /** What every answer begins with, where `answerChunk` can take `framed` (see {@linkcode ChunkResponder.replyPrefix}). */
  replyPrefix?: Uint8Array;
}

/**
 * The promise-free form of a protocol that serves a connection from the socket's callbacks and
 * closes it itself (the gate's knock): a handler that also carries `respond` is run through
 * {@linkcode StreamSocket.answerEach} where the adapter has it and `respond` returns a responder.
 * The responder closes the socket (the same sequence as the server's: FIN, the peer's FIN or the
 * linger, close) and then calls `closed(context)`, once; the server then logs the `close` event
 * and forgets the connection.
 *
 * @example A protocol that takes the promise path for every connection
 * ```ts
 * import type { ConnectionResponding } from "./server_types.ts";
 *
 * const responding: ConnectionResponding = { respond: () => undefined };
 * ```
 */
export interface ConnectionResponding {
  /**
   * Returns the responder for this connection, or `undefined` to run the handler instead.
   * `lingerMs` is the server's (see {@linkcode ServerOptions.lingerMs}).
   */
  respond(
    socket: StreamSocket,
    context: ConnectionContext,
    closed: (context: ConnectionContext) => void,
    lingerMs: number,
  ): ChunkResponder | undefined;
}
