/**
 * IP address text for PROXY protocol headers: v2 carries raw bytes, v1 and logs need text.
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
 * import { formatIp } from "./mod.ts";
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
