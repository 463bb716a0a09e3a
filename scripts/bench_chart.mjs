// The chart's functions, for test/bench_chart.test.ts, which imports them from this path: the
// script is scripts/bench/chart.mjs (run that one).

export * from "./bench/chart.mjs";
