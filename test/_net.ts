// Sockets in tests: the adapter of the runtime under test, reading a socket to an end or a count, bytes <-> text.

import { detectRuntime, loadAdapter, type RuntimeName } from "../adapters/mod.ts";
import type { StreamSocket, Transport } from "../src/mod.ts";
import { deadline } from "./_wait.ts";

export const RUNTIME: RuntimeName = detectRuntime();
export const RUNTIMES: readonly RuntimeName[] = ["node", "deno", "bun"];
export const { transport }: { transport: Transport } = await loadAdapter();

/**
 * The adapter's transport, with `watch` called on every socket its listeners accept before the
 * server gets it: a test wraps a method there to see the server call it (on a real socket).
 *
 * @example
 * let handshakes = 0;
 * const watched = watchingTransport((socket) => {
 *   const startTls = socket.startTls?.bind(socket);
 *   if (startTls) socket.startTls = (buffered) => (handshakes++, startTls(buffered));
 * });
 */
export function watchingTransport(watch: (socket: StreamSocket) => void): Transport {
  return {
    ...transport,
    listen: (endpoint, handlers, options) =>
      transport.listen(endpoint, {
        ...handlers,
        onSocket(socket) {
          watch(socket);
          handlers.onSocket(socket);
        },
      }, options),
  };
}

/** Reads from `socket` until end of input; fails after `ms`. */
export async function readAll(socket: StreamSocket, ms = 10_000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await deadline(
    (async () => {
      for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) parts.push(chunk);
    })(),
    ms,
    "end of input",
  );
  return concat(parts);
}

/** Reads from `socket` until at least `n` bytes arrived (or end of input); fails after `ms`. */
export async function readAtLeast(socket: StreamSocket, n: number, ms = 10_000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  await deadline(
    (async () => {
      while (total < n) {
        const chunk = await socket.read();
        if (chunk === null) break;
        parts.push(chunk);
        total += chunk.length;
      }
    })(),
    ms,
    `${n} bytes`,
  );
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The TCP port of a server's address. */
export function portOf(server: { addr: { transport: string; port?: number } }): number {
  if (server.addr.transport !== "tcp") throw new Error("not a TCP server");
  return server.addr.port!;
}

/** True when this machine can bind ::1. */
export async function hasIPv6(): Promise<boolean> {
  try {
    const listener = await transport.listen({ hostname: "::1", port: 0 }, { onSocket: (s) => s.close(), onError() {} });
    await listener.close();
    return true;
  } catch {
    return false;
  }
}

export function tempSocketPath(name: string): string {
  return `/tmp/echogate-test-${RUNTIME}-${globalThis.process.pid}-${name}-${
    Math.random().toString(36).slice(2, 8)
  }.sock`;
}
