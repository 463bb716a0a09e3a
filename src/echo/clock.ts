// The clock behind per-datagram decisions (rate limits, the peer log), read once per tick while
// datagrams flow instead of once per datagram: on Deno performance.now() is an op, about 150 ns,
// which was the largest part of the core's own work per datagram (docs/udp.md).

/** How old a reading of {@linkcode TickClock} may be, in ms (plus however late the tick runs). */
export const CLOCK_TICK_MS = 25;

/**
 * A monotonic clock in ms (`performance.now()`'s), refreshed by a timer that runs only while the
 * clock is read: idle, it stops, and the first reading after that is fresh.
 *
 * @example
 * ```ts
 * import { TickClock } from "./clock.ts";
 *
 * const clock = new TickClock();
 * const then = clock.now();
 * console.log(clock.now() - then); // 0: the same tick
 * clock.close();
 * ```
 */
export class TickClock {
  #now = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #read = false;
  #closed = false;
  #tick = (): void => {
    if (!this.#read) return this.#idle();
    this.#read = false;
    this.#now = performance.now();
  };

  /** The time, at most one tick old; after `close()`, read at once. */
  now(): number {
    if (this.#timer === undefined) {
      this.#now = performance.now();
      if (this.#closed) return this.#now;
      this.#timer = setInterval(this.#tick, CLOCK_TICK_MS);
    }
    this.#read = true;
    return this.#now;
  }

  /** Stops the timer for good: no timer keeps a closed server's process alive. */
  close(): void {
    this.#closed = true;
    this.#idle();
  }

  #idle(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
