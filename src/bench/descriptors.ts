/**
 * The descriptor check: a run refuses up front a `conns` that cannot fit in the process's
 * file descriptor limit.
 *
 * @module
 */

import type { Settings } from "./options.ts";

/**
 * How many descriptors the process may hold, and how many it holds now; `undefined` when the
 * runtime cannot tell. Adapters that can read the limit (Linux `/proc/self/limits`) provide it.
 */
export interface FileDescriptorUsage {
  /** The soft limit on open files (`ulimit -n`). */
  limit: number;
  /** Descriptors open right now. */
  open: number;
}

/**
 * Thrown by {@linkcode runBench} when the requested connections cannot fit in the process's
 * file descriptor limit.
 *
 * @example
 * ```ts
 * import { DescriptorLimitError } from "./mod.ts";
 *
 * const error = new DescriptorLimitError(5000, { limit: 1024, open: 20 });
 * console.log(error.message.startsWith("5000 connections need")); // true
 * ```
 */
export class DescriptorLimitError extends Error {
  /**
   * Creates the error.
   *
   * @param conns The connections asked for.
   * @param usage The descriptor limit and how many are open.
   */
  constructor(conns: number, usage: FileDescriptorUsage) {
    super(
      `${conns} connections need ${conns} file descriptors, but only ${
        Math.max(0, usage.limit - usage.open - DESCRIPTOR_RESERVE)
      } are free (limit ${usage.limit}, ${usage.open} open, ${DESCRIPTOR_RESERVE} kept for the runtime): ` +
        `raise the limit (ulimit -n) or lower the connections`,
    );
    this.name = "DescriptorLimitError";
  }
}

// Descriptors left for the runtime itself (timers, stdio, DNS) beyond the sockets.
const DESCRIPTOR_RESERVE = 16;

/** Throws {@linkcode DescriptorLimitError} when the run's connections cannot fit in `usage`. */
export function checkDescriptors(settings: Settings, usage: FileDescriptorUsage | undefined): void {
  if (!usage) return;
  if (settings.conns > usage.limit - usage.open - DESCRIPTOR_RESERVE) {
    throw new DescriptorLimitError(settings.conns, usage);
  }
}
