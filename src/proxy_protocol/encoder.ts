/**
 * Writing PROXY protocol headers: what a proxy (or echogate's clients, or the gate's `--then`
 * forwarder) sends before the client's bytes.
 *
 * @module
 */

import { parseIp } from "../penalties.ts";
import type { Address } from "../types.ts";
import { crc32c } from "./crc32c.ts";
import { PP2_TYPE, type ProxyTlv, V2_MAX_LENGTH, V2_SIGNATURE } from "./header.ts";
import { formatIp } from "./ip.ts";

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
