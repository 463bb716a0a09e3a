// The latency histogram every run records into: log-linear buckets in microseconds, exact
// below 512 µs and within 0.4% above (256 sub-buckets per power of two), mergeable exactly.

import type { LatencyMs } from "./report.ts";

const SUB_BITS = 8;
const SUB = 1 << SUB_BITS;
const LINEAR = 2 * SUB;
const BUCKETS = LINEAR + (31 - SUB_BITS - 1) * SUB;
const MAX_US = 0x7fffffff;

/** A histogram as plain data: `[index, count]` pairs of its non-empty buckets and its totals. */
export interface HistogramData {
  counts: [number, number][];
  count: number;
  sumUs: number;
  sumSquaresUs: number;
  maxUs: number;
}

export class Histogram {
  #counts = new Float64Array(BUCKETS);
  count = 0;
  #sumUs = 0;
  #sumSquaresUs = 0;
  #maxUs = 0;

  record(ms: number): void {
    const us = Math.min(Math.max(Math.round(ms * 1000), 0), MAX_US);
    this.#counts[bucketOf(us)]!++;
    this.count++;
    this.#sumUs += us;
    this.#sumSquaresUs += us * us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  merge(other: Histogram): void {
    if (other.count === 0) return;
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
    this.count += other.count;
    this.#sumUs += other.#sumUs;
    this.#sumSquaresUs += other.#sumSquaresUs;
    if (other.#maxUs > this.#maxUs) this.#maxUs = other.#maxUs;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.#sumUs = 0;
    this.#sumSquaresUs = 0;
    this.#maxUs = 0;
  }

  toData(): HistogramData {
    const counts: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i]! > 0) counts.push([i, this.#counts[i]!]);
    return { counts, count: this.count, sumUs: this.#sumUs, sumSquaresUs: this.#sumSquaresUs, maxUs: this.#maxUs };
  }

  static fromData(data: HistogramData): Histogram {
    const histogram = new Histogram();
    for (const [index, count] of data.counts) {
      if (Number.isInteger(index) && index >= 0 && index < BUCKETS && count > 0) histogram.#counts[index]! += count;
    }
    histogram.count = data.count;
    histogram.#sumUs = data.sumUs;
    histogram.#sumSquaresUs = data.sumSquaresUs;
    histogram.#maxUs = data.maxUs;
    return histogram;
  }

  summary(): LatencyMs {
    return {
      p50: round3(this.#percentileUs(0.5) / 1000),
      p90: round3(this.#percentileUs(0.9) / 1000),
      p99: round3(this.#percentileUs(0.99) / 1000),
      p999: round3(this.#percentileUs(0.999) / 1000),
      p9999: round3(this.#percentileUs(0.9999) / 1000),
      max: round3(this.#maxUs / 1000),
      mean: round3(this.count === 0 ? 0 : this.#sumUs / this.count / 1000),
    };
  }

  #percentileUs(fraction: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(fraction * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddle(i), this.#maxUs);
    }
    return this.#maxUs;
  }

  /**
   * The histogram in HdrHistogram's percentile-distribution text format (what
   * `outputPercentileDistribution` prints and HdrHistogram's plotter reads), values in ms:
   * a line each time the cumulative count reaches the next reporting level, the levels halving
   * their distance to 100% with `ticksPerHalf` lines per half.
   */
  percentileDistribution(ticksPerHalf = 5): string {
    const lines = [
      `${"Value".padStart(12)} ${"Percentile".padStart(14)} ${"TotalCount".padStart(10)} 1/(1-Percentile)`,
      "",
    ];
    const total = this.count;
    const row = (valueUs: number, level: number, cumulative: number, last: boolean) => {
      const value = (valueUs / 1000).toFixed(3).padStart(12);
      const percentile = (level / 100).toFixed(12).padStart(14);
      const count = String(cumulative).padStart(10);
      lines.push(
        last
          ? `${value} ${percentile} ${count}`
          : `${value} ${percentile} ${count} ${(1 / (1 - level / 100)).toFixed(2).padStart(14)}`,
      );
    };
    if (total > 0) {
      let level = 0;
      let cumulative = 0;
      let lastIndex = 0;
      for (let i = 0; i < BUCKETS; i++) if (this.#counts[i]! > 0) lastIndex = i;
      for (let i = 0; i <= lastIndex && level < 100; i++) {
        if (this.#counts[i] === 0) continue;
        cumulative += this.#counts[i]!;
        const value = Math.min(bucketHighest(i), this.#maxUs);
        if (i === lastIndex) {
          row(value, level, cumulative, false);
          break;
        }
        while ((100 * cumulative) / total >= level && level < 100) {
          row(value, level, cumulative, false);
          const ticks = ticksPerHalf * 2 ** (Math.floor(Math.log2(100 / (100 - level))) + 1);
          level += 100 / ticks;
        }
      }
      // The last recorded value reaches 100%.
      row(this.#maxUs, 100, total, true);
    }
    const mean = total === 0 ? 0 : this.#sumUs / total;
    const variance = total === 0 ? 0 : Math.max(0, this.#sumSquaresUs / total - mean * mean);
    const field = (n: number) => (n / 1000).toFixed(3).padStart(12);
    lines.push(`#[Mean    = ${field(mean)}, StdDeviation   = ${field(Math.sqrt(variance))}]`);
    lines.push(`#[Max     = ${field(this.#maxUs)}, Total count    = ${String(total).padStart(12)}]`);
    lines.push(`#[Buckets = ${String(31 - SUB_BITS).padStart(12)}, SubBuckets     = ${String(LINEAR).padStart(12)}]`);
    return lines.join("\n") + "\n";
  }
}

function bucketOf(us: number): number {
  if (us < LINEAR) return us;
  const shift = 31 - Math.clz32(us) - SUB_BITS;
  return LINEAR + (shift - 1) * SUB + ((us >>> shift) - SUB);
}

function bucketLow(index: number): { low: number; width: number } {
  if (index < LINEAR) return { low: index, width: 1 };
  const shift = Math.floor((index - LINEAR) / SUB) + 1;
  const top = SUB + ((index - LINEAR) % SUB);
  return { low: top * 2 ** shift, width: 2 ** shift };
}

function bucketMiddle(index: number): number {
  const { low, width } = bucketLow(index);
  return width === 1 ? low : low + width / 2;
}

/** The highest value a bucket holds (HdrHistogram reports this "highest equivalent value"). */
function bucketHighest(index: number): number {
  const { low, width } = bucketLow(index);
  return low + width - 1;
}

export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
