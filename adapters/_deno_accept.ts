// The Deno adapter's accept loop, for plain and TLS listeners, and its handling of failed accepts
// and binds.

import { AddrInUseError, type ListenHandlers } from "../src/mod.ts";
import { ACCEPT_BACKOFF_MS, acceptErrorKind } from "../src/accept_errors.ts";
import { sleep } from "../src/_timers.ts";
import { Deno, type DenoConn, type DenoListener } from "./_deno_api.ts";

/** What an accept loop reads on each turn: set by its listener's close and TLS reload. */
export interface AcceptControl {
  /** Set once the listener is closed for good: the loop ends. */
  stopped: boolean;
  /** Set while a TLS reload replaces the listener: the loop waits for it, then accepts again. */
  reopening?: Promise<void>;
  /** Called when the loop has given the old listener up during a reload. */
  acceptEnded?(): void;
}

/**
 * Accepts connections from `listener()` (read each turn: a TLS reload replaces it) and hands each
 * to `onConn` until `control.stopped`.
 *
 * @param listener The live listener.
 * @param onConn Takes each accepted connection.
 * @param handlers Where failed accepts are reported.
 * @param control The loop's stop and reload state.
 * @returns Settles once the loop has ended.
 *
 * @example
 * ```ts ignore
 * import { acceptEach } from "./_deno_accept.ts";
 *
 * const control = { stopped: false };
 * const accepting = acceptEach(() => listener, (conn) => conn.close(), handlers, control);
 * ```
 */
export async function acceptEach(
  listener: () => DenoListener,
  onConn: (conn: DenoConn) => void,
  handlers: ListenHandlers,
  control: AcceptControl,
): Promise<void> {
  while (!control.stopped) {
    let conn: DenoConn;
    try {
      conn = await listener().accept();
    } catch (error) {
      if (control.reopening) {
        control.acceptEnded?.();
        await control.reopening;
        continue;
      }
      if (control.stopped || error instanceof Deno.errors.BadResource) return;
      await afterAcceptError(error, handlers);
      continue;
    }
    onConn(conn);
  }
}

/** Retries a bind that fails with "in use" for up to a second: a closed listener lets its port go a moment later. */
export async function bindAgain(bind: () => DenoListener): Promise<DenoListener> {
  for (let attempt = 0;; attempt++) {
    try {
      return bind();
    } catch (error) {
      if (!(error instanceof AddrInUseError) || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * Reports a failed accept and waits as its kind asks. A connection reset while it waited
 * (ENOTCONN here) is gone: accept the next at once. Out of descriptors, the next accept would
 * fail too: back off instead of spinning.
 */
async function afterAcceptError(error: unknown, handlers: ListenHandlers): Promise<void> {
  handlers.onError(error);
  const kind = acceptErrorKind(error);
  if (kind !== "connection") await sleep(kind === "exhaustion" ? ACCEPT_BACKOFF_MS : 0);
}
