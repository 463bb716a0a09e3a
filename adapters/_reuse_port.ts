// Which `node:net` listeners take `reusePort` (SO_REUSEPORT), for `--workers`.
//
// Node added `reusePort` to `server.listen()` in 22.12 and 23.1; older Node ignores the option
// (a second bind then fails with EADDRINUSE). Deno's node:net honours it (measured with Deno
// 2.9, without --unstable-net). Bun's node:net is not used: its adapter listens with Bun.listen.

import cluster from "node:cluster";
import process from "node:process";

function nodeHasReusePort(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** True where `net.Server#listen({ reusePort: true })` shares the port between processes. */
export const netReusePort: boolean = typeof (process.versions as Record<string, string | undefined>).deno ===
    "string" || nodeHasReusePort(process.versions.node ?? "0");

/**
 * The options for `net.Server#listen` on a TCP port. With `reusePort`: in a `node:cluster` worker
 * nothing more (the primary owns the socket and shares it), elsewhere `reusePort: true` where
 * this runtime has it; where it does not, an error saying so.
 */
export function tcpListenOptions(
  hostname: string,
  port: number,
  reusePort: boolean | undefined,
): { host: string; port: number; reusePort?: boolean } {
  if (!reusePort || cluster.isWorker) return { host: hostname, port };
  if (!netReusePort) {
    throw new Error(
      `reusePort needs Node 22.12+ or a node:cluster worker (this is Node ${process.versions.node}; echogate --workers starts cluster workers here)`,
    );
  }
  return { host: hostname, port, reusePort: true };
}
