// The file rules for unix socket paths, shared by the three adapters (node:fs and node:process
// work on Node, Bun and Deno alike): a socket is created with a chosen mode, and only a socket
// is ever removed to make room for one.

import { chmodSync, lstatSync } from "node:fs";
import { lstat, unlink } from "node:fs/promises";
import process from "node:process";
import { NotASocketError } from "../src/errors.ts";

/** The mode of a new unix socket file unless the caller widens it: the owner only (as HAProxy's `mode 600`). */
export const DEFAULT_UNIX_MODE = 0o600;

/**
 * Runs `bind`, which creates the socket file at `path` synchronously (`net.Server.listen({ path })`,
 * `Bun.listen` and `Deno.listen` all do), under the umask that gives the file `mode`, then restores
 * the umask. The file is born with its final mode, so there is no window between bind and a chmod
 * in which another user could connect. Files other threads create meanwhile (the runtime's
 * thread pool) would get a narrower mode for that moment, never a wider one than `mode` allows.
 * Where the umask cannot be set (Deno without `--allow-sys`, a Node worker thread), the socket is
 * chmod-ed right after the bind, before any connection is accepted (accepting waits for the event
 * loop): a connection made in between would still be served.
 *
 * @example
 * ```ts ignore
 * const listener = bindWithMode("/run/echo.sock", 0o660, () => Deno.listen({ transport: "unix", path: "/run/echo.sock" }));
 * ```
 */
export function bindWithMode<T>(path: string, mode: number | undefined, bind: () => T): T {
  const wanted = mode ?? DEFAULT_UNIX_MODE;
  let previous: number | undefined;
  try {
    previous = process.umask(~wanted & 0o777);
  } catch {
    // Deno without --allow-sys, a Node worker thread: the chmod below instead.
  }
  let bound: T;
  try {
    bound = bind();
  } finally {
    if (previous !== undefined) process.umask(previous);
  }
  // Only a socket: where a failed bind is reported later (Node), the path may hold someone else's file.
  if (previous === undefined && lstatSync(path, { throwIfNoEntry: false })?.isSocket()) chmodSync(path, wanted);
  return bound;
}

/** What lstat says `path` is, in words for an error message; `undefined` when nothing is there. */
async function kindOf(path: string): Promise<string | undefined> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
  if (stats.isSocket()) return "socket";
  if (stats.isSymbolicLink()) return "symbolic link";
  if (stats.isDirectory()) return "directory";
  if (stats.isFile()) return "regular file";
  return "special file";
}

/**
 * Removes the unix socket file at `path` (left by a server that died); does nothing when the path
 * is gone. Anything else there (a regular file, a directory, a symlink, even to a socket) is left
 * untouched and rejects with {@linkcode NotASocketError}. Between the lstat and the unlink another
 * process with write access to the directory could swap the file; it could as well delete it.
 *
 * @example
 * ```ts ignore
 * await removeStaleSocketFile("/run/echo.sock"); // rejects if /run/echo.sock is a regular file
 * ```
 */
export async function removeStaleSocketFile(path: string): Promise<void> {
  const kind = await kindOf(path);
  if (kind === undefined) return;
  if (kind !== "socket") throw new NotASocketError(path, kind);
  await unlink(path).catch((error: { code?: string }) => {
    if (error.code !== "ENOENT") throw error;
  });
}
