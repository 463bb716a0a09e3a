// A server's connections: one Connection object per connection (its context for the handler,
// and the responder answerEach reports to), the list that links them, and their connect event.

import { formatAddress } from "./address.ts";
import { errorMessage, type LogEvent, type Logger } from "./log.ts";
import { ProxiedSocket } from "./proxy_protocol/mod.ts";
import type { ChunkAnswering, ConnectionContext } from "./server_types.ts";
import type { TlsInfo } from "./tls.ts";
import type { ChunkResponder, StreamSocket } from "./types.ts";

/** What a {@linkcode Connection} needs from its server, shared by all of them. */
export interface ConnectionHooks {
  readonly logger: Logger;
  /** `Date.now()` when the server was created. */
  readonly startedAt: number;
  readonly answerChunk: ChunkAnswering["answerChunk"] | undefined;
  readonly replyPrefix: Uint8Array | undefined;
  finish(connection: Connection): Promise<void>;
}

// One object per connection: its context for the handler, and the responder answerEach reports
// to. Idle connections are many; everything a connection needs hangs off this object.
export class Connection implements ConnectionContext, ChunkResponder {
  bytesIn = 0;
  bytesOut = 0;
  idle = false;
  stopping: boolean;
  declare pendingRead?: Promise<Uint8Array | null>; // added by the few handlers that need it
  readonly socket: StreamSocket;
  // Links in the server's ConnectionList.
  previous: Connection | undefined = undefined;
  next: Connection | undefined = undefined;
  #hooks: ConnectionHooks;
  // Times as milliseconds since the server started (see sinceStart): small integers, kept
  // inline, where a Date.now() value would need a boxed number per field.
  #connectedMs: number;
  #activityMs: number;
  #ended = false;

  constructor(socket: StreamSocket, hooks: ConnectionHooks, stopping: boolean) {
    this.socket = socket;
    this.#hooks = hooks;
    this.stopping = stopping;
    this.#connectedMs = this.#activityMs = sinceStart(Date.now(), hooks);
  }

  get connectedAt(): number {
    return this.#hooks.startedAt + this.#connectedMs;
  }

  get lastActivity(): number {
    return this.#hooks.startedAt + this.#activityMs;
  }

  set lastActivity(time: number) {
    this.#activityMs = sinceStart(time, this.#hooks);
  }

  get logger(): Logger {
    return this.#hooks.logger;
  }

  // Formatted when logged, not kept: a string per idle connection adds up.
  get remote(): string {
    return formatAddress(this.socket.remoteAddr);
  }

  get replyPrefix(): Uint8Array | undefined {
    return this.#hooks.replyPrefix;
  }

  answer(chunk: Uint8Array, framed?: Uint8Array): Uint8Array | null | undefined {
    return this.#hooks.answerChunk!(chunk, this, framed);
  }

  ended(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined && !isProxyCheckReset(this.socket, error)) {
      this.logger.log({ event: "error", remote: this.remote, message: errorMessage(error) });
    }
    void this.#hooks.finish(this);
  }
}

/**
 * The `connect` event, built whole for each kind of connection, not spread: one object shape per
 * kind (a spread copies property by property).
 */
export function connectEvent(remote: string, proxy: string | undefined, tls: TlsInfo | undefined): LogEvent {
  if (tls && proxy !== undefined) return { event: "connect", remote, proxy, tls };
  if (tls) return { event: "connect", remote, tls };
  if (proxy !== undefined) return { event: "connect", remote, proxy };
  return { event: "connect", remote };
}

// HAProxy ends each health check with a reset once it has its answer: from a balancer's own
// connection (LOCAL, UNKNOWN or naming itself) that is routine, not an error worth a line.
function isProxyCheckReset(socket: StreamSocket, error: unknown): boolean {
  return socket instanceof ProxiedSocket && socket.fromProxyItself &&
    (error as { code?: unknown } | null)?.code === "ECONNRESET";
}

// The difference of two Date.now() values is a float to the engine even when whole, and a
// float field is boxed. `| 0` makes it a small integer while it fits one (12 days on every
// engine); beyond that it stays exact, only boxed.
function sinceStart(time: number, hooks: ConnectionHooks): number {
  const ms = time - hooks.startedAt;
  return ms >= -SMALL_INT_LIMIT && ms < SMALL_INT_LIMIT ? ms | 0 : ms;
}

const SMALL_INT_LIMIT = 2 ** 30;

// The open connections, linked through the connections themselves: no map entry (and no table
// to grow) per connection. Safe to delete from while iterating.
export class ConnectionList {
  size = 0;
  #head: Connection | undefined;

  add(connection: Connection): void {
    connection.next = this.#head;
    if (this.#head) this.#head.previous = connection;
    this.#head = connection;
    this.size++;
  }

  delete(connection: Connection): void {
    if (connection.previous) connection.previous.next = connection.next;
    else if (this.#head === connection) this.#head = connection.next;
    else return; // not in the list
    if (connection.next) connection.next.previous = connection.previous;
    connection.previous = connection.next = undefined;
    this.size--;
  }

  *[Symbol.iterator](): Iterator<Connection> {
    for (let connection = this.#head; connection;) {
      const next = connection.next;
      yield connection;
      connection = next;
    }
  }
}
