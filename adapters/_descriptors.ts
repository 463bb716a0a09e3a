// How many more sockets this process can accept before it runs out of file descriptors (Linux
// /proc; elsewhere unknown). Node's libuv swallows EMFILE on accept (it accepts and closes the
// pending connections itself) and Bun spins on it, so these adapters stop short of the limit
// and let the core refuse, log and recover instead.

import { readdirSync, readFileSync } from "node:fs";

// Descriptors kept free for the runtime itself (timers, files, DNS, the accept of a refused peer).
const RESERVE = 16;

/** Sockets the process may still open, or `undefined` when the limit cannot be read. */
export function socketBudget(): number | undefined {
  try {
    const limits = readFileSync("/proc/self/limits", "utf8");
    const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
    if (soft === undefined || soft === "unlimited") return undefined;
    const open = readdirSync("/proc/self/fd").length;
    return Math.max(0, Number(soft) - open - RESERVE);
  } catch {
    return undefined;
  }
}
