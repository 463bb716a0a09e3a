// Helpers for the tests that run real HAProxy: whether it is here, free ports, and clients that
// connect from a loopback address of their choice (127.0.0.2, …) so each is its own source.

import { spawnSync } from "node:child_process";
import net from "node:net";
import type { Child } from "./_child.ts";
import { waitUntil } from "./_wait.ts";

/** Why HAProxy tests cannot run here, or undefined when `haproxy` is installed. */
export function haproxyMissingReason(): string | undefined {
  const probe = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
  return probe.status === 0 ? undefined : "haproxy is not installed (apt-get install -y haproxy)";
}

/** A port that was free a moment ago (bound on port 0, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Connects (to 127.0.0.1, or ::1 from an IPv6 `localAddress`) from `localAddress`, writes `send`, half-closes when `end`, and collects everything until the server closes. */
export function exchange(
  port: number,
  localAddress: string,
  send: Uint8Array,
  options: { end?: boolean; until?: number } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: localAddress.includes(":") ? "::1" : "127.0.0.1", port, localAddress });
    const parts: Buffer[] = [];
    let total = 0;
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("no reply within 10 s"))), 10_000);
    const done = () => (clearTimeout(timer), resolve(Buffer.concat(parts)));
    socket.on("connect", () => {
      socket.write(send);
      if (options.end) socket.end();
    });
    socket.on("data", (chunk) => {
      parts.push(chunk);
      total += chunk.length;
      if (options.until !== undefined && total >= options.until) (socket.destroy(), done());
    });
    socket.on("end", () => (socket.end(), done()));
    socket.on("error", (error) => (clearTimeout(timer), reject(error)));
  });
}

/** Whether this machine has IPv6 loopback (::1) to listen on. */
export function hasIpv6Loopback(): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(0, "::1", () => server.close(() => resolve(true)));
  });
}

/** One command to an HAProxy runtime API (a unix socket path), and its whole answer. */
export function runtimeApi(path: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path);
    let out = "";
    socket.on("connect", () => socket.end(`${command}\n`));
    socket.on("data", (chunk) => (out += chunk));
    socket.on("end", () => resolve(out));
    socket.on("error", reject);
  });
}

/** HAProxy's `show stat` over its stats socket, as rows of name → value. */
export async function showStat(path: string): Promise<Record<string, string>[]> {
  const out = await runtimeApi(path, "show stat");
  const [head, ...rows] = out.trim().split("\n");
  const names = head!.replace(/^# /, "").split(",");
  // A check in progress shows as "* L7OK": the last result, with the star.
  const field = (value: string) => value.replace(/^\* /, "");
  return rows.map((row) => Object.fromEntries(row.split(",").map((value, i) => [names[i], field(value)])));
}

/** Whether HAProxy `child` came up: its stats socket answers within 10 s; false once it exits (a port taken). */
export async function statsSocketAnswers(child: Child, stats: string): Promise<boolean> {
  let up = false;
  await waitUntil(async () => {
    up = await showStat(stats).then(() => true, () => false);
    return up || child.process.exitCode !== null;
  }, { timeoutMs: 10_000, intervalMs: 50, what: "HAProxy's stats socket" }).catch(() => {});
  return up;
}
