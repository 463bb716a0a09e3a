/**
 * A bench run's tally: operations, bytes, errors and mismatches, the latency histograms (the
 * interval's, merged into the run's at each interval's end), and the interval and final reports.
 *
 * @module
 */

import { errorMessage } from "../log.ts";
import type { Settings } from "./options.ts";
import type { BenchInterval, BenchReport } from "./report.ts";
import { Histogram, round3 } from "./_histogram.ts";
import { Mismatch } from "./_verify.ts";

/** Counts what a run did; the clock starts at {@linkcode BenchTally.startClock}. */
export class BenchTally {
  readonly #rated: boolean;
  readonly #total = new Histogram();
  readonly #interval = new Histogram();
  readonly #totalUncorrected = new Histogram();
  readonly #intervalUncorrected = new Histogram();
  #operations = 0;
  #bytes = 0;
  #errors = 0;
  #mismatches = 0;
  #firstError: string | undefined;
  #firstMismatch: string | undefined;
  #opened = 0;
  #open = 0;
  #startedAt = 0;
  #intervalBase = { at: 0, operations: 0, bytes: 0, errors: 0, mismatches: 0 };

  /** `rated`: the run has a rate, so latency is also counted from when each operation was sent. */
  constructor(rated: boolean) {
    this.#rated = rated;
  }

  /** The run's latencies (complete after {@linkcode BenchTally.report}). */
  get latency(): Histogram {
    return this.#total;
  }

  /** The run's latencies counted from when each operation was sent, under a rate. */
  get uncorrected(): Histogram | undefined {
    return this.#rated ? this.#totalUncorrected : undefined;
  }

  /** Milliseconds since the current interval began. */
  get intervalMs(): number {
    return performance.now() - this.#intervalBase.at;
  }

  startClock(): void {
    this.#startedAt = performance.now();
    this.#intervalBase.at = this.#startedAt;
  }

  /** A connection was opened; `closed` settles when it closes. */
  opened(closed: Promise<unknown>): void {
    this.#opened++;
    this.#open++;
    closed.then(() => this.#open--);
  }

  interval(): BenchInterval {
    const now = performance.now();
    const base = this.#intervalBase;
    const seconds = (now - base.at) / 1000;
    const operations = this.#operations - base.operations;
    const interval: BenchInterval = {
      elapsedS: round3((now - this.#startedAt) / 1000),
      intervalS: round3(seconds),
      operations,
      opsPerS: round3(operations / seconds),
      throughputMBps: round3((this.#bytes - base.bytes) / seconds / 1e6),
      latencyMs: this.#interval.summary(),
      errors: this.#errors - base.errors,
      mismatches: this.#mismatches - base.mismatches,
      connections: this.#open,
    };
    this.#total.merge(this.#interval);
    this.#interval.reset();
    this.#totalUncorrected.merge(this.#intervalUncorrected);
    this.#intervalUncorrected.reset();
    this.#intervalBase = {
      at: now,
      operations: this.#operations,
      bytes: this.#bytes,
      errors: this.#errors,
      mismatches: this.#mismatches,
    };
    return interval;
  }

  report(s: Settings): BenchReport {
    this.#total.merge(this.#interval);
    this.#interval.reset();
    this.#totalUncorrected.merge(this.#intervalUncorrected);
    this.#intervalUncorrected.reset();
    const seconds = Math.max(performance.now() - this.#startedAt, 1e-3) / 1000;
    const report: BenchReport = {
      mode: s.mode,
      target: s.target,
      operation: s.mode === "pingpong"
        ? "round trip"
        : s.mode === "stream"
        ? "block"
        : s.knock
        ? "knock"
        : "connection",
      conns: s.conns,
      sizeBytes: s.size,
      prefix: s.knock ? "" : new TextDecoder().decode(s.prefix),
      rateLimitPerS: s.rate ?? null,
      durationS: round3(seconds),
      operations: this.#operations,
      opsPerS: round3(this.#operations / seconds),
      bytesEchoed: this.#bytes,
      throughputMBps: round3(this.#bytes / seconds / 1e6),
      latencyMs: this.#total.summary(),
      uncorrectedLatencyMs: s.rate === undefined ? null : this.#totalUncorrected.summary(),
      workers: 1,
      errors: this.#errors,
      mismatches: this.#mismatches,
      connectionsOpened: this.#opened,
    };
    if (this.#firstError !== undefined) report.firstError = this.#firstError;
    if (this.#firstMismatch !== undefined) report.firstMismatch = this.#firstMismatch;
    return report;
  }

  /**
   * Counts an operation done now: sent at `sent`, due at `due` by its schedule (the same
   * without a rate). Latency counts from `due`; from `sent` too, under a rate.
   */
  done(due: number, sent: number, bytes: number): void {
    const now = performance.now();
    this.#operations++;
    this.#bytes += bytes;
    this.#interval.record(now - due);
    if (this.#rated) this.#intervalUncorrected.record(now - sent);
  }

  error(error: unknown): void {
    if (error instanceof Mismatch) {
      this.#mismatches++;
      this.#firstMismatch ??= error.message;
      return;
    }
    this.#errors++;
    this.#firstError ??= errorMessage(error);
  }
}
