/**
 * TLS settings and what a TLS connection reports, shared by every adapter. The core never runs
 * TLS itself: adapters do, behind the same {@linkcode Transport} contract, and hand the core a
 * {@linkcode StreamSocket} only once its handshake is done.
 *
 * @module
 */

import type { Address } from "./types.ts";

/**
 * A TLS server's certificate, key and client-certificate policy, as PEM strings.
 *
 * @example
 * ```ts
 * import type { TlsServerOptions } from "./mod.ts";
 *
 * const tls: TlsServerOptions = { cert: "-----BEGIN CERTIFICATE-----…", key: "-----BEGIN PRIVATE KEY-----…" };
 * ```
 */
export interface TlsServerOptions {
  /** The certificate chain, PEM (leaf first). */
  cert: string;
  /** The private key of the leaf, PEM. */
  key: string;
  /** When set, every client must present a certificate signed by this CA (PEM): mutual TLS. */
  clientCa?: string;
  /** ALPN protocols offered, most preferred first. */
  alpn?: readonly string[];
  /** A connection that has not finished its handshake after this many ms is closed. @default {10000} */
  handshakeTimeoutMs?: number;
  /**
   * What the handshake timeout does to a peer that stays connected without finishing its handshake.
   * `"close"` closes the connection and frees its descriptor, on every runtime. `"hold"` allows a
   * faster TLS server that cannot do that: it changes only Deno, which then serves with
   * `Deno.listenTls` (about twice the throughput of Deno's `node:tls`), whose timed-out connections
   * keep their descriptors until the peer leaves (docs/tls.md). Mutual TLS always closes.
   * @default {"close"}
   */
  stalledHandshakes?: "close" | "hold";
}

/**
 * How a TLS client verifies the server and who it says it is.
 *
 * @example Trust a private CA as well as the system roots
 * ```ts
 * import type { TlsClientOptions } from "./mod.ts";
 *
 * const tls: TlsClientOptions = { ca: "-----BEGIN CERTIFICATE-----…", servername: "gate.example" };
 * ```
 */
export interface TlsClientOptions {
  /** A CA (PEM) trusted in addition to the system roots. */
  ca?: string;
  /** The name sent as SNI and verified in the server's certificate. @default {the host connected to} */
  servername?: string;
  /** A client certificate (PEM), for servers that require one; needs `key`. */
  cert?: string;
  /** The client certificate's private key (PEM). */
  key?: string;
  /** Skip verifying the server's certificate (tests, self-signed setups). @default {false} */
  insecure?: boolean;
  /**
   * Accept exactly the server certificate whose SHA-256 fingerprint this is (`AB:CD:…`, as
   * {@linkcode certificateFingerprint} and `openssl x509 -fingerprint -sha256` print it), and no
   * other: neither CAs nor the name are checked then. A mismatch fails the connection with a
   * {@linkcode TlsFingerprintError} before any byte is sent.
   */
  fingerprint?: string;
  /** ALPN protocols to offer. */
  alpn?: readonly string[];
}

/**
 * What a TLS socket knows about its session; fields a runtime does not expose are left out
 * (see docs/tls.md).
 *
 * @example
 * ```ts
 * import type { TlsInfo } from "./mod.ts";
 *
 * const info: TlsInfo = { version: "TLSv1.3", alpn: "echo", servername: "localhost", authorized: true };
 * ```
 */
export interface TlsInfo {
  /** The protocol version, e.g. `TLSv1.3`. */
  version?: string;
  /** The cipher suite agreed on, e.g. `TLS_AES_256_GCM_SHA384`, where the runtime tells (not on Deno's own TLS). */
  cipher?: string;
  /** The ALPN protocol agreed on. */
  alpn?: string;
  /** The server name the client asked for (SNI), on the server side. */
  servername?: string;
  /** The peer certificate's subject, e.g. `CN=client`, when it sent one. */
  peerSubject?: string;
  /** Whether the peer's certificate was verified (a client certificate on a server). */
  authorized?: boolean;
}

/** How long a TLS server waits for a handshake by default: 10 s. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * A TLS server's certificate or key was refused by the runtime (not PEM, or not a pair).
 *
 * @example
 * ```ts
 * import { TlsConfigError } from "./mod.ts";
 *
 * const error = new TlsConfigError("key values mismatch");
 * console.log(error.name); // "TlsConfigError"
 * ```
 */
export class TlsConfigError extends Error {
  /** Always `"TlsConfigError"`. */
  override name = "TlsConfigError";
}

/**
 * Why `StreamSocket.startTls` rejected: the handshake failed or timed out.
 *
 * @example
 * ```ts
 * import { TlsHandshakeError } from "./mod.ts";
 *
 * const error = new TlsHandshakeError("timeout", "no TLS handshake within 10 s");
 * console.log(error.reason); // "timeout"
 * ```
 */
export class TlsHandshakeError extends Error {
  /** Always `"TlsHandshakeError"`. */
  override name = "TlsHandshakeError";
  /** `timeout` when the handshake did not finish in time, else `failed`. */
  readonly reason: "timeout" | "failed";

  /**
   * A failed or timed-out handshake.
   *
   * @param reason `timeout` or `failed`.
   * @param message The runtime's words for it.
   */
  constructor(reason: "timeout" | "failed", message: string) {
    super(message);
    this.reason = reason;
  }
}

/**
 * A connection whose handshake failed or timed out, as a listener reports it.
 *
 * @example
 * ```ts
 * import type { TlsHandshakeFailure } from "./mod.ts";
 *
 * const failure: TlsHandshakeFailure = {
 *   remoteAddr: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
 *   reason: "timeout",
 *   message: "no handshake within 10 s",
 * };
 * ```
 */
export interface TlsHandshakeFailure {
  /** Who it came from. */
  remoteAddr: Address;
  /** `timeout` when the handshake did not finish in time, else `failed`. */
  reason: "timeout" | "failed";
  /** The runtime's words for it. */
  message: string;
}

/**
 * Encodes ALPN protocol names in the wire format (each name behind its length byte), as Bun's
 * `ALPNProtocols` wants it.
 *
 * @param names The protocol names, most preferred first.
 * @returns The encoded list.
 *
 * @example
 * ```ts
 * import { alpnWireFormat } from "./tls.ts";
 *
 * console.log(alpnWireFormat(["h2", "echo"])); // Uint8Array [2, 104, 50, 4, 101, 99, 104, 111]
 * ```
 */
export function alpnWireFormat(names: readonly string[]): Uint8Array {
  const encoded = names.map((name) => new TextEncoder().encode(name));
  const out = new Uint8Array(encoded.reduce((n, name) => n + 1 + name.length, 0));
  let at = 0;
  for (const name of encoded) {
    if (name.length === 0 || name.length > 255) throw new TypeError("An ALPN protocol name is 1 to 255 bytes");
    out[at++] = name.length;
    out.set(name, at);
    at += name.length;
  }
  return out;
}

/**
 * Formats a certificate subject (`{ CN: "x", O: "y" }`, as Node and Bun report it) as `CN=x, O=y`.
 *
 * @param subject The subject's fields, as the runtime reports them.
 * @returns The subject in one line, or `undefined` when there is none.
 *
 * @example
 * ```ts
 * import { formatSubject } from "./tls.ts";
 *
 * console.log(formatSubject({ CN: "client", O: "echogate" })); // "CN=client, O=echogate"
 * ```
 */
export function formatSubject(subject: Record<string, string | string[]> | undefined | null): string | undefined {
  if (!subject || typeof subject !== "object") return undefined;
  const parts = Object.entries(subject).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`);
  return parts.length > 0 ? parts.join(", ") : undefined;
}
