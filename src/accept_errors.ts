/**
 * What an accept failure means, and its throttled report.
 *
 * A failed accept is one of two very different things. Most often one connection failed between
 * the handshake and the accept (the peer reset it while it sat in the accept queue: Linux's
 * accept(2) reports ECONNABORTED, Deno's accept fails with ENOTCONN when it asks for the peer's
 * address): skip it and accept the next at once, as nginx, HAProxy and libuv do. Only when the
 * process or the system is out of descriptors or memory is the next accept bound to fail too:
 * then, and only then, back off. Each adapter asks {@linkcode acceptErrorKind} which it is.
 *
 * @module
 */

import { LOG_THROTTLE_INTERVAL_MS, LogThrottle } from "./_log_throttle.ts";
import { errorMessage, type Logger } from "./log.ts";

/**
 * The kinds of accept failure:
 * - `connection`: one connection's own failure; skip it and accept the next at once;
 * - `exhaustion`: out of descriptors, buffers or memory; back off before accepting again;
 * - `other`: anything else; accept again after yielding to the event loop.
 *
 * @example
 * ```ts
 * import type { AcceptErrorKind } from "./mod.ts";
 *
 * const kind: AcceptErrorKind = "connection";
 * ```
 */
export type AcceptErrorKind = "connection" | "exhaustion" | "other";

/**
 * How long an adapter waits after an `exhaustion` accept error before accepting again, in ms
 * (HAProxy's wait in the same case; nginx waits 500 ms).
 *
 * @example
 * ```ts
 * import { ACCEPT_BACKOFF_MS } from "./accept_errors.ts";
 *
 * console.log(ACCEPT_BACKOFF_MS); // 100
 * ```
 */
export const ACCEPT_BACKOFF_MS = 100;

// Errno codes. Linux's accept(2) passes pending network errors of the new connection on as its
// own result and asks callers to treat ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET,
// EHOSTUNREACH, EOPNOTSUPP and ENETUNREACH "like EAGAIN by retrying"; EPERM is a firewall rule
// against that one peer; EINTR and EAGAIN just mean "again".
const CONNECTION_CODES = new Set([
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EPROTO",
  "EPERM",
  "ENETDOWN",
  "ENETUNREACH",
  "ENETRESET",
  "ENOPROTOOPT",
  "EHOSTDOWN",
  "EHOSTUNREACH",
  "ENONET",
  "EOPNOTSUPP",
  "EINTR",
  "EAGAIN",
  "EWOULDBLOCK",
]);
const EXHAUSTION_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);
// Deno's error classes, for an error that carries no `code`.
const CONNECTION_NAMES = new Set([
  "NotConnected",
  "ConnectionAborted",
  "ConnectionReset",
  "ConnectionRefused",
  "BrokenPipe",
  "TimedOut",
  "Interrupted",
  "WouldBlock",
  "PermissionDenied",
]);

/**
 * Classifies an accept failure by its `code` (errno name: Node, Bun and Deno all set one) or,
 * failing that, by Deno's error class name.
 *
 * @param error What the runtime's accept threw or reported.
 * @returns Which kind of failure it is.
 *
 * @example
 * ```ts
 * import { acceptErrorKind } from "./accept_errors.ts";
 *
 * const reset = Object.assign(new Error("Transport endpoint is not connected"), { code: "ENOTCONN" });
 * const full = Object.assign(new Error("Too many open files"), { code: "EMFILE" });
 * console.log(acceptErrorKind(reset), acceptErrorKind(full)); // "connection" "exhaustion"
 * ```
 */
export function acceptErrorKind(error: unknown): AcceptErrorKind {
  const code = errorCode(error);
  if (code !== undefined) {
    if (EXHAUSTION_CODES.has(code)) return "exhaustion";
    if (CONNECTION_CODES.has(code)) return "connection";
  }
  const name = (error as { name?: unknown } | null)?.name;
  if (typeof name === "string" && CONNECTION_NAMES.has(name)) return "connection";
  return "other";
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  // Node's "accept EMFILE" message carries the code when a wrapper dropped the property.
  const message = error instanceof Error ? error.message : undefined;
  return message === undefined ? undefined : /\b(E[A-Z]{3,})\b/.exec(message)?.[1];
}

/**
 * Accept failures by kind.
 *
 * @example
 * ```ts
 * import type { AcceptErrorCounts } from "./mod.ts";
 *
 * const counts: AcceptErrorCounts = { connection: 97, exhaustion: 0, other: 0 };
 * ```
 */
export type AcceptErrorCounts = Record<AcceptErrorKind, number>;

/**
 * The throttled report of accept failures: they come in bursts (thousands of resets, a process
 * out of descriptors), so the first is logged at once, and every later one within the interval
 * is counted and reported, by kind, in one line at the interval's end. {@linkcode close} reports
 * what is still counted.
 *
 * @example
 * ```ts
 * import { type LogEvent } from "./mod.ts";
 * import { AcceptErrorReport } from "./accept_errors.ts";
 *
 * const events: LogEvent[] = [];
 * const report = new AcceptErrorReport({ log: (event) => events.push(event) });
 * for (let i = 0; i < 3; i++) report.add(Object.assign(new Error("reset"), { code: "ECONNABORTED" }));
 * report.close();
 * console.log(events.map((e) => e.event === "accept-error" && e.counts.connection)); // [1, 2]
 * ```
 */
export class AcceptErrorReport {
  #logger: Logger;
  #counts: AcceptErrorCounts = { connection: 0, exhaustion: 0, other: 0 };
  #throttle: LogThrottle<unknown>;

  /**
   * Creates the report.
   *
   * @param logger Where the report goes.
   * @param intervalMs At most one line per this many ms.
   */
  constructor(logger: Logger, intervalMs: number = LOG_THROTTLE_INTERVAL_MS) {
    this.#logger = logger;
    this.#throttle = new LogThrottle((last) => this.#report(last), intervalMs);
  }

  /** Counts one accept failure, and logs it (with what was counted before) unless a line went out recently. */
  add(error: unknown): void {
    this.#counts[acceptErrorKind(error)]++;
    this.#throttle.add(error);
  }

  /** Logs what is counted and not yet reported, and stops the timer. */
  close(): void {
    this.#throttle.close();
  }

  #report(last: unknown): void {
    const counts = this.#counts;
    this.#counts = { connection: 0, exhaustion: 0, other: 0 };
    const code = errorCode(last);
    this.#logger.log({
      event: "accept-error",
      kind: acceptErrorKind(last),
      ...(code === undefined ? {} : { code }),
      message: errorMessage(last),
      counts,
    });
  }
}
