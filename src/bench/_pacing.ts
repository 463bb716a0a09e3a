// The pace of a run under `rate`: each connection keeps its own schedule of `rate / conns`
// operations per second, as wrk2 does.

export class Pacer {
  #gapMs: number;
  #next: number | undefined;

  /** @param rate Operations per second on this schedule. */
  constructor(rate: number) {
    this.#gapMs = 1000 / rate;
  }

  /**
   * Takes the next slot and returns when it is due (a `performance.now()` time). The schedule
   * does not slip: a caller that is late gets a slot in the past and should start at once, and
   * its latency counts from the slot (coordinated omission corrected).
   */
  take(): number {
    const slot = this.#next ?? performance.now();
    this.#next = slot + this.#gapMs;
    return slot;
  }
}

/**
 * A run's end: `stop()` ends every {@linkcode RunStop.pause} at once and calls the wakers that
 * whoever waits for something else (a window, an echo) registered.
 */
export class RunStop {
  #stopped = false;
  /** Called once at the stop; a waiter adds itself and deletes itself once woken otherwise. */
  readonly wakers: Set<() => void> = new Set();

  /** True once the run stopped. */
  get stopped(): boolean {
    return this.#stopped;
  }

  stop(): void {
    this.#stopped = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  /** Waits `ms`, or less if the run stops first. */
  pause(ms: number): Promise<void> {
    if (this.#stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}
