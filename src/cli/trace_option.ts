// `--trace`: each socket step on standard error (src/trace/), for `echo serve`, `echo send`,
// `gate serve` and `gate knock`.

import { UsageError } from "../errors.ts";
import { createTracer, renderTraceLine, type TraceSession, traceSession } from "../trace/mod.ts";
import type { Options } from "./command.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/** The --trace flag. */
export const TRACE_FLAG: Flag = {
  name: "trace",
  help: `Show each socket step (socket, bind, listen, accept, connect, recv, send,
shutdown, close...) as a line on standard error; docs/trace.md`,
};

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
export function tracing(host: CliHost, options: Options, hide?: { recv?: number; send?: number }): TraceSession {
  if (options.trace !== true) return { transport: host.transport, logger: (logger) => logger };
  if ("workers" in options) throw new UsageError(`Option "--trace" does not apply with --workers`);
  const noColor = host.env("NO_COLOR");
  const color = host.isTerminal?.("stderr") === true && (noColor === undefined || noColor === "");
  const tracer = createTracer((record) => host.writeErr(renderTraceLine(record, { color })));
  return traceSession(host.transport, tracer, hide && { hide });
}
