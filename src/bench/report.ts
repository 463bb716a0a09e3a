/**
 * What a run reports: the whole run ({@linkcode BenchReport}) and each interval
 * ({@linkcode BenchInterval}), with latency percentiles ({@linkcode LatencyMs}).
 *
 * @module
 */

import type { BenchMode } from "./options.ts";

/**
 * Latency percentiles, in milliseconds (from a histogram exact below 0.512 ms and within 0.4%
 * above; `max` and `mean` are exact to the microsecond).
 *
 * @example
 * ```ts
 * import type { LatencyMs } from "./mod.ts";
 *
 * const latency: LatencyMs = { p50: 0.21, p90: 0.5, p99: 1.3, p999: 2.2, p9999: 3.9, max: 4.02, mean: 0.25 };
 * ```
 */
export interface LatencyMs {
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** 99.99th percentile. */
  p9999: number;
  /** Slowest. */
  max: number;
  /** Average. */
  mean: number;
}

/**
 * The figures of one interval of a run (the `--json-stream` objects).
 *
 * @example
 * ```ts
 * import type { BenchInterval } from "./mod.ts";
 *
 * function show(interval: BenchInterval): string {
 *   return `${interval.elapsedS.toFixed(0)} s: ${interval.opsPerS.toFixed(0)} ops/s`;
 * }
 * ```
 */
export interface BenchInterval {
  /** Seconds since measuring began, at the end of this interval. */
  elapsedS: number;
  /** Length of this interval, in seconds. */
  intervalS: number;
  /** Operations completed in this interval. */
  operations: number;
  /** Operations per second in this interval. */
  opsPerS: number;
  /** Payload megabytes (10^6 bytes) echoed back per second in this interval. */
  throughputMBps: number;
  /** Latency of this interval's operations. */
  latencyMs: LatencyMs;
  /** Errors in this interval. */
  errors: number;
  /** Mismatched replies in this interval. */
  mismatches: number;
  /** Connections open at the end of this interval. */
  connections: number;
}

/**
 * The outcome of a run (the `--json` object).
 *
 * @example
 * ```ts
 * import type { BenchReport } from "./mod.ts";
 *
 * function ok(report: BenchReport): boolean {
 *   return report.errors === 0 && report.mismatches === 0 && report.operations > 0;
 * }
 * ```
 */
export interface BenchReport {
  /** The mode that ran. */
  mode: BenchMode;
  /** The server, printable: `127.0.0.1:50007` or `unix:/path`. */
  target: string;
  /** What one operation is: `"round trip"`, `"block"`, `"connection"` or `"knock"`. */
  operation: string;
  /** Connections (or concurrent exchanges in `connect` mode). */
  conns: number;
  /** Message size, or bytes in flight per connection in `stream` mode. */
  sizeBytes: number;
  /** The prefix expected before each answer (decoded as UTF-8); empty for a knock. */
  prefix: string;
  /** The pace cap in operations per second, or `null` when uncapped. */
  rateLimitPerS: number | null;
  /** Seconds measured. */
  durationS: number;
  /** Operations completed and verified. */
  operations: number;
  /** Operations per second. */
  opsPerS: number;
  /** Payload bytes echoed back and verified (prefixes not counted). */
  bytesEchoed: number;
  /** Payload megabytes (10^6 bytes) echoed back per second. */
  throughputMBps: number;
  /**
   * Latency of each operation: a round trip, a block's echo, or a whole connection. Under a
   * rate, measured from when the operation was due by the schedule, not from when it was sent,
   * so time spent waiting behind a slow reply counts (coordinated omission corrected, as wrk2).
   */
  latencyMs: LatencyMs;
  /** Under a rate: latency measured from when each operation was sent (not corrected); else `null`. */
  uncorrectedLatencyMs: LatencyMs | null;
  /** Worker processes the load was split over (1 without `workers`). */
  workers: number;
  /** Failed connects, resets, timeouts and early closes. */
  errors: number;
  /** Replies that differ from what was sent. */
  mismatches: number;
  /** The first error, if any. */
  firstError?: string;
  /** The first mismatch, described, if any. */
  firstMismatch?: string;
  /** Connections opened over the run. */
  connectionsOpened: number;
}
