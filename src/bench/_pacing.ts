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
