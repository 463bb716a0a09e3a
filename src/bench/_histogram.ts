// The latency histogram every run records into.

import type { LatencyMs } from "./report.ts";

/** A log-linear latency histogram in microseconds: 64 sub-buckets per power of two. */
export class Histogram {
  static readonly BUCKETS = 128 + 24 * 64;
  #counts = new Uint32Array(Histogram.BUCKETS);
  count = 0;
  #sumUs = 0;
  #maxUs = 0;

  record(ms: number): void {
    const us = Math.min(Math.max(Math.round(ms * 1000), 0), 0x7fffffff);
    this.#counts[bucketOf(us)]!++;
    this.count++;
    this.#sumUs += us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < Histogram.BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
    this.count += other.count;
    this.#sumUs += other.#sumUs;
    if (other.#maxUs > this.#maxUs) this.#maxUs = other.#maxUs;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.#sumUs = 0;
    this.#maxUs = 0;
  }

  summary(): LatencyMs {
    return {
      p50: round3(this.#percentileUs(0.5) / 1000),
      p99: round3(this.#percentileUs(0.99) / 1000),
      max: round3(this.#maxUs / 1000),
      mean: round3(this.count === 0 ? 0 : this.#sumUs / this.count / 1000),
    };
  }

  #percentileUs(fraction: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(fraction * this.count));
    let seen = 0;
    for (let i = 0; i < Histogram.BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddle(i), this.#maxUs);
    }
    return this.#maxUs;
  }
}

export function bucketOf(us: number): number {
  if (us < 128) return us;
  const shift = 31 - Math.clz32(us) - 6;
  return 128 + (shift - 1) * 64 + ((us >>> shift) - 64);
}

export function bucketMiddle(index: number): number {
  if (index < 128) return index;
  const shift = Math.floor((index - 128) / 64) + 1;
  const top = 64 + ((index - 128) % 64);
  return (top + 0.5) * 2 ** shift;
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
