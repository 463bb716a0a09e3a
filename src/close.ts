/**
 * The one close sequence for every connection, on every runtime.
 *
 * @module
 */

import { TIMED_OUT, within } from "./_timers.ts";
import type { StreamSocket } from "./types.ts";

/** Options for {@linkcode closeGracefully}. */
export interface CloseGracefullyOptions {
  /** How long to wait for the peer's FIN after ours, in ms. @default {2000} */
  lingerMs?: number;
  /** A read already in flight on the socket, to await instead of starting another. */
  pendingRead?: Promise<Uint8Array | null>;
}

/**
 * The one close sequence for every runtime: flush and send FIN, read and discard until the
 * peer's FIN (bounded by `lingerMs`), then close. Closing with unread input would make the
 * kernel send a reset, which can destroy a reply the peer has not read yet.
 *
 * @param socket The socket to close.
 * @param options Linger time and an in-flight read.
 *
 * @example
 * ```ts ignore
 * import { closeGracefully } from "./mod.ts";
 *
 * await closeGracefully(socket, { lingerMs: 1000 });
 * ```
 */
export async function closeGracefully(socket: StreamSocket, options: CloseGracefullyOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.lingerMs ?? 2000);
  try {
    await socket.closeWrite();
    let read = options.pendingRead ?? socket.read();
    while (true) {
      const chunk = await within(read, deadline - Date.now());
      if (chunk === null || chunk === TIMED_OUT) break;
      read = socket.read();
    }
  } catch {
    // The peer reset or the socket is already closed: nothing left to flush.
  } finally {
    socket.close();
  }
}
