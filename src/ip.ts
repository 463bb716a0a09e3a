/**
 * IP addresses: parsing text to bytes (IPv4, IPv6, IPv4-mapped IPv6 as IPv4), CIDR blocks, and
 * formatting bytes as text (PROXY protocol v2 carries raw bytes; v1 and logs need text).
 *
 * @module
 */

/**
 * Formats 4 or 16 address bytes as text: dotted IPv4, or IPv6 in its RFC 5952 form (lower case,
 * the longest run of two or more zero groups as `::`, IPv4-mapped as `::ffff:a.b.c.d`).
 *
 * @param bytes The address bytes.
 * @returns The address text.
 *
 * @example
 * ```ts
 * import { formatIp } from "./proxy_protocol/mod.ts";
 *
 * console.log(formatIp(new Uint8Array([192, 0, 2, 7]))); // "192.0.2.7"
 * console.log(formatIp(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))); // "2001:db8::1"
 * ```
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new TypeError(`An IP address has 4 or 16 bytes, not ${bytes.length}`);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `::ffff:${formatIp(bytes.subarray(12))}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // The longest run of zero groups (the first one on a tie), if at least two long.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * A parsed CIDR block.
 *
 * @example
 * ```ts
 * import { type Cidr, parseCidr } from "./ip.ts";
 *
 * const block: Cidr = parseCidr("192.0.2.0/24");
 * ```
 */
export interface Cidr {
  /** The network address: 4 bytes for IPv4, 16 for IPv6. */
  bytes: Uint8Array;
  /** The prefix length in bits. */
  bits: number;
}

/**
 * Parses an IP address: `"a.b.c.d"`, `"x:y::z"`, and IPv4-mapped IPv6 (`"::ffff:a.b.c.d"`,
 * returned as IPv4, since dual-stack servers report IPv4 peers that way).
 *
 * @param address The address text (a `%zone` suffix is ignored).
 * @returns 4 or 16 bytes, or `undefined` when it is not an IP address.
 *
 * @example
 * ```ts
 * import { parseIp } from "./ip.ts";
 *
 * console.log(parseIp("::ffff:10.0.0.1")); // Uint8Array [10, 0, 0, 1]
 * ```
 */
export function parseIp(address: string): Uint8Array | undefined {
  const zone = address.indexOf("%");
  const text = zone === -1 ? address : address.slice(0, zone);
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text);
  if (!v6) return undefined;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

// A loop over the characters, not split and a regex per part: the gate parses its peer's address
// at every accept (twice behind a PROXY listener: the trust check and the penalty lookup).
function parseIpv4(text: string): Uint8Array | undefined {
  const packed = scanIpv4(text);
  if (packed < 0) return undefined;
  const bytes = new Uint8Array(4);
  bytes[0] = (packed / 2 ** 24) & 0xff;
  bytes[1] = (packed >>> 16) & 0xff;
  bytes[2] = (packed >>> 8) & 0xff;
  bytes[3] = packed & 0xff;
  return bytes;
}

/**
 * Whether `text` is an IPv4 address as `bytes.join(".")` writes it: four parts 0-255, no leading
 * zeros (then it can serve as its own key, unparsed).
 *
 * @param text The address text.
 * @returns True for a canonical dotted quad.
 *
 * @example
 * ```ts
 * import { isCanonicalIpv4 } from "./ip.ts";
 *
 * console.log(isCanonicalIpv4("10.0.0.1"), isCanonicalIpv4("010.0.0.1")); // true false
 * ```
 */
export function isCanonicalIpv4(text: string): boolean {
  const packed = scanIpv4(text);
  return packed >= 0 && packed < NOT_CANONICAL;
}

// scanIpv4 adds this to an address written with a leading zero (`010.0.0.1`).
const NOT_CANONICAL = 2 ** 32;

/** The IPv4 address `text` as one number (plus NOT_CANONICAL if a part has a leading zero), or -1. */
function scanIpv4(text: string): number {
  let packed = 0; // the finished parts, 8 bits each
  let parts = 0;
  let value = 0;
  let digits = 0;
  let leadingZero = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === DOT) {
      if (digits === 0 || parts === 3) return -1;
      packed = packed * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else if (code >= DIGIT_0 && code <= DIGIT_9 && digits < 3) {
      if (digits === 1 && value === 0) leadingZero = true;
      value = value * 10 + code - DIGIT_0;
      digits++;
      if (value > 255) return -1;
    } else {
      return -1;
    }
  }
  if (digits === 0 || parts !== 3) return -1;
  return packed * 256 + value + (leadingZero ? NOT_CANONICAL : 0);
}

const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

function parseIpv6(text: string): Uint8Array | undefined {
  if (!text.includes(":")) return undefined;
  let head = text;
  let tailV4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tailV4 = parseIpv4(text.slice(lastColon + 1));
    if (!tailV4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) return undefined;
  const all = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-f]{1,4}$/i.test(all[i]!)) return undefined;
    const value = parseInt(all[i]!, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  }
  if (tailV4) bytes.set(tailV4, 12);
  return bytes;
}

/**
 * Parses a CIDR block (`"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address for one host).
 *
 * @param text The block.
 * @returns Its address bytes and prefix length.
 * @throws {TypeError} When the text is not a CIDR block.
 *
 * @example
 * ```ts
 * import { parseCidr } from "./ip.ts";
 *
 * console.log(parseCidr("127.0.0.0/8").bits); // 8
 * ```
 */
export function parseCidr(text: string): Cidr {
  const [address, bitsText] = text.split("/");
  const bytes = parseIp(address ?? "");
  const max = bytes ? bytes.length * 8 : 0;
  const bits = bitsText === undefined ? max : /^\d+$/.test(bitsText) ? Number(bitsText) : NaN;
  if (!bytes || !(bits >= 0 && bits <= max)) throw new TypeError(`Invalid CIDR block "${text}"`);
  return { bytes, bits };
}

/**
 * Whether `bytes` (an address from {@linkcode parseIp}) lies in `cidr`. IPv4 never matches an IPv6 block.
 *
 * @param cidr The block.
 * @param bytes The address bytes.
 * @returns True when the address is in the block.
 *
 * @example
 * ```ts
 * import { cidrContains, parseCidr, parseIp } from "./ip.ts";
 *
 * console.log(cidrContains(parseCidr("10.0.0.0/8"), parseIp("10.1.2.3")!)); // true
 * ```
 */
export function cidrContains(cidr: Cidr, bytes: Uint8Array): boolean {
  if (cidr.bytes.length !== bytes.length) return false;
  for (let bit = 0; bit < cidr.bits; bit += 8) {
    const i = bit / 8;
    const mask = cidr.bits - bit >= 8 ? 0xff : (0xff << (8 - (cidr.bits - bit))) & 0xff;
    if ((cidr.bytes[i]! & mask) !== (bytes[i]! & mask)) return false;
  }
  return true;
}
