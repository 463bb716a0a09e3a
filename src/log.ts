/**
 * Server events and the two ways to print them: human lines (the seed's wording) or JSON lines.
 *
 * @module
 */

import type { TlsInfo } from "./tls.ts";

/**
 * Something a server reports. `remote` is the peer's printable address.
 *
 * @example
 * ```ts
 * import type { LogEvent } from "./mod.ts";
 *
 * const event: LogEvent = { event: "connect", remote: "127.0.0.1:50123" };
 * ```
 */
export type LogEvent =
  | { event: "listening"; protocol: "echo" | "gate"; address: string }
  | { event: "connect"; remote: string; tls?: TlsInfo }
  | { event: "tls-handshake-failed"; remote: string; reason: "timeout" | "failed"; message: string; more?: number }
  | { event: "tls-reload"; ok: boolean; message?: string }
  | { event: "close"; remote: string; bytesIn: number; bytesOut: number; durationMs: number }
  | { event: "knock"; remote: string; welcomed: boolean; durationMs: number }
  | { event: "timeout"; remote: string; durationMs: number }
  | { event: "penalty"; remote: string; kind: "authfail" | "grace-exceeded" | "noauth"; accruedSeconds: number }
  | { event: "penalty-overflow"; family: "ipv4" | "ipv6" }
  | { event: "idle-timeout"; remote: string; idleMs: number }
  | { event: "line-too-long"; remote: string; maxLine: number }
  | { event: "token-too-long"; remote: string; maxToken: number }
  | { event: "refused"; remote: string; reason: string }
  | { event: "error"; remote?: string; message: string };

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
}

/** A logger that drops every event: the default for library use. */
export const silentLogger: Logger = { log() {} };

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
}

/**
 * Creates a logger that prints human lines (`Server connected by 127.0.0.1:5000`, `time out`)
 * or JSON lines (`{"time":"…","event":"connect","remote":"127.0.0.1:5000"}`).
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
        const line = JSON.stringify({ time: now().toISOString(), ...event });
        if (event.event === "error" || (event.event === "tls-reload" && !event.ok)) options.writeErr(line);
        else options.writeOut(line);
      },
    };
  }
  return {
    log(event) {
      const line = humanLine(event);
      if (line === undefined) return;
      if (event.event === "error" || (event.event === "tls-reload" && !event.ok)) options.writeErr(line);
      else options.writeOut(line);
    },
  };
}

function humanLine(event: LogEvent): string | undefined {
  switch (event.event) {
    case "listening":
      return `${event.protocol} server listening on ${event.address}`;
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
      return `Penalty table full (${event.family}): evicted the oldest source`;
    case "refused":
      return `Refused ${event.remote}: ${event.reason}`;
    case "error":
      return event.remote ? `Error on ${event.remote}: ${event.message}` : `Error: ${event.message}`;
    // The seed prints nothing for these; JSON mode carries them.
    case "close":
    case "knock":
      return undefined;
  }
}

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
