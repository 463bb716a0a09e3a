/**
 * The incremental PROXY protocol parser: bytes go in as they are read, in chunks of any size,
 * and it answers "more", "here is the header and the rest of this chunk", or "invalid, because".
 *
 * @module
 */

import { parseIp } from "../ip.ts";
import type { Address } from "../types.ts";
import { crc32c } from "./crc32c.ts";
import {
  PP2_TYPE,
  type ProxyHeader,
  type ProxyTlv,
  V1_MAX_BYTES,
  V1_PREFIX,
  V2_MAX_LENGTH,
  V2_SIGNATURE,
} from "./header.ts";
import { formatIp } from "../ip.ts";

/**
 * What {@linkcode ProxyHeaderParser.push} says about the bytes so far.
 *
 * - `partial`: a valid start of a header; push more.
 * - `header`: the header is complete. `rest` is every byte of the last chunk after it (a view
 *   into that chunk, possibly empty): the protocol's first input.
 * - `invalid`: the bytes cannot start a header; `reason` says why. Decided at the first byte
 *   that cannot match.
 *
 * @example
 * ```ts
 * import type { ProxyParseResult } from "./mod.ts";
 *
 * function describe(result: ProxyParseResult): string {
 *   return result.status === "invalid" ? `bad header: ${result.reason}` : result.status;
 * }
 * ```
 */
export type ProxyParseResult =
  | { status: "partial" }
  | { status: "header"; header: ProxyHeader; rest: Uint8Array }
  | { status: "invalid"; reason: string };

const PARTIAL: ProxyParseResult = { status: "partial" };

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

// v1 fields after "PROXY ": family, source address, destination address, source port, destination port.
const FAMILY = 0;
const DESTINATION_PORT = 4;
const V1_FAMILIES = ["TCP4", "TCP6", "UNKNOWN"] as const;
// The longest IPv6 text, with an embedded IPv4 address ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
const MAX_IPV6_TEXT = 45;

/** The address block's size per v2 family (high nibble of byte 13). */
const V2_ADDRESS_BYTES = [0, 12, 36, 216] as const;
const V2_FAMILIES = ["unspec", "inet", "inet6", "unix"] as const;
const V2_PROTOCOLS = ["unspec", "stream", "dgram"] as const;

/**
 * Parses one PROXY protocol header, v1 or v2, from bytes pushed as they arrive. A header split
 * across any number of reads (down to one byte each) parses the same as one read; the bytes
 * after it are handed back untouched, in the same chunk. Memory is bounded: v1 at 107 bytes,
 * v2 at 16 + {@linkcode V2_MAX_LENGTH}; a longer announcement is refused at its length field.
 *
 * Strictness follows haproxy's `doc/proxy-protocol.txt`: single spaces, CRLF only (a lone CR
 * or LF is invalid), ports 0-65535 without leading zeros, addresses of the announced family;
 * v2 version 2 with command LOCAL or PROXY, a known family and protocol, a length that covers
 * the address block, TLVs that end within the header, and a CRC32C TLV, when present, that
 * matches. `LOCAL` headers are skipped whole (their block is not interpreted, as the spec asks).
 * The parser never throws on input.
 *
 * @example Byte by byte
 * ```ts
 * import { ProxyHeaderParser } from "./mod.ts";
 *
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.7 198.51.100.1 40000 8001\r\nhello");
 * const parser = new ProxyHeaderParser();
 * let result = parser.push(bytes.subarray(0, 10));
 * console.log(result.status); // "partial"
 * result = parser.push(bytes.subarray(10));
 * if (result.status === "header") {
 *   console.log(result.header.source); // { transport: "tcp", hostname: "192.0.2.7", port: 40000 }
 *   console.log(new TextDecoder().decode(result.rest)); // "hello"
 * }
 * ```
 */
export class ProxyHeaderParser {
  // The first bytes: the whole v1 line, or v2's fixed 16 bytes.
  #start: Uint8Array = EMPTY; // allocated at the first byte: 16 bytes for v2, 107 for v1
  #startLength = 0;
  // v1 state: which field the current token belongs to, where it starts, whether a CR was seen,
  // and the start/end of each finished token.
  #field = FAMILY;
  #tokenStart = V1_PREFIX.length;
  #sawCr = false;
  #unknown = false;
  #tokens: number[] = [];
  // v2: the whole header, allocated once its length is known.
  #v2: Uint8Array | undefined;
  #v2Filled = 0;
  #outcome: ProxyParseResult | undefined;

  /**
   * Feeds the next bytes read.
   *
   * @param chunk The bytes, as read; not modified. A header's TLV values may be views into it.
   * @returns The state after these bytes. Once `header` or `invalid` was returned, later calls
   *   return `invalid` (a parser reads one header).
   */
  push(chunk: Uint8Array): ProxyParseResult {
    if (this.#outcome) return { status: "invalid", reason: "the header was already read" };
    // The common case, a whole v2 header at the start of one read: checked and parsed in place.
    if (this.#startLength === 0) {
      const whole = ProxyHeaderParser.parseWhole(chunk);
      if (whole !== undefined) return this.#settle(whole);
    }
    let offset = 0;
    if (this.#v2 === undefined) {
      while (offset < chunk.length) {
        const byte = chunk[offset++]!;
        const failure = this.#startByte(byte);
        if (failure !== undefined) return this.#settle({ status: "invalid", reason: failure });
        if (this.#v2 !== undefined) break; // v2's fixed part is in: the rest is copied below
        if (this.#sawCr && byte === LF) return this.#settle(this.#v1Header(chunk.subarray(offset)));
      }
      if (this.#v2 === undefined) return PARTIAL;
    }
    const v2 = this.#v2;
    const take = Math.min(v2.length - this.#v2Filled, chunk.length - offset);
    v2.set(chunk.subarray(offset, offset + take), this.#v2Filled);
    this.#v2Filled += take;
    offset += take;
    if (this.#v2Filled < v2.length) return PARTIAL;
    return this.#settle(v2Header(v2, v2.length, chunk.subarray(offset)));
  }

  /**
   * The outcome for a connection's first chunk when it decides one by itself: it begins with a
   * whole v2 header (or with v2's fixed 16 bytes, already invalid). `undefined` otherwise (v1, or
   * a header still incomplete): then push the chunk to a parser. What a proxy sends first is
   * usually a whole header, so most connections never need a parser of their own.
   *
   * @param chunk A connection's first bytes.
   * @returns `header` or `invalid` as {@linkcode push} would return them, or `undefined`.
   *
   * @example
   * ```ts
   * import { encodeProxyHeader, ProxyHeaderParser } from "./mod.ts";
   *
   * const header = encodeProxyHeader({
   *   version: 2,
   *   source: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
   *   destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
   * });
   * console.log(ProxyHeaderParser.parseWhole(header)?.status); // "header"
   * console.log(ProxyHeaderParser.parseWhole(header.subarray(0, 20))); // undefined
   * ```
   */
  static parseWhole(chunk: Uint8Array): Exclude<ProxyParseResult, { status: "partial" }> | undefined {
    if (chunk.length < 16 || chunk[0] !== V2_SIGNATURE[0]) return undefined;
    const failure = v2FixedFailure(chunk);
    if (failure !== undefined) return { status: "invalid", reason: failure };
    const total = 16 + ((chunk[14]! << 8) | chunk[15]!);
    return chunk.length >= total ? v2Header(chunk, total, chunk.subarray(total)) : undefined;
  }

  #settle(outcome: ProxyParseResult): ProxyParseResult {
    this.#outcome = outcome;
    this.#start = EMPTY; // nothing more to keep
    return outcome;
  }

  // Takes one byte of the fixed start (v1's line, v2's 16 bytes); returns why it cannot match.
  #startByte(byte: number): string | undefined {
    const at = this.#startLength;
    if (at === 0) this.#start = new Uint8Array(byte === V2_SIGNATURE[0] ? 16 : V1_MAX_BYTES);
    const first = at === 0 ? byte : this.#start[0]!;
    this.#start[this.#startLength++] = byte;
    if (first === V2_SIGNATURE[0]) return this.#v2StartByte(byte, at);
    if (at < V1_PREFIX.length) return byte === V1_PREFIX[at] ? undefined : "not a PROXY protocol header";
    return this.#v1Byte(byte, at);
  }

  #v2StartByte(byte: number, at: number): string | undefined {
    if (at < V2_SIGNATURE.length) return byte === V2_SIGNATURE[at] ? undefined : "not a PROXY protocol header";
    if (at === 12) return v2CommandFailure(byte);
    if (at === 13) return v2FamilyFailure(byte);
    if (at === 14) return undefined;
    const failure = v2LengthFailure(this.#start);
    if (failure !== undefined) return failure;
    this.#v2 = new Uint8Array(16 + ((this.#start[14]! << 8) | byte));
    this.#v2.set(this.#start.subarray(0, 16));
    this.#v2Filled = 16;
    return undefined;
  }

  // One byte of the v1 line after "PROXY ".
  #v1Byte(byte: number, at: number): string | undefined {
    if (this.#sawCr) return byte === LF ? undefined : "v1: CR not followed by LF";
    if (byte === LF) return "v1: LF without CR";
    // The LF must fit within the 107 bytes: a CR at most at index 105, anything else at 104.
    if (at > V1_MAX_BYTES - (byte === CR ? 2 : 3)) return `v1: no CRLF within ${V1_MAX_BYTES} bytes`;
    if (this.#unknown) {
      // "PROXY UNKNOWN": anything up to CRLF is ignored.
      if (byte === CR) this.#sawCr = true;
      return undefined;
    }
    if (byte === SPACE || byte === CR) {
      const failure = this.#finishToken(at);
      if (failure !== undefined) return failure;
      if (byte === CR) {
        if (!this.#unknown && this.#field !== DESTINATION_PORT) return "v1: line ends before the destination port";
        this.#sawCr = true;
      } else if (!this.#unknown) {
        if (this.#field === DESTINATION_PORT) return "v1: too many fields";
        this.#field++;
      }
      this.#tokenStart = at + 1;
      return undefined;
    }
    return viableToken(this.#field, this.#text(this.#tokenStart, at + 1), this.#family());
  }

  #finishToken(end: number): string | undefined {
    const text = this.#text(this.#tokenStart, end);
    if (text === "") return "v1: empty field (fields are separated by single spaces)";
    const failure = validToken(this.#field, text, this.#family());
    if (failure !== undefined) return failure;
    this.#tokens.push(this.#tokenStart, end);
    if (this.#field === FAMILY && text === "UNKNOWN") this.#unknown = true;
    return undefined;
  }

  #family(): string {
    return this.#text(this.#tokens[0] ?? 0, this.#tokens[1] ?? 0);
  }

  #text(from: number, to: number): string {
    let text = "";
    for (let i = from; i < to; i++) text += String.fromCharCode(this.#start[i]!);
    return text;
  }

  #v1Header(rest: Uint8Array): ProxyParseResult {
    if (this.#unknown) {
      return { status: "header", header: v1Unknown(), rest };
    }
    const field = (n: number) => this.#text(this.#tokens[n * 2]!, this.#tokens[n * 2 + 1]!);
    const family = field(0) === "TCP4" ? "inet" : "inet6";
    const source: Address = { transport: "tcp", hostname: field(1).toLowerCase(), port: Number(field(3)) };
    const destination: Address = { transport: "tcp", hostname: field(2).toLowerCase(), port: Number(field(4)) };
    return {
      status: "header",
      header: { version: 1, command: "proxy", family, protocol: "stream", source, destination, tlvs: [] },
      rest,
    };
  }
}

const EMPTY = new Uint8Array(0);

function v2CommandFailure(byte: number): string | undefined {
  if (byte >> 4 !== 2) return `v2: unsupported version ${byte >> 4}`;
  if ((byte & 0x0f) > 1) return `v2: unknown command ${byte & 0x0f}`;
  return undefined;
}

function v2FamilyFailure(byte: number): string | undefined {
  if (byte >> 4 > 3) return `v2: unknown address family ${byte >> 4}`;
  if ((byte & 0x0f) > 2) return `v2: unknown transport protocol ${byte & 0x0f}`;
  return undefined;
}

// The length field (bytes 14-15) against the cap and the announced family's address block.
function v2LengthFailure(bytes: Uint8Array): string | undefined {
  const length = (bytes[14]! << 8) | bytes[15]!;
  if (length > V2_MAX_LENGTH) return `v2: header too long (${16 + length} bytes, at most ${16 + V2_MAX_LENGTH})`;
  const proxy = (bytes[12]! & 0x0f) === 1;
  if (proxy && length < V2_ADDRESS_BYTES[bytes[13]! >> 4]!) {
    return `v2: length ${length} is shorter than the ${V2_FAMILIES[bytes[13]! >> 4]} address block`;
  }
  return undefined;
}

// v2's fixed 16 bytes, all at hand: the same checks, in the same order, as byte by byte.
function v2FixedFailure(bytes: Uint8Array): string | undefined {
  for (let i = 0; i < V2_SIGNATURE.length; i++) {
    if (bytes[i] !== V2_SIGNATURE[i]) return "not a PROXY protocol header";
  }
  return v2CommandFailure(bytes[12]!) ?? v2FamilyFailure(bytes[13]!) ?? v2LengthFailure(bytes);
}

function v1Unknown(): ProxyHeader {
  return { version: 1, command: "proxy", family: "unspec", protocol: "unspec", tlvs: [] };
}

// Could `text` still grow into a valid token of `field`?
function viableToken(field: number, text: string, family: string): string | undefined {
  if (field === FAMILY) {
    return V1_FAMILIES.some((f) => f.startsWith(text)) ? undefined : `v1: unknown protocol "${text}"`;
  }
  if (field <= 2) {
    if (family === "TCP4") return viableIpv4(text) ? undefined : `v1: "${text}" is not an IPv4 address`;
    return viableIpv6(text) ? undefined : `v1: "${text}" is not an IPv6 address`;
  }
  return /^(0|[1-9]\d{0,4})$/.test(text) && Number(text) <= 65535 ? undefined : `v1: "${text}" is not a port`;
}

function viableIpv4(text: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){0,3}\.?$/.test(text) && text.split(".").every((part) => Number(part) <= 255);
}

// Hex groups of at most 4 digits, at most 8 of them, one "::" at most, and dotted IPv4 only as the last group.
function viableIpv6(text: string): boolean {
  if (text.length > MAX_IPV6_TEXT || !/^[0-9a-fA-F:.]*$/.test(text)) return false;
  if (text.includes(":::") || text.split("::").length > 2) return false;
  const groups = text.split(":");
  const last = groups[groups.length - 1]!;
  const tailV4 = last.includes(".");
  if (tailV4 && (groups.length === 1 || !viableIpv4(last))) return false;
  if (
    groups.some((group, i) =>
      i < groups.length - 1 ? group.length > 4 || group.includes(".") : !tailV4 && group.length > 4
    )
  ) {
    return false;
  }
  // Without "::" at most 8 groups (so far); with it, at most 7 written ones (it stands for one or more).
  const written = groups.filter((group) => group !== "").length + (tailV4 ? 1 : 0);
  return text.includes("::") ? written <= 7 : groups.length + (tailV4 ? 1 : 0) <= 8;
}

// Is the finished `text` a valid token of `field`?
function validToken(field: number, text: string, family: string): string | undefined {
  const viable = viableToken(field, text, family);
  if (viable !== undefined) return viable;
  if (field === FAMILY) {
    return (V1_FAMILIES as readonly string[]).includes(text) ? undefined : `v1: unknown protocol "${text}"`;
  }
  if (field <= 2) {
    if (family === "TCP4") return parseIp(text)?.length === 4 ? undefined : `v1: "${text}" is not an IPv4 address`;
    return text.includes(":") && parseIp(text) !== undefined ? undefined : `v1: "${text}" is not an IPv6 address`;
  }
  return undefined;
}

// The header is bytes[0, end).
function v2Header(
  bytes: Uint8Array,
  end: number,
  rest: Uint8Array,
): Exclude<ProxyParseResult, { status: "partial" }> {
  const command = (bytes[12]! & 0x0f) === 1 ? "proxy" : "local";
  const familyCode = bytes[13]! >> 4;
  const family = V2_FAMILIES[familyCode]!;
  const protocol = V2_PROTOCOLS[bytes[13]! & 0x0f]!;
  if (command === "local") {
    // The spec: use the real endpoints and discard the whole block, family included.
    return { status: "header", header: { version: 2, command, family, protocol, tlvs: [] }, rest };
  }
  // Built whole (not extended afterwards): one object shape for every header with addresses.
  const header: ProxyHeader = protocol === "stream" && family !== "unspec"
    ? v2WithAddresses(bytes, family)
    : { version: 2, command, family, protocol, tlvs: [] };
  const tlvs = header.tlvs as ProxyTlv[];
  let sawCrc = false;
  for (let at = 16 + V2_ADDRESS_BYTES[familyCode]!; at < end;) {
    if (end - at < 3) return { status: "invalid", reason: "v2: truncated TLV at the header's end" };
    const type = bytes[at]!;
    const length = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    const tlvEnd = at + 3 + length;
    if (tlvEnd > end) {
      return { status: "invalid", reason: `v2: TLV 0x${type.toString(16)} runs past the header's end` };
    }
    if (type === PP2_TYPE.CRC32C) {
      if (sawCrc) return { status: "invalid", reason: "v2: more than one CRC32C TLV" };
      sawCrc = true;
      if (length !== 4) return { status: "invalid", reason: "v2: a CRC32C TLV holds 4 bytes" };
      const sent = ((bytes[at + 3]! << 24) | (bytes[at + 4]! << 16) | (bytes[at + 5]! << 8) | bytes[at + 6]!) >>> 0;
      const zeroed = new Uint8Array(bytes.subarray(0, end)); // a copy (a Node Buffer's slice() is a view)
      zeroed.fill(0, at + 3, tlvEnd);
      if (crc32c(zeroed) !== sent) return { status: "invalid", reason: "v2: CRC32C mismatch" };
    }
    tlvs.push({ type, value: bytes.subarray(at + 3, tlvEnd) });
    at = tlvEnd;
  }
  return { status: "header", header, rest };
}

function v2WithAddresses(bytes: Uint8Array, family: "inet" | "inet6" | "unix"): ProxyHeader {
  let source: Address;
  let destination: Address;
  if (family === "unix") {
    source = { transport: "unix", path: unixPath(bytes, 16) };
    destination = { transport: "unix", path: unixPath(bytes, 124) };
  } else if (family === "inet") {
    // Formatted in place: a view per address (a Node Buffer's subarray) costs more than the text.
    source = { transport: "tcp", hostname: ipv4At(bytes, 16), port: (bytes[24]! << 8) | bytes[25]! };
    destination = { transport: "tcp", hostname: ipv4At(bytes, 20), port: (bytes[26]! << 8) | bytes[27]! };
  } else {
    source = { transport: "tcp", hostname: formatIp(bytes.subarray(16, 32)), port: (bytes[48]! << 8) | bytes[49]! };
    destination = {
      transport: "tcp",
      hostname: formatIp(bytes.subarray(32, 48)),
      port: (bytes[50]! << 8) | bytes[51]!,
    };
  }
  return { version: 2, command: "proxy", family, protocol: "stream", source, destination, tlvs: [] };
}

function ipv4At(bytes: Uint8Array, at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

// A 108-byte, NUL-padded unix path.
function unixPath(bytes: Uint8Array, at: number): string {
  const field = bytes.subarray(at, at + 108);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end));
}
