// Timer helpers for the core. Timeouts live here, not in runtime socket options
// (Bun's socket timeouts are coarse, and each runtime's differ).

/** Marker value a timed read resolves with when its deadline passes first. */
export const TIMED_OUT: unique symbol = Symbol("timed out");

/** Resolves with `promise`'s value, or {@linkcode TIMED_OUT} after `ms`; the deadline is always removed. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (!Number.isFinite(ms)) return promise;
  // One promise and one queue entry (not Promise.race over a timeout promise, nor a runtime timer
  // each): every connection's token wait and close sequence runs through here.
  return new Promise((resolve, reject) => {
    const deadline = deadlines.add(ms, resolve);
    promise.then(
      (value) => {
        deadlines.remove(deadline);
        resolve(value);
      },
      (error) => {
        deadlines.remove(deadline);
        reject(error);
      },
    );
  });
}

/**
 * Calls `expire` after `ms` (on the shared deadline list, as {@linkcode within} does), unless
 * {@linkcode cancelDeadline} comes first: a timeout with no promise, for callback-driven paths.
 */
export function addDeadline(ms: number, expire: () => void): Deadline {
  return deadlines.add(ms, expire);
}

/** Cancels a deadline from {@linkcode addDeadline}; nothing happens if it has expired already. */
export function cancelDeadline(entry: Deadline): void {
  deadlines.remove(entry);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A pending deadline: a link in the queue, in the order of `at`. */
export interface Deadline {
  at: number; // performance.now() ms
  expire: ((value: typeof TIMED_OUT) => void) | undefined; // undefined once removed or expired
  previous: Deadline | undefined;
  next: Deadline | undefined;
}

/**
 * Every pending deadline of the process in one list sorted by time, under one runtime timer armed
 * for the earliest. A runtime timer per connection (two per gate knock: the token wait and the
 * close linger) cost each runtime an object and a timer-heap insert and removal, and on Deno an op
 * each way. Deadlines mostly come in time order (one timeout for every connection), so insertion
 * walks back from the tail a step or none; removal unlinks in O(1) and leaves the timer armed (it
 * fires, finds nothing due and re-arms), except once the list is empty, so an idle process holds
 * no timer that keeps it alive.
 */
class DeadlineQueue {
  #head: Deadline | undefined;
  #tail: Deadline | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  add(ms: number, expire: (value: typeof TIMED_OUT) => void): Deadline {
    const entry: Deadline = { at: performance.now() + Math.max(0, ms), expire, previous: undefined, next: undefined };
    let before = this.#tail;
    while (before !== undefined && before.at > entry.at) before = before.previous;
    entry.previous = before;
    entry.next = before === undefined ? this.#head : before.next;
    if (entry.next) entry.next.previous = entry;
    else this.#tail = entry;
    if (before) before.next = entry;
    else this.#head = entry;
    if (entry.at < this.#timerAt) this.#arm(entry.at);
    return entry;
  }

  remove(entry: Deadline): void {
    if (entry.expire === undefined) return;
    entry.expire = undefined;
    this.#unlink(entry);
    if (this.#head === undefined && this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
    }
  }

  #unlink(entry: Deadline): void {
    if (entry.previous) entry.previous.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.previous = entry.previous;
    else this.#tail = entry.previous;
    entry.previous = entry.next = undefined;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#fire, Math.max(0, at - performance.now()));
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    // A runtime may fire a timer a fraction of a millisecond before our clock says it is due:
    // what is not due yet waits for the next arming.
    while (this.#head !== undefined && this.#head.at <= now) {
      const entry = this.#head;
      const expire = entry.expire!;
      entry.expire = undefined;
      this.#unlink(entry);
      expire(TIMED_OUT);
    }
    if (this.#head !== undefined) this.#arm(this.#head.at);
  };
}

const deadlines = new DeadlineQueue();
