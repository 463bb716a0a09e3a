// TLS policy shared by the adapters: what a session reports, which name a client sends and
// verifies, and how long a server waits for a handshake.

import { isIP } from "node:net";
import type { Endpoint, TlsClientOptions, TlsInfo, TlsServerOptions } from "../src/mod.ts";
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, formatSubject } from "../src/tls.ts";

/** What a runtime's TLS socket tells of its session, in its own shapes. */
export interface TlsSessionFacts {
  /** The protocol version (`"TLSv1.3"`). */
  version?: string | null;
  /** The cipher suite, as `getCipher().name` gives it. */
  cipher?: string | null;
  /** The negotiated ALPN protocol. */
  alpn?: string | false | null;
  /** The SNI name the client sent (server side). */
  servername?: string | false | null;
  /** The peer certificate's subject, as `getPeerCertificate().subject` gives it. */
  peerSubject?: unknown;
  /** Whether the peer certificate was verified. */
  authorized?: boolean;
}

/**
 * The {@linkcode TlsInfo} of a session: only the fields it has (a peer's `authorized` only with
 * its certificate).
 *
 * @param facts What the runtime's socket reports.
 * @returns The session's info.
 *
 * @example
 * ```ts
 * import { tlsInfo } from "./_tls_common.ts";
 *
 * console.log(tlsInfo({ version: "TLSv1.3", alpn: false })); // { version: "TLSv1.3" }
 * ```
 */
export function tlsInfo(facts: TlsSessionFacts): TlsInfo {
  const info: TlsInfo = {};
  if (facts.version) info.version = facts.version;
  if (facts.cipher) info.cipher = facts.cipher;
  if (facts.alpn) info.alpn = facts.alpn;
  if (facts.servername) info.servername = facts.servername;
  const subject = formatSubject(facts.peerSubject as Record<string, string> | undefined);
  if (subject) {
    info.peerSubject = subject;
    info.authorized = facts.authorized === true;
  }
  return info;
}

/**
 * The name a TLS client verifies (`servername`, else the host) and the SNI name it sends. SNI names
 * a host, never an address (RFC 6066): for an address the SNI is `""` (none: an empty name keeps
 * Bun and Node's TLS from sending the host), and the address is verified by the caller's check.
 *
 * @param endpoint Where the client connects.
 * @param options The client's TLS options.
 * @returns `name` to verify and `sni` to send; both `undefined` for a unix socket without `servername`.
 *
 * @example
 * ```ts
 * import { serverName } from "./_tls_common.ts";
 *
 * console.log(serverName({ hostname: "127.0.0.1", port: 8001 }, {})); // { name: "127.0.0.1", sni: "" }
 * ```
 */
export function serverName(
  endpoint: Endpoint,
  options: TlsClientOptions,
): { name: string | undefined; sni: string | undefined } {
  const name = options.servername ?? ("path" in endpoint ? undefined : endpoint.hostname);
  return { name, sni: name === undefined ? undefined : isIP(name) !== 0 ? "" : name };
}

/**
 * A fatal TLS alert, unexpected_message, in a TLS 1.0 record as a first record goes: the answer of
 * every runtime's TLS server to a client that sent plain text.
 *
 * @example
 * ```ts
 * import { PLAIN_TEXT_ALERT } from "./_tls_common.ts";
 *
 * console.log(PLAIN_TEXT_ALERT[0]); // 21 (an alert record)
 * ```
 */
export const PLAIN_TEXT_ALERT: Uint8Array = new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x0a]);

/**
 * How long a server waits for a connection's TLS handshake.
 *
 * @param options The server's TLS options.
 * @returns `handshakeTimeoutMs`, or the default.
 *
 * @example
 * ```ts
 * import { handshakeTimeoutMs } from "./_tls_common.ts";
 *
 * console.log(handshakeTimeoutMs({ cert: "", key: "", handshakeTimeoutMs: 500 })); // 500
 * ```
 */
export function handshakeTimeoutMs(options: TlsServerOptions): number {
  return options.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
}

/**
 * Starts a connection's handshake timer (Deno's and Bun's servers, which have none of their own).
 *
 * @param timeoutMs From {@linkcode handshakeTimeoutMs}.
 * @param onTimeout Called with the message to report once the time is up.
 * @returns The timer, to clear when the handshake settles.
 *
 * @example
 * ```ts
 * import { startHandshakeTimer } from "./_tls_common.ts";
 *
 * clearTimeout(startHandshakeTimer(10_000, (message) => console.log(message)));
 * ```
 */
export function startHandshakeTimer(
  timeoutMs: number,
  onTimeout: (message: string) => void,
): ReturnType<typeof setTimeout> {
  return setTimeout(() => onTimeout(`no TLS handshake within ${timeoutMs / 1000} s`), timeoutMs);
}

/** How {@linkcode reopenWithTls} opens, checks and closes a runtime's TLS listener. */
export interface ReopenSteps<L> {
  /** Opens a listener with `tls` on a throwaway port and closes it: a bad pair throws here. */
  check(tls: TlsServerOptions): void;
  /** Opens a listener with `tls` on the live listener's address. */
  open(tls: TlsServerOptions): L | Promise<L>;
  /** Closes the live listener (open connections stay). */
  close(): void | Promise<void>;
  /** Takes `listener`, opened with `tls`, as the live one. */
  adopt(listener: L, tls: TlsServerOptions): void;
}

/**
 * Reloads a TLS listener's certificate by reopening it on the same address, for runtimes that
 * cannot swap a live listener's certificate (Deno; Bun's `reload()` keeps the old one). Open
 * connections stay. The new pair is checked on a throwaway port first, so a bad one leaves the live
 * listener alone. Alone on the port, a connection attempt between close and bind is refused; with
 * `reusePort` (workers) the new listener binds beside the old one before the old one closes. When
 * the new bind fails, the listener is reopened with the `current` pair and the error rethrown.
 *
 * @param steps The runtime's check, open, close and adopt.
 * @param change The new certificate and key (`next`), the live listener's (`current`), and
 *   whether the listener shares its port (`reusePort`).
 *
 * @example
 * ```ts ignore
 * import { reopenWithTls } from "./_tls_common.ts";
 *
 * await reopenWithTls({ check, open, close, adopt }, { next, current, reusePort: false });
 * ```
 */
export async function reopenWithTls<L>(
  steps: ReopenSteps<L>,
  { next, current, reusePort }: { next: TlsServerOptions; current: TlsServerOptions; reusePort?: boolean },
): Promise<void> {
  steps.check(next);
  if (reusePort) {
    const beside = await steps.open(next);
    await steps.close();
    return steps.adopt(beside, next);
  }
  await steps.close();
  let replacement: L;
  try {
    replacement = await steps.open(next);
  } catch (error) {
    steps.adopt(await steps.open(current), current);
    throw error;
  }
  steps.adopt(replacement, next);
}
