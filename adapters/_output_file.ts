// Checks an output file (`bench --hdr`) before the work that fills it, shared by the CLI hosts
// (node:fs works on Node, Bun and Deno alike).

import { open, stat, unlink } from "node:fs/promises";

/**
 * Resolves when `path` can be written as an output file; rejects with a one-line reason when not
 * (a directory, a missing directory, no permission, a read-only file system). Opening is the one
 * test that asks the kernel exactly what the write will need: an existing file is opened for
 * append (nothing changes), a missing one is created and removed again. Root passes permission
 * checks here as it would when writing.
 *
 * @example
 * ```ts ignore
 * await checkOutputFile("/nonexistent-dir/x.hdr"); // rejects: no such file or directory
 * ```
 */
export async function checkOutputFile(path: string): Promise<void> {
  let exists = true;
  try {
    if ((await stat(path)).isDirectory()) throw new Error(`${path} is a directory`);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
    exists = false;
  }
  // "wx" creates only a new file, so the file removed below is the one made here.
  const handle = await open(path, exists ? "a" : "wx");
  await handle.close();
  if (!exists) await unlink(path);
}
