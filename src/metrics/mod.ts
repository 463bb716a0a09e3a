/**
 * Prometheus metrics: the text exposition format, a server's counters, and the `/metrics` handler.
 *
 * @example
 * ```ts
 * import { newServerCounters, renderMetrics, serverMetrics } from "./mod.ts";
 *
 * console.log(renderMetrics(serverMetrics(newServerCounters())));
 * ```
 *
 * @module
 */

export * from "./exposition.ts";
export * from "./counters.ts";
export { createMetricsHandler, type ProcessFacts, serverMetrics } from "./server_metrics.ts";
