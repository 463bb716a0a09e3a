// `--metrics HOST:PORT`: a separate HTTP listener that serves GET /metrics for a server (or, under
// a supervisor, the sum of its workers), in Prometheus' text format.

import { UsageError } from "../errors.ts";
import { type ProcessFacts, type ServerCounters, serverMetrics } from "../metrics/mod.ts";
import { createMetricsHandler, renderMetrics } from "../metrics/mod.ts";
import type { HttpServer } from "../types.ts";
import { parsePort } from "./args.ts";
import { type Options, str } from "./command.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/** The --metrics flag of `echo serve` and `gate serve`. */
export const METRICS_FLAG: Flag = {
  name: "metrics",
  value: "HOST:PORT",
  help: `Serve Prometheus metrics at http://HOST:PORT/metrics, a listener of its own
([::1]:PORT for IPv6; off by default). With --workers, the sum of the workers`,
};

/** Reads --metrics: `HOST:PORT` or `[v6]:PORT`; undefined when absent. */
export function metricsOption(host: CliHost, options: Options): { hostname: string; port: number } | undefined {
  const value = str(options, "metrics");
  if (value === undefined) return undefined;
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]\s]+)):(\d+)$/.exec(value);
  if (!match) throw new UsageError(`Invalid value for "--metrics": "${value}" is not HOST:PORT (or [IPv6]:PORT)`);
  if (!host.transport.serveHttp) throw new UsageError(`"--metrics" is not available on this runtime`);
  return { hostname: match[1] ?? match[2]!, port: parsePort("metrics", match[3]!) };
}

/**
 * Starts the metrics listener; `collect` gives the counters and process facts when scraped.
 * Prints where it listens (the real port when 0 was asked for).
 */
export async function serveMetrics(
  host: CliHost,
  endpoint: { hostname: string; port: number },
  collect: () => Promise<{ counters: ServerCounters; process?: ProcessFacts }>,
  announce: (address: string) => void,
): Promise<HttpServer> {
  const http = await host.transport.serveHttp!(
    endpoint,
    createMetricsHandler(async () => {
      const { counters, process } = await collect();
      return renderMetrics(serverMetrics(counters, process));
    }),
    METRICS_LIMITS,
  );
  const { hostname, port } = http.addr as { hostname: string; port: number };
  announce(`${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`);
  return http;
}

/**
 * The metrics listener's limits: a scraper needs one connection, a small request, and an answer
 * within seconds; anything beyond is a misbehaving peer, and the service port never sees it.
 */
export const METRICS_LIMITS = { maxConnections: 16, maxRequestBytes: 16_384, idleTimeoutMs: 10_000 } as const;

/** The sum of the processes' facts (a supervisor and its workers), each field where all tell it. */
export function sumFacts(facts: readonly (ProcessFacts | undefined)[]): ProcessFacts {
  const sum: ProcessFacts = {};
  for (const key of ["residentMemoryBytes", "cpuSeconds", "openFds"] as const) {
    const values = facts.map((fact) => fact?.[key]);
    if (values.every((value) => value !== undefined)) sum[key] = values.reduce((a, b) => a! + b!, 0);
  }
  return sum;
}
