/**
 * A throwaway self-signed TLS certificate, made in memory with WebCrypto (`crypto.subtle`, a
 * global on Node, Deno and Bun), and the SHA-256 fingerprint a client pins it by.
 *
 * The certificate is DER-encoded here, for exactly one shape: X.509 v3, EC P-256 key,
 * ecdsa-with-SHA256, subject = issuer = `CN=echogate self-signed`, a random serial, valid from an
 * hour ago, with SubjectAltName (DNS names and IP addresses), basicConstraints CA:FALSE,
 * keyUsage digitalSignature and extKeyUsage serverAuth. A general X.509 library would weigh
 * about 5 MB in 20 packages (docs/tls.md); this shape needs a hundred lines.
 *
 * @module
 */

import { parseIp } from "./ip.ts";

/**
 * A self-signed certificate and its key, ready for {@linkcode TlsServerOptions}.
 *
 * @example
 * ```ts
 * import type { SelfSignedTls } from "./mod.ts";
 *
 * function show(tls: SelfSignedTls) {
 *   console.log(`SHA256 Fingerprint=${tls.fingerprint}`);
 * }
 * ```
 */
export interface SelfSignedTls {
  /** The certificate, PEM. */
  cert: string;
  /** Its private key (PKCS #8), PEM. */
  key: string;
  /** SHA-256 of the certificate's DER, as colon-separated upper-case hex (as `openssl x509 -fingerprint -sha256` prints it). */
  fingerprint: string;
}

/** Options for {@linkcode createSelfSignedTls}. */
export interface SelfSignedTlsOptions {
  /**
   * Names and addresses the certificate is for, besides `localhost`, `127.0.0.1` and `::1`
   * (always included). IP addresses become IP SANs, the rest DNS SANs; the wildcard addresses
   * `0.0.0.0` and `::` are left out.
   */
  hosts?: readonly string[];
  /** How many days it is valid for. @default {365} */
  days?: number;
}

/** The common name of every self-signed certificate made here. */
const SELF_SIGNED_NAME = "echogate self-signed";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Makes a fresh EC P-256 key and a self-signed certificate for it, in memory.
 *
 * @param options The names it is for, and how long it lasts.
 * @returns The certificate and key as PEM, and the certificate's SHA-256 fingerprint.
 *
 * @example
 * ```ts
 * import { createSelfSignedTls } from "./mod.ts";
 *
 * const tls = await createSelfSignedTls({ hosts: ["gate.example"] });
 * console.log(tls.cert.startsWith("-----BEGIN CERTIFICATE-----")); // true
 * ```
 */
export async function createSelfSignedTls(options: SelfSignedTlsOptions = {}): Promise<SelfSignedTls> {
  const subtle = crypto.subtle;
  const keys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const spki = new Uint8Array(await subtle.exportKey("spki", keys.publicKey));
  const pkcs8 = new Uint8Array(await subtle.exportKey("pkcs8", keys.privateKey));
  const now = Date.now();
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte to strip
  const name = seq(set(seq(oid(OID.commonName), tlv(0x0c, utf8(SELF_SIGNED_NAME)))));
  const tbs = seq(
    tlv(0xa0, integer(new Uint8Array([2]))), // v3
    integer(serial),
    seq(oid(OID.ecdsaWithSha256)),
    name,
    seq(time(new Date(now - HOUR_MS)), time(new Date(now + (options.days ?? 365) * DAY_MS))),
    name,
    spki,
    tlv(0xa3, seq(...extensions(options.hosts ?? []))),
  );
  const signature = new Uint8Array(await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, tbs));
  const der = seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(ecdsaSignatureDer(signature)));
  return {
    cert: pem("CERTIFICATE", der),
    key: pem("PRIVATE KEY", pkcs8),
    fingerprint: await certificateFingerprint(der),
  };
}

/**
 * The SHA-256 fingerprint of a certificate, as colon-separated upper-case hex (`AB:CD:…`, as
 * `openssl x509 -noout -fingerprint -sha256` prints it).
 *
 * @param certificate The certificate: DER bytes, or PEM (its first certificate).
 * @returns The fingerprint.
 *
 * @example
 * ```ts
 * import { certificateFingerprint, createSelfSignedTls } from "./mod.ts";
 *
 * const tls = await createSelfSignedTls();
 * console.log((await certificateFingerprint(tls.cert)) === tls.fingerprint); // true
 * ```
 */
export async function certificateFingerprint(certificate: Uint8Array | string): Promise<string> {
  const der = typeof certificate === "string" ? pemBody(certificate) : certificate;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der as Uint8Array<ArrayBuffer>));
  return [...digest].map((byte) => byte.toString(16).toUpperCase().padStart(2, "0")).join(":");
}

/**
 * Reads a SHA-256 fingerprint as a user gives it: 32 bytes of hex, with or without colons, any
 * case, optionally behind `SHA256 Fingerprint=` (a line of `openssl x509 -fingerprint` or of
 * the server's output, copied whole).
 *
 * @param text The fingerprint.
 * @returns It in the form {@linkcode certificateFingerprint} returns, or `undefined` when it is not one.
 *
 * @example
 * ```ts
 * import { normalizeFingerprint } from "./tls_self_signed.ts";
 *
 * console.log(normalizeFingerprint("ab".repeat(32))?.slice(0, 8)); // "AB:AB:AB"
 * ```
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^sha-?256\s*fingerprint\s*=\s*/i, "");
  const bytes = hex.includes(":") ? hex.split(":") : hex.match(/../g) ?? [];
  if (bytes.length !== 32 || hex.replaceAll(":", "").length !== 64) return undefined;
  if (!bytes.every((byte) => /^[0-9a-fA-F]{2}$/.test(byte))) return undefined;
  return bytes.join(":").toUpperCase();
}

/**
 * The server's certificate is not the one the client pinned (`TlsClientOptions.fingerprint`).
 *
 * @example
 * ```ts
 * import { TlsFingerprintError } from "./mod.ts";
 *
 * const error = new TlsFingerprintError("AB:…", "CD:…");
 * console.log(error.message); // "TLS: the server's certificate fingerprint is AB:…, expected CD:…"
 * ```
 */
export class TlsFingerprintError extends Error {
  /** Always `"TlsFingerprintError"`. */
  override name = "TlsFingerprintError";
  /** The fingerprint of the certificate the server sent (empty when it sent none). */
  readonly actual: string;
  /** The fingerprint pinned. */
  readonly expected: string;

  /**
   * A mismatch between the server's certificate and the pinned fingerprint.
   *
   * @param actual The fingerprint of the certificate the server sent (empty when none).
   * @param expected The fingerprint pinned.
   */
  constructor(actual: string, expected: string) {
    super(
      actual === ""
        ? `TLS: the server sent no certificate, expected fingerprint ${expected}`
        : `TLS: the server's certificate fingerprint is ${actual}, expected ${expected}`,
    );
    this.actual = actual;
    this.expected = expected;
  }
}

/**
 * Checks a server's certificate against a pinned fingerprint (what adapters do for
 * `TlsClientOptions.fingerprint`).
 *
 * @param der The server's leaf certificate, DER (`undefined` when it sent none).
 * @param expected The pinned fingerprint, in any form {@linkcode normalizeFingerprint} reads.
 * @throws {TlsFingerprintError} When they differ.
 *
 * @example
 * ```ts
 * import { createSelfSignedTls } from "./mod.ts";
 * import { checkFingerprint } from "./tls_self_signed.ts";
 *
 * const tls = await createSelfSignedTls();
 * const der = Uint8Array.from(atob(tls.cert.split("\n").slice(1, -2).join("")), (c) => c.charCodeAt(0));
 * await checkFingerprint(der, tls.fingerprint.toLowerCase()); // resolves: it matches
 * ```
 */
export async function checkFingerprint(der: Uint8Array | undefined, expected: string): Promise<void> {
  const wanted = normalizeFingerprint(expected);
  if (wanted === undefined) throw new TypeError(`"${expected}" is not a SHA-256 fingerprint`);
  const actual = der === undefined || der.length === 0 ? "" : await certificateFingerprint(der);
  if (actual !== wanted) throw new TlsFingerprintError(actual, wanted);
}

// --- DER, for the shapes above ---

const OID = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

function extensions(hosts: readonly string[]): Uint8Array[] {
  const names: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const host of [...hosts, "localhost", "127.0.0.1", "::1"]) {
    const ip = parseIp(host);
    const key = ip ? ip.join(".") : host.toLowerCase();
    if (host === "" || seen.has(key) || (ip && ip.every((byte) => byte === 0))) continue;
    seen.add(key);
    names.push(ip ? tlv(0x87, ip) : tlv(0x82, utf8(host))); // [7] iPAddress, [2] dNSName
  }
  const extension = (id: string, critical: boolean, value: Uint8Array) =>
    seq(oid(id), ...(critical ? [tlv(0x01, new Uint8Array([0xff]))] : []), tlv(0x04, value));
  return [
    extension(OID.basicConstraints, true, seq()), // cA defaults to FALSE
    extension(OID.keyUsage, true, bitString(new Uint8Array([0x80]), 7)), // digitalSignature
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, seq(...names)),
  ];
}

function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = contents.reduce((n, part) => n + part.length, 0);
  const lengthBytes: number[] = [];
  if (length < 0x80) lengthBytes.push(length);
  else {
    for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest & 0xff);
    lengthBytes.unshift(0x80 | lengthBytes.length);
  }
  const out = new Uint8Array(1 + lengthBytes.length + length);
  out[0] = tag;
  out.set(lengthBytes, 1);
  let at = 1 + lengthBytes.length;
  for (const part of contents) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function seq(...contents: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return tlv(0x30, ...contents);
}

function set(...contents: Uint8Array[]): Uint8Array {
  return tlv(0x31, ...contents);
}

/** A non-negative INTEGER from its big-endian magnitude. */
function integer(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = magnitude.subarray(start);
  return body[0]! & 0x80 ? tlv(0x02, new Uint8Array([0]), body) : tlv(0x02, body);
}

function bitString(bytes: Uint8Array, unusedBits = 0): Uint8Array {
  return tlv(0x03, new Uint8Array([unusedBits]), bytes);
}

function oid(dotted: string): Uint8Array {
  const [first, second, ...rest] = dotted.split(".").map(Number);
  const out = [first! * 40 + second!];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) base128.unshift(0x80 | (value & 0x7f));
    out.push(...base128);
  }
  return tlv(0x06, new Uint8Array(out));
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280, 4.1.2.5). */
function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2026-12-07T21:15:16.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, "") + "Z";
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, utf8(digits.slice(2))) : tlv(0x18, utf8(digits));
}

/** WebCrypto signs ECDSA as r ‖ s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }. */
function ecdsaSignatureDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return seq(integer(raw.subarray(0, half)), integer(raw.subarray(half)));
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function pem(label: string, der: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${label}-----\n${base64.match(/.{1,64}/g)!.join("\n")}\n-----END ${label}-----\n`;
}

function pemBody(text: string): Uint8Array {
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(text);
  if (!match) throw new TypeError("Not a PEM certificate");
  return Uint8Array.from(atob(match[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
}
