/**
 * Merging the runs of several load generator processes (`echogate bench --workers`) into one
 * report: counts add up, rates add up (each worker's over its own measured window), and the
 * latency histograms are merged bucket by bucket, so percentiles are those of every operation.
 *
 * @module
 */

import { Histogram, type HistogramData } from "./_histogram.ts";
import type { BenchReport } from "./report.ts";
import type { DetailedRun } from "./run.ts";

/** A run as plain data, to pass between processes. */
export interface RunData {
  report: BenchReport;
  latency: HistogramData;
  uncorrected: HistogramData | null;
}

/** A run as plain data. */
export function runToData(run: DetailedRun): RunData {
  return { report: run.report, latency: run.latency.toData(), uncorrected: run.uncorrected?.toData() ?? null };
}

/** Rebuilds a run from its data. */
export function runFromData(data: RunData): DetailedRun {
  return {
    report: data.report,
    latency: Histogram.fromData(data.latency),
    uncorrected: data.uncorrected ? Histogram.fromData(data.uncorrected) : undefined,
  };
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

/** Merges the runs of several workers against one target into one. */
export function mergeRuns(runs: readonly DetailedRun[]): DetailedRun {
  if (runs.length === 0) throw new RangeError("No run to merge");
  const latency = new Histogram();
  let uncorrected: Histogram | undefined;
  for (const run of runs) {
    latency.merge(run.latency);
    if (run.uncorrected) (uncorrected ??= new Histogram()).merge(run.uncorrected);
  }
  const first = runs[0]!.report;
  const sum = (field: "operations" | "bytesEchoed" | "errors" | "mismatches" | "connectionsOpened" | "conns") =>
    runs.reduce((total, run) => total + run.report[field], 0);
  const rates = runs.map((run) => run.report.rateLimitPerS);
  const report: BenchReport = {
    ...first,
    conns: sum("conns"),
    rateLimitPerS: rates.every((rate) => rate !== null) ? round3(rates.reduce((a, b) => a! + b!, 0)!) : null,
    durationS: Math.max(...runs.map((run) => run.report.durationS)),
    operations: sum("operations"),
    opsPerS: round3(runs.reduce((total, run) => total + run.report.opsPerS, 0)),
    bytesEchoed: sum("bytesEchoed"),
    throughputMBps: round3(runs.reduce((total, run) => total + run.report.throughputMBps, 0)),
    latencyMs: latency.summary(),
    uncorrectedLatencyMs: uncorrected ? uncorrected.summary() : null,
    workers: runs.reduce((total, run) => total + run.report.workers, 0),
    errors: sum("errors"),
    mismatches: sum("mismatches"),
    connectionsOpened: sum("connectionsOpened"),
  };
  delete report.firstError;
  delete report.firstMismatch;
  const firstError = runs.find((run) => run.report.firstError !== undefined)?.report.firstError;
  const firstMismatch = runs.find((run) => run.report.firstMismatch !== undefined)?.report.firstMismatch;
  if (firstError !== undefined) report.firstError = firstError;
  if (firstMismatch !== undefined) report.firstMismatch = firstMismatch;
  return { report, latency, uncorrected };
}
