// The pace of a run under `rate`.

/** Paces operations at a total rate: each takes the next free slot. */
export class Pacer {
  #gapMs: number;
  #next = 0;

  constructor(rate: number) {
    this.#gapMs = 1000 / rate;
  }

  /** Takes the next free slot; returns how many ms until it is due. */
  take(): number {
    const now = performance.now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + this.#gapMs;
    return slot - now;
  }
}
