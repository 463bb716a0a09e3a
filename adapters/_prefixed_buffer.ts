// A read buffer with a copy of a reply prefix in front, shared by the Deno adapter's stream and
// datagram loops: data read right behind the prefix makes prefix + data one view, an answer
// without a copy or an allocation (ChunkResponder.replyPrefix, DatagramHandlers.replyPrefix).

/**
 * A buffer of `prefix.length + size` bytes that begins with a copy of `prefix`; without a prefix
 * (or an empty one), a plain buffer of `size` bytes.
 *
 * @example
 * ```ts
 * import { prefixedBuffer } from "./_prefixed_buffer.ts";
 *
 * const prefix = new TextEncoder().encode("Echo=>");
 * const buffer = prefixedBuffer(prefix, 512);
 * const space = buffer.subarray(prefix.length); // read into this; buffer.subarray(0, prefix.length + n) is the answer
 * console.assert(buffer.length === 518 && space.length === 512 && buffer[0] === prefix[0]);
 * ```
 */
export function prefixedBuffer(prefix: Uint8Array | undefined, size: number): Uint8Array {
  if (prefix === undefined || prefix.length === 0) return new Uint8Array(size);
  const buffer = new Uint8Array(prefix.length + size);
  buffer.set(prefix);
  return buffer;
}
