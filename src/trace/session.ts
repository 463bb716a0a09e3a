/**
 * A traced transport and logger together: what a server or client needs to be traced, the gate's
 * timeout and a PROXY header's client included (those only the server's logic knows of, and logs).
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { Transport } from "../types.ts";
import type { Tracer } from "./tracer.ts";
import { traceTransport } from "./transport.ts";

/** Options for {@linkcode traceSession}. */
export interface TraceSessionOptions {
  /**
   * How many of each connection's first received and sent chunks carry a secret (a gate token):
   * their bytes are counted, not shown. @default {{ recv: 0, send: 0 }}
   */
  hide?: { recv?: number; send?: number };
}

/** What {@linkcode traceSession} makes. */
export interface TraceSession {
  /** The transport to serve or connect with. */
  readonly transport: Transport;
  /** Wraps a server's logger: its `timeout` and PROXY `connect` events become steps too. */
  logger(logger: Logger): Logger;
}

/**
 * Traces everything a server or client made with the returned transport and logger does.
 *
 * @param transport The runtime's transport.
 * @param tracer Where the steps go.
 * @param options Which chunks carry a token.
 * @returns The transport and a logger wrapper.
 *
 * @example Trace a gate
 * ```ts
 * import { transport } from "../../adapters/deno.ts";
 * import { serveGate } from "../gate/mod.ts";
 * import { silentLogger } from "../log.ts";
 * import { createTracer, renderTraceLine, traceSession } from "./mod.ts";
 *
 * const session = traceSession(transport, createTracer((record) => console.error(renderTraceLine(record))), {
 *   hide: { recv: 1 },
 * });
 * const gate = await serveGate({ transport: session.transport, port: 0, logger: session.logger(silentLogger) });
 * await gate.close();
 * ```
 */
export function traceSession(transport: Transport, tracer: Tracer, options: TraceSessionOptions = {}): TraceSession {
  const names = new ConnectionNames();
  return {
    transport: traceTransport(transport, tracer, {
      onConnection: (conn, remote) => remote === undefined ? names.forget(conn) : names.add(remote, conn),
      ...(options.hide && { hide: options.hide }),
    }),
    logger: (logger) => ({
      log(event) {
        if (event.event === "connect" && event.proxy !== undefined) {
          const conn = names.get(event.proxy);
          if (conn !== undefined) {
            names.add(event.remote, conn);
            tracer.trace({ step: "proxy", conn, client: event.remote });
          }
        } else if (event.event === "timeout") {
          tracer.trace({ step: "timeout", conn: names.get(event.remote) ?? 0, afterMs: event.durationMs });
        }
        logger.log(event);
      },
    }),
  };
}

// Which open connection a log event's address names: its peer, or behind a PROXY header the
// client the header names. As many entries as connections are open.
class ConnectionNames {
  #byRemote = new Map<string, number>();
  #byConn = new Map<number, string[]>();

  add(remote: string, conn: number): void {
    this.#byRemote.set(remote, conn);
    const names = this.#byConn.get(conn);
    if (names) names.push(remote);
    else this.#byConn.set(conn, [remote]);
  }

  get(remote: string): number | undefined {
    return this.#byRemote.get(remote);
  }

  forget(conn: number): void {
    for (const remote of this.#byConn.get(conn) ?? []) {
      if (this.#byRemote.get(remote) === conn) this.#byRemote.delete(remote);
    }
    this.#byConn.delete(conn);
  }
}
