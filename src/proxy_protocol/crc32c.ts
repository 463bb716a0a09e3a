/**
 * CRC-32C (Castagnoli), the checksum of PROXY protocol v2's `PP2_TYPE_CRC32C` TLV (RFC 4960,
 * appendix B): reflected polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF.
 *
 * @module
 */

// One 256-entry table, built on first use: a header is at most a few kilobytes, so the
// byte-at-a-time loop is plenty.
let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * Computes the CRC-32C of `bytes`.
 *
 * @param bytes The data.
 * @returns The checksum as an unsigned 32-bit number.
 *
 * @example The standard check value
 * ```ts
 * import { crc32c } from "./mod.ts";
 *
 * console.log(crc32c(new TextEncoder().encode("123456789")).toString(16)); // "e3069283"
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  const t = crcTable();
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
