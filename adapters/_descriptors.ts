// How many more sockets this process can accept before it runs out of file descriptors (Linux
// /proc; elsewhere unknown). Node's libuv swallows EMFILE on accept (it accepts and closes the
// pending connections itself) and Bun spins on it, so these adapters stop short of the limit
// and let the core refuse, log and recover instead.

import { readdirSync, readFileSync } from "node:fs";
import { softOpenFilesLimit } from "./_proc_limits.ts";

// Descriptors kept free for the runtime itself (timers, files, DNS, the accept of a refused peer).
const RESERVE = 16;

/** Sockets the process may still open, or `undefined` when the limit cannot be read. */
export function socketBudget(): number | undefined {
  const usage = fileDescriptorUsage();
  return usage && Math.max(0, usage.limit - usage.open - RESERVE);
}

/** The soft descriptor limit and how many are open, or `undefined` when unknown or unlimited. */
export function fileDescriptorUsage(): { limit: number; open: number } | undefined {
  try {
    const limit = softOpenFilesLimit(readFileSync("/proc/self/limits", "utf8"));
    return limit === undefined ? undefined : { limit, open: readdirSync("/proc/self/fd").length };
  } catch {
    return undefined;
  }
}

/** Descriptors open now (Linux /proc), or `undefined` where that cannot be read. */
export function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}
