// `--trace`: each socket step on standard error (src/trace/), for `echo serve`, `echo send`,
// `gate serve` and `gate knock`.

import { UsageError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { createTracer, renderTraceLine, type Tracer, traceTransport } from "../trace/mod.ts";
import type { Transport } from "../types.ts";
import type { Options } from "./command.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/** The --trace flag. */
export const TRACE_FLAG: Flag = {
  name: "trace",
  help: `Show each socket step (socket, bind, listen, accept, connect, recv, send,
shutdown, close...) as a line on standard error; docs/trace.md`,
};

/** What a command uses in place of the host's transport and its logger. */
export interface Trace {
  /** The transport to serve or connect with: the host's, traced with --trace. */
  readonly transport: Transport;
  /** The logger to serve with: with --trace, the gate's timeout and a PROXY header's client are traced too. */
  logger(logger: Logger): Logger;
}

/**
 * Reads --trace. Without it, the host's transport and the logger as they are: nothing traced,
 * nothing wrapped. With it, lines go to standard error through the host's bounded output (a slow
 * reader drops lines, never stalls the server), coloured only on a terminal without NO_COLOR.
 *
 * @param host The CLI host.
 * @param options The parsed flags.
 * @param hide How many of each connection's first chunks carry the token (shown without their bytes).
 * @returns The transport and logger to use.
 *
 * @example
 * ```ts
 * import { tracing } from "./trace_option.ts";
 * import type { CliHost } from "./host.ts";
 *
 * function transportFor(host: CliHost, traced: boolean) {
 *   return tracing(host, { trace: traced }).transport;
 * }
 * ```
 */
export function tracing(host: CliHost, options: Options, hide?: { recv?: number; send?: number }): Trace {
  if (options.trace !== true) return { transport: host.transport, logger: (logger) => logger };
  if ("workers" in options) throw new UsageError(`Option "--trace" does not apply with --workers`);
  const noColor = host.env("NO_COLOR");
  const color = host.isTerminal?.("stderr") === true && (noColor === undefined || noColor === "");
  const tracer = createTracer((record) => host.writeErr(renderTraceLine(record, { color })));
  const connections = new ConnectionNames();
  return {
    transport: traceTransport(host.transport, tracer, {
      onConnection: (conn, remote) => remote === undefined ? connections.forget(conn) : connections.add(remote, conn),
      ...(hide && { hide }),
    }),
    logger: (logger) => tracedLogger(logger, tracer, connections),
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

// Steps only the server's logic knows of: the gate's timeout, and the client a PROXY header named.
function tracedLogger(logger: Logger, tracer: Tracer, connections: ConnectionNames): Logger {
  return {
    log(event) {
      if (event.event === "connect" && event.proxy !== undefined) {
        const conn = connections.get(event.proxy);
        if (conn !== undefined) {
          connections.add(event.remote, conn);
          tracer.trace({ step: "proxy", conn, client: event.remote });
        }
      } else if (event.event === "timeout") {
        tracer.trace({ step: "timeout", conn: connections.get(event.remote) ?? 0, afterMs: event.durationMs });
      }
      logger.log(event);
    },
  };
}
