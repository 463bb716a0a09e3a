// A secret file read whole, on node:fs, which all three runtimes have: opened without blocking
// (a FIFO with no writer would otherwise hang start-up), checked after the open on the open
// descriptor (no race between the check and the read), and read with a bound.

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { SmallFile } from "../src/cli/host.ts";

/** What a file that is not a regular one is, for the error line. */
function kindOf(stats: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
}): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

/**
 * Reads the regular file at `path` as UTF-8 if it holds at most `maxBytes` bytes; anything else
 * (a FIFO, a directory, a device, a larger file) is reported without reading it.
 *
 * @example
 * ```ts ignore
 * const file = await readSmallFile("tokens.txt", 64 * 1024);
 * if (file.kind === "file" && (file.mode & 0o077) !== 0) console.warn("others may read it");
 * ```
 */
export async function readSmallFile(path: string, maxBytes: number): Promise<SmallFile> {
  // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { kind: "not-regular", type: kindOf(stats) };
    if (stats.size > maxBytes) return { kind: "too-big", size: stats.size };
    // One byte more than allowed tells a file that grew since the stat (or a /proc file, which
    // reports size 0) from one that fits.
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return { kind: "too-big", size: length };
    return { kind: "file", text: new TextDecoder().decode(buffer.subarray(0, length)), mode: stats.mode & 0o7777 };
  } finally {
    await handle.close();
  }
}
