/**
 * What a PROXY protocol header says, shared by the parser and the encoder.
 *
 * @module
 */

import type { Address } from "../types.ts";

/** v1's fixed start, `"PROXY "`. */
export const V1_PREFIX: Uint8Array = new TextEncoder().encode("PROXY ");

/** v1's longest line, CRLF included (the spec's 107 bytes). */
export const V1_MAX_BYTES = 107;

/** v2's 12-byte signature. */
export const V2_SIGNATURE: Uint8Array = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

/**
 * The longest v2 address-and-TLV block accepted: a header is at most 16 + this many bytes.
 * HAProxy's own headers (addresses, ALPN, authority, unique ID, SSL details) stay well under it;
 * a peer that announces more is refused before anything past the fixed 16 bytes is read.
 */
export const V2_MAX_LENGTH = 4096;

/** The well-known v2 TLV types (haproxy's `doc/proxy-protocol.txt`, section 2.2). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
} as const;

/**
 * One v2 type-length-value field, as it came (sub-TLVs of `SSL` stay inside `value`).
 *
 * @example
 * ```ts
 * import type { ProxyTlv } from "./mod.ts";
 *
 * const alpn: ProxyTlv = { type: 0x01, value: new TextEncoder().encode("h2") };
 * ```
 */
export interface ProxyTlv {
  /** The type byte. */
  type: number;
  /** The value bytes. */
  value: Uint8Array;
}

/**
 * A parsed PROXY protocol header.
 *
 * `source` and `destination` are set only when the header carries a connection the receiver
 * can use: v1 `TCP4`/`TCP6`, v2 `PROXY` over TCP (`inet`/`inet6`, `stream`) or a unix stream.
 * Otherwise (v1 `UNKNOWN`, v2 `LOCAL` such as HAProxy's health checks, or an unsupported family)
 * they are absent, and the connection's real endpoints apply.
 *
 * @example
 * ```ts
 * import type { ProxyHeader } from "./mod.ts";
 *
 * const header: ProxyHeader = {
 *   version: 1,
 *   command: "proxy",
 *   family: "inet",
 *   protocol: "stream",
 *   source: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
 *   destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
 *   tlvs: [],
 * };
 * ```
 */
export interface ProxyHeader {
  /** 1 for the text line, 2 for the binary form. */
  version: 1 | 2;
  /** `"proxy"` for a relayed connection, `"local"` for one the proxy made itself (v2 LOCAL). */
  command: "proxy" | "local";
  /** The address family announced (v1: TCP4 → inet, TCP6 → inet6, UNKNOWN → unspec). */
  family: "inet" | "inet6" | "unix" | "unspec";
  /** The transport announced (v1 is always stream, or unspec for UNKNOWN). */
  protocol: "stream" | "dgram" | "unspec";
  /** The client, when the header names one the receiver uses. */
  source?: Address;
  /** Where the client connected to, on the proxy. */
  destination?: Address;
  /** v2's TLVs in order (the CRC32C one included, already checked). Empty for v1. */
  tlvs: readonly ProxyTlv[];
}
