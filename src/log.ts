/**
 * Server events and the two ways to print them: human lines (the seed's wording) or JSON lines.
 *
 * @module
 */

import { escapeJsonLine, escapeLogText } from "./_log_escape.ts";
import type { AcceptErrorCounts, AcceptErrorKind } from "./accept_errors.ts";
import type { TlsInfo } from "./tls.ts";

/**
 * Something a server reports. `remote` is the peer's printable address: the client's, when a
 * PROXY protocol header named it, with the proxy's own address as `proxy`.
 *
 * @example
 * ```ts
 * import type { LogEvent } from "./mod.ts";
 *
 * const event: LogEvent = { event: "connect", remote: "127.0.0.1:50123" };
 * ```
 */
export type LogEvent =
  | { event: "listening"; protocol: "echo" | "gate"; address: string; transport?: "udp"; workers?: number }
  | { event: "metrics-listening"; address: string }
  | { event: "connect"; remote: string; proxy?: string; tls?: TlsInfo }
  | {
    event: "tls-handshake-failed";
    remote: string;
    proxy?: string;
    reason: "timeout" | "failed";
    message: string;
    more?: number;
  }
  | { event: "tls-reload"; ok: boolean; message?: string }
  | { event: "tls-self-signed"; fingerprint: string }
  | { event: "close"; remote: string; proxy?: string; bytesIn: number; bytesOut: number; durationMs: number }
  | { event: "knock"; remote: string; welcomed: boolean; durationMs: number }
  | { event: "timeout"; remote: string; durationMs: number }
  | { event: "penalty"; remote: string; kind: "authfail" | "grace-exceeded" | "noauth"; accruedSeconds: number }
  | { event: "penalty-overflow"; family: "ipv4" | "ipv6"; more?: number }
  | { event: "idle-timeout"; remote: string; idleMs: number }
  | { event: "line-too-long"; remote: string; maxLine: number }
  | { event: "token-too-long"; remote: string; maxToken: number }
  | {
    event: "refused";
    remote: string;
    proxy?: string;
    reason: string;
    /** Refusals at admission are throttled: how many more were left out since the previous line. */
    more?: number;
  }
  | { event: "error"; remote?: string; message: string }
  | { event: "datagram"; remote: string }
  | {
    event: "datagram-drops";
    refusedPort: number;
    tooBig: number;
    rateLimited: number;
    overBudget: number;
    sendBufferFull: number;
    portUnreachable: number;
    peersNotShown: number;
  }
  | { event: "log-dropped"; stream: "stdout" | "stderr"; lines: number }
  | {
    event: "accept-error";
    /** The kind of the last failure (see {@linkcode acceptErrorKind}). */
    kind: AcceptErrorKind;
    /** The last failure's errno name, when it has one. */
    code?: string;
    /** The last failure. */
    message: string;
    /** Failures since the previous report, this one included, by kind. */
    counts: AcceptErrorCounts;
  }
  | { event: "worker-exit"; worker: number; code: number | null; signal: string | null; restartInMs?: number }
  | {
    event: "haproxy-runtime";
    /** The runtime API's address, as given (`unix:PATH`, `HOST:PORT`). */
    target: string;
    /** False once when reports to it start failing, true once when they succeed again. */
    ok: boolean;
    message?: string;
  };

/**
 * Receives server events. Pass one to a server's `logger` option.
 *
 * @example Collect events in memory
 * ```ts
 * import type { LogEvent, Logger } from "./mod.ts";
 *
 * const events: LogEvent[] = [];
 * const logger: Logger = { log: (event) => events.push(event) };
 * ```
 */
export interface Logger {
  /** Called once per event. Must not throw. */
  log(event: LogEvent): void;
  /**
   * Whether {@linkcode Logger.log} does anything with events of this kind (without it: every
   * kind). Servers skip building the per-connection events a logger would drop, such as the
   * `close` and `knock` events that human lines leave out.
   */
  wants?(event: LogEvent["event"]): boolean;
}

/**
 * A logger that drops every event: the default for library use.
 *
 * @example
 * ```ts
 * import { silentLogger } from "./mod.ts";
 *
 * silentLogger.log({ event: "listening", protocol: "echo", address: "127.0.0.1:50007" }); // nothing is written
 * ```
 */
export const silentLogger: Logger = { log() {}, wants: () => false };

/** Options for {@linkcode createLogger}. */
export interface CreateLoggerOptions {
  /** Print one JSON object per event instead of human lines. @default {false} */
  json?: boolean;
  /** Writes one line (without its newline) to standard output. */
  writeOut(line: string): void;
  /** Writes one line (without its newline) to standard error; errors go here. */
  writeErr(line: string): void;
  /** Clock for the `time` field of JSON events. @default {() => new Date()} */
  now?: () => Date;
  /** The worker this process is (`--workers`): JSON events carry `worker`, lines start `[worker N] `. */
  worker?: number;
}

/**
 * Creates a logger that prints human lines (`Server connected by 127.0.0.1:5000`, `time out`)
 * or JSON lines (`{"time":"…","event":"connect","remote":"127.0.0.1:5000"}`). Every event is one
 * line whatever a peer sent: human lines write controls (C0, DEL, C1), the backslash, bidirectional
 * controls, U+2028/U+2029 and unpaired surrogates as `\xHH` or `\uHHHH`; JSON lines escape DEL, C1,
 * U+2028/U+2029 and the bidirectional controls too.
 *
 * @param options Where lines go and which format to use.
 * @returns The logger.
 *
 * @example Human lines
 * ```ts
 * import { createLogger } from "./mod.ts";
 *
 * const lines: string[] = [];
 * const logger = createLogger({ writeOut: (l) => lines.push(l), writeErr: (l) => lines.push(l) });
 * logger.log({ event: "connect", remote: "127.0.0.1:5000" });
 * console.log(lines[0]); // "Server connected by 127.0.0.1:5000"
 * ```
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const now = options.now ?? (() => new Date());
  if (options.json) {
    return {
      log(event) {
        // Events carry text peers chose (a server name, a certificate subject): see _log_escape.ts.
        const line = escapeJsonLine(JSON.stringify(
          options.worker === undefined
            ? { time: now().toISOString(), ...event }
            : { time: now().toISOString(), worker: options.worker, ...event },
        ));
        if (toStderr(event)) options.writeErr(line);
        else options.writeOut(line);
      },
    };
  }
  return {
    // The seed prints no line for these (see humanLine): not worth building per connection.
    wants: (event) => event !== "close" && event !== "knock",
    log(event) {
      const human = humanLine(event);
      if (human === undefined) return;
      // The whole line, as any part of it may hold text a peer chose: one event, one line.
      const text = escapeLogText(human);
      const line = options.worker === undefined ? text : `[worker ${options.worker}] ${text}`;
      if (toStderr(event)) options.writeErr(line);
      else options.writeOut(line);
    },
  };
}

/** Errors, failed reloads, accept failures and dead workers go to standard error. */
function toStderr(event: LogEvent): boolean {
  if (event.event === "log-dropped") return event.stream === "stderr"; // said where the gap is
  if (event.event === "tls-reload") return !event.ok;
  if (event.event === "haproxy-runtime") return !event.ok;
  return event.event === "error" || event.event === "accept-error" || event.event === "worker-exit";
}

function humanLine(event: LogEvent): string | undefined {
  switch (event.event) {
    case "listening":
      return `${event.protocol} server listening on ${event.address}${event.transport ? ` (${event.transport})` : ""}` +
        (event.workers === undefined ? "" : ` (${event.workers} worker${event.workers === 1 ? "" : "s"})`);
    case "metrics-listening":
      return `metrics at http://${event.address}/metrics`;
    case "worker-exit":
      return `Worker ${event.worker} exited (${event.signal ?? `code ${event.code}`})` +
        (event.restartInMs === undefined ? "" : `: restarting in ${event.restartInMs} ms`);
    case "datagram":
      return `Datagram from ${event.remote}`;
    case "datagram-drops":
      return `UDP since the last report: ${datagramDrops(event)}`;
    case "connect":
      return event.tls
        ? `Server connected by ${event.remote} (${tlsSummary(event.tls)})`
        : `Server connected by ${event.remote}`;
    case "tls-handshake-failed": {
      const more = event.more ? ` (${event.more} more since the last report)` : "";
      return `TLS handshake ${
        event.reason === "timeout" ? "timed out" : "failed"
      } from ${event.remote}: ${event.message}${more}`;
    }
    case "tls-self-signed":
      return `TLS self-signed certificate: SHA256 Fingerprint=${event.fingerprint}`;
    case "tls-reload":
      return event.ok ? "TLS certificate reloaded" : `TLS reload failed, keeping the old certificate: ${event.message}`;
    case "timeout":
      return "time out";
    case "idle-timeout":
      return `Idle timeout: closed ${event.remote} after ${event.idleMs} ms without traffic`;
    case "line-too-long":
      return `Line too long from ${event.remote} (over ${event.maxLine} bytes): closed`;
    case "token-too-long":
      return `Token too long from ${event.remote} (over ${event.maxToken} bytes): refused`;
    case "penalty":
      return `Penalty for ${event.remote}: ${PENALTY_REASONS[event.kind]} (${event.accruedSeconds} s accrued)`;
    case "penalty-overflow":
      return `Penalty table full (${event.family}): evicted the oldest source${
        event.more ? ` (${event.more} more since the last report)` : ""
      }`;
    case "refused":
      return `Refused ${event.remote}: ${event.reason}${
        event.more ? ` (${event.more} more since the last report)` : ""
      }`;
    case "log-dropped":
      return `Log lines dropped: ${event.lines} (${
        event.stream === "stdout" ? "standard output" : "standard error"
      } was not read in time)`;
    case "accept-error":
      return `Error: Accept failed: ${event.message} (${acceptCounts(event)})`;
    case "haproxy-runtime":
      return event.ok
        ? `HAProxy runtime API ${event.target}: reports delivered again`
        : `HAProxy runtime API ${event.target} failing, retrying with back-off (the gate still refuses penalised sources itself): ${event.message}`;
    case "error":
      return event.remote ? `Error on ${event.remote}: ${event.message}` : `Error: ${event.message}`;
    // The seed prints nothing for these; JSON mode carries them.
    case "close":
    case "knock":
      return undefined;
  }
}

function datagramDrops(event: Extract<LogEvent, { event: "datagram-drops" }>): string {
  const parts: string[] = [];
  if (event.rateLimited) parts.push(`dropped ${event.rateLimited} over the per-source rate`);
  if (event.overBudget) parts.push(`dropped ${event.overBudget} over the global budget`);
  if (event.tooBig) parts.push(`dropped ${event.tooBig} too big`);
  if (event.refusedPort) parts.push(`dropped ${event.refusedPort} from refused source ports (0, 7, 19, own)`);
  if (event.sendBufferFull) parts.push(`dropped ${event.sendBufferFull} answers (send buffer full)`);
  if (event.portUnreachable) parts.push(`${event.portUnreachable} ICMP port unreachable (peer gone before its answer)`);
  if (event.peersNotShown) parts.push(`${event.peersNotShown} new peers not logged`);
  return parts.join(", ");
}

// "(that connection's own error: skipped)", or for a throttled report
// "(98 failures since the last report: 97 of single connections, skipped; 1 out of resources, backed off)".
function acceptCounts(event: Extract<LogEvent, { event: "accept-error" }>): string {
  const { connection, exhaustion, other } = event.counts;
  const total = connection + exhaustion + other;
  if (total === 1) return ACCEPT_KINDS[event.kind];
  const parts: string[] = [];
  if (connection > 0) parts.push(`${connection} of single connections, skipped`);
  if (exhaustion > 0) parts.push(`${exhaustion} out of resources, backed off`);
  if (other > 0) parts.push(`${other} other, retried`);
  return `${total} failures since the last report: ${parts.join("; ")}`;
}

const ACCEPT_KINDS = {
  connection: "that connection's own error: skipped",
  exhaustion: "out of resources: backing off",
  other: "retrying",
} as const;

function tlsSummary(tls: TlsInfo): string {
  const parts = [tls.version ?? "TLS"];
  if (tls.alpn) parts.push(`ALPN ${tls.alpn}`);
  if (tls.servername) parts.push(`SNI ${tls.servername}`);
  if (tls.peerSubject) parts.push(`client ${tls.peerSubject}`);
  return parts.join(", ");
}

const PENALTY_REASONS = {
  authfail: "wrong token",
  "grace-exceeded": "no token in time",
  noauth: "left without a byte",
} as const;

/** One line describing any thrown value, for logs and the CLI (never a stack trace). */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || error.name;
    return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(error);
}
