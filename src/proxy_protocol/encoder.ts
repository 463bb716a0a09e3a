/**
 * Writing PROXY protocol headers: what a proxy (or echogate's clients, or the gate's `--then`
 * forwarder) sends before the client's bytes.
 *
 * @module
 */

import { parseIp } from "../ip.ts";
import type { Address } from "../types.ts";
import { crc32c } from "./crc32c.ts";
import { PP2_TYPE, type ProxyTlv, V2_MAX_LENGTH, V2_SIGNATURE } from "./header.ts";
import { formatIp } from "../ip.ts";

/**
 * What to put in a header. Without `source` and `destination` (or when either is not a TCP
 * address), v1 sends `PROXY UNKNOWN` and v2 a `PROXY` command with family `unspec`: the receiver
 * then uses the connection's real endpoints. `local: true` sends v2's `LOCAL` (a connection the
 * proxy makes for itself, such as a health check).
 *
 * @example
 * ```ts
 * import type { ProxyHeaderInit } from "./mod.ts";
 *
 * const init: ProxyHeaderInit = {
 *   version: 2,
 *   source: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
 *   destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
 *   crc32c: true,
 * };
 * ```
 */
export interface ProxyHeaderInit {
  /** 1 for the text line, 2 for the binary form. */
  version: 1 | 2;
  /** The client. */
  source?: Address;
  /** Where the client connected to. */
  destination?: Address;
  /** v2 only: send `LOCAL` (addresses are then left out). @default {false} */
  local?: boolean;
  /** v2 only: TLVs to append, in order. */
  tlvs?: readonly ProxyTlv[];
  /** v2 only: append a CRC32C TLV over the whole header. @default {false} */
  crc32c?: boolean;
}

/**
 * Encodes a PROXY protocol header. An IPv4 and an IPv6 address together are sent as IPv6
 * (the IPv4 one mapped as `::ffff:a.b.c.d`), as a dual-stack socket would report them.
 *
 * @param init The version and what to say.
 * @returns The header bytes.
 * @throws {TypeError} When an address is not an IP address, or a v2 header would exceed 16 +
 *   {@linkcode V2_MAX_LENGTH} bytes.
 *
 * @example
 * ```ts
 * import { encodeProxyHeader } from "./mod.ts";
 *
 * const line = encodeProxyHeader({
 *   version: 1,
 *   source: { transport: "tcp", hostname: "192.0.2.7", port: 40000 },
 *   destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
 * });
 * console.log(JSON.stringify(new TextDecoder().decode(line))); // "PROXY TCP4 192.0.2.7 198.51.100.1 40000 8001\r\n"
 * ```
 */
export function encodeProxyHeader(init: ProxyHeaderInit): Uint8Array {
  const pair = init.local ? undefined : ipPair(init.source, init.destination);
  if (init.version === 1) {
    if (!pair) return new TextEncoder().encode("PROXY UNKNOWN\r\n");
    const family = pair.source.length === 4 ? "TCP4" : "TCP6";
    const line = `PROXY ${family} ${formatIp(pair.source)} ${
      formatIp(pair.destination)
    } ${pair.sourcePort} ${pair.destinationPort}\r\n`;
    return new TextEncoder().encode(line);
  }
  const addressBytes = pair ? 2 * pair.source.length + 4 : 0;
  const tlvs = init.tlvs ?? [];
  const length = addressBytes + tlvs.reduce((sum, tlv) => sum + 3 + tlv.value.length, 0) + (init.crc32c ? 7 : 0);
  if (length > V2_MAX_LENGTH) throw new TypeError(`A v2 header is at most ${16 + V2_MAX_LENGTH} bytes`);
  const bytes = new Uint8Array(16 + length);
  bytes.set(V2_SIGNATURE);
  bytes[12] = init.local ? 0x20 : 0x21;
  // Family in the high nibble (1 inet, 2 inet6), protocol in the low one (1 stream).
  bytes[13] = pair ? (pair.source.length === 4 ? 0x11 : 0x21) : 0x00;
  bytes[14] = length >> 8;
  bytes[15] = length & 0xff;
  let at = 16;
  if (pair) {
    bytes.set(pair.source, at);
    bytes.set(pair.destination, at + pair.source.length);
    at += 2 * pair.source.length;
    bytes[at++] = pair.sourcePort >> 8;
    bytes[at++] = pair.sourcePort & 0xff;
    bytes[at++] = pair.destinationPort >> 8;
    bytes[at++] = pair.destinationPort & 0xff;
  }
  for (const tlv of tlvs) {
    if (tlv.value.length > 0xffff) throw new TypeError("A TLV value is at most 65535 bytes");
    bytes[at] = tlv.type;
    bytes[at + 1] = tlv.value.length >> 8;
    bytes[at + 2] = tlv.value.length & 0xff;
    bytes.set(tlv.value, at + 3);
    at += 3 + tlv.value.length;
  }
  if (init.crc32c) {
    bytes[at] = PP2_TYPE.CRC32C;
    bytes[at + 2] = 4;
    const crc = crc32c(bytes); // computed with its own field still zero
    bytes[at + 3] = crc >>> 24;
    bytes[at + 4] = (crc >>> 16) & 0xff;
    bytes[at + 5] = (crc >>> 8) & 0xff;
    bytes[at + 6] = crc & 0xff;
  }
  return bytes;
}

interface IpPair {
  source: Uint8Array;
  destination: Uint8Array;
  sourcePort: number;
  destinationPort: number;
}

// Both addresses as bytes of the same family, or undefined when either is not a TCP/IP address.
function ipPair(source: Address | undefined, destination: Address | undefined): IpPair | undefined {
  if (source?.transport !== "tcp" || destination?.transport !== "tcp") return undefined;
  let from = parseIp(source.hostname);
  let to = parseIp(destination.hostname);
  if (!from) throw new TypeError(`"${source.hostname}" is not an IP address`);
  if (!to) throw new TypeError(`"${destination.hostname}" is not an IP address`);
  if (from.length !== to.length) [from, to] = [mapToIpv6(from), mapToIpv6(to)];
  for (const port of [source.port, destination.port]) {
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) throw new TypeError(`${port} is not a port`);
  }
  return { source: from, destination: to, sourcePort: source.port, destinationPort: destination.port };
}

function mapToIpv6(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes;
  const mapped = new Uint8Array(16);
  mapped[10] = mapped[11] = 0xff;
  mapped.set(bytes, 12);
  return mapped;
}

/**
 * Headers that differ only in the source port, as a proxy sends them for one client address
 * (or a load generator for its one local address): encoded once, then per connection copied
 * with the port written in, instead of encoded from scratch. Each header is byte for byte what
 * {@linkcode encodeProxyHeader} returns for `init` with that source port (for v2 with `crc32c`,
 * the checksum is computed again over the patched header).
 *
 * @example
 * ```ts
 * import { ProxyHeaderTemplate } from "./mod.ts";
 *
 * const template = new ProxyHeaderTemplate({
 *   version: 2,
 *   source: { transport: "tcp", hostname: "192.0.2.7", port: 0 },
 *   destination: { transport: "tcp", hostname: "198.51.100.1", port: 8001 },
 * });
 * const first = template.encode(40000, new TextEncoder().encode("1")); // the header, then "1"
 * console.log(first.length); // 29
 * ```
 */
export class ProxyHeaderTemplate {
  /** What the template was made from (its source port is replaced in each header). */
  readonly init: ProxyHeaderInit;
  // The header with source port 0. v1: the line up to the port (`#head`) and from the space after it (`#tail`).
  readonly #head: Uint8Array;
  readonly #tail: Uint8Array;
  readonly #portAt: number; // v2: the source port's offset; -1 when the header names no port
  readonly #crcAt: number; // v2: the CRC32C value's offset; -1 without one

  /**
   * Encodes the header once, with source port 0.
   *
   * @param init As for {@linkcode encodeProxyHeader}; `init.source.port` is not used.
   * @throws {TypeError} As {@linkcode encodeProxyHeader} does.
   */
  constructor(init: ProxyHeaderInit) {
    this.init = init;
    const source = init.source?.transport === "tcp" ? { ...init.source, port: 0 } : init.source;
    const bytes = encodeProxyHeader({ ...init, source });
    const named = !init.local && ipPair(source, init.destination) !== undefined;
    this.#tail = EMPTY;
    this.#portAt = -1;
    this.#crcAt = -1;
    if (!named) {
      this.#head = bytes;
    } else if (init.version === 1) {
      // "PROXY TCP4 <source> <destination> 0 <port>\r\n": the source port follows the fourth space.
      let spaces = 0;
      let at = 0;
      while (spaces < 4) if (bytes[at++] === 0x20) spaces++;
      this.#head = bytes.subarray(0, at);
      this.#tail = bytes.subarray(at + 1);
    } else {
      this.#head = bytes;
      this.#portAt = 16 + 2 * (bytes[13]! >> 4 === 1 ? 4 : 16);
      if (init.crc32c) this.#crcAt = bytes.length - 4;
    }
  }

  /**
   * The header's size with `sourcePort` (v1's text is as long as the port's digits).
   *
   * @param sourcePort The client's port.
   * @returns The header's length in bytes.
   */
  byteLength(sourcePort: number): number {
    return this.#head.length + (this.#tail.length > 0 ? digits(sourcePort) + this.#tail.length : 0);
  }

  /**
   * Writes the header with `sourcePort` into `target` at `offset`.
   *
   * @param sourcePort The client's port.
   * @param target Where to write; it must have {@linkcode byteLength} bytes from `offset`.
   * @param offset Where the header starts in `target`.
   * @returns The offset just past the header.
   * @throws {TypeError} When `sourcePort` is not a port.
   */
  encodeInto(sourcePort: number, target: Uint8Array, offset = 0): number {
    if (!(Number.isInteger(sourcePort) && sourcePort >= 0 && sourcePort <= 65535)) {
      throw new TypeError(`${sourcePort} is not a port`);
    }
    target.set(this.#head, offset);
    let end = offset + this.#head.length;
    if (this.#tail.length > 0) {
      const start = end;
      end += digits(sourcePort);
      for (let at = end - 1, rest = sourcePort; at >= start; at--, rest = Math.floor(rest / 10)) {
        target[at] = 0x30 + (rest % 10);
      }
      target.set(this.#tail, end);
      return end + this.#tail.length;
    }
    if (this.#portAt >= 0) {
      target[offset + this.#portAt] = sourcePort >> 8;
      target[offset + this.#portAt + 1] = sourcePort & 0xff;
    }
    if (this.#crcAt >= 0) {
      const crcAt = offset + this.#crcAt;
      target.fill(0, crcAt, crcAt + 4);
      const crc = crc32c(target.subarray(offset, end));
      target[crcAt] = crc >>> 24;
      target[crcAt + 1] = (crc >>> 16) & 0xff;
      target[crcAt + 2] = (crc >>> 8) & 0xff;
      target[crcAt + 3] = crc & 0xff;
    }
    return end;
  }

  /**
   * The header with `sourcePort`, followed by `payload`, in one new buffer: what a proxy writes
   * when it already holds the client's first bytes.
   *
   * @param sourcePort The client's port.
   * @param payload Bytes to send after the header.
   * @returns The header and payload.
   * @throws {TypeError} When `sourcePort` is not a port.
   */
  encode(sourcePort: number, payload: Uint8Array = EMPTY): Uint8Array {
    const bytes = new Uint8Array(this.byteLength(sourcePort) + payload.length);
    bytes.set(payload, this.encodeInto(sourcePort, bytes));
    return bytes;
  }
}

const EMPTY = new Uint8Array(0);

function digits(port: number): number {
  return port < 10 ? 1 : port < 100 ? 2 : port < 1000 ? 3 : port < 10000 ? 4 : 5;
}
