/**
 * A server's counters and its process' facts as Prometheus metric families, and the fetch-style
 * handler that serves them at `GET /metrics`.
 *
 * @module
 */

import type { HttpHandler } from "../types.ts";
import type { ServerCounters } from "./counters.ts";
import { type MetricFamily, METRICS_CONTENT_TYPE, MetricsBuilder } from "./exposition.ts";

/**
 * What a process knows about itself, from its runtime adapter (each field where the runtime can
 * tell, e.g. from Linux /proc).
 *
 * @example
 * ```ts
 * import type { ProcessFacts } from "./server_metrics.ts";
 *
 * const facts: ProcessFacts = { residentMemoryBytes: 50e6, cpuSeconds: 1.5, openFds: 12 };
 * ```
 */
export interface ProcessFacts {
  /** Resident set size in bytes. */
  residentMemoryBytes?: number;
  /** User and system CPU time in seconds. */
  cpuSeconds?: number;
  /** Open file descriptors. */
  openFds?: number;
}

/**
 * The metric families of a server's counters (and of its process, when given).
 *
 * @param counters What the server counted (summed over workers under a supervisor).
 * @param facts The process' facts; with workers, their sum plus the supervisor's.
 * @returns The families, for {@linkcode renderMetrics}.
 *
 * @example
 * ```ts
 * import { newServerCounters } from "./counters.ts";
 * import { renderMetrics } from "./exposition.ts";
 * import { serverMetrics } from "./server_metrics.ts";
 *
 * const text = renderMetrics(serverMetrics(newServerCounters()));
 * ```
 */
export function serverMetrics(counters: ServerCounters, facts?: ProcessFacts): MetricFamily[] {
  const m = new MetricsBuilder()
    .counter("echogate_connections_accepted_total", "Connections accepted and served", counters.accepted)
    .gauge("echogate_connections_open", "Connections open now", counters.open)
    .counter("echogate_received_bytes_total", "Bytes received from peers", counters.receivedBytes)
    .counter("echogate_sent_bytes_total", "Bytes sent to peers", counters.sentBytes)
    .counter(
      "echogate_refused_connections_total",
      "Connections closed at admission, by reason",
      labelled("reason", counters.refused),
    )
    .counter(
      "echogate_tls_handshake_failures_total",
      "TLS handshakes that failed or timed out",
      labelled("reason", counters.tlsHandshakeFailures),
    );
  if (counters.knocks) {
    m.counter("echogate_knocks_total", "Knocks on the gate, by outcome", labelled("result", counters.knocks));
  }
  if (counters.penalizedSources !== undefined) {
    m.gauge("echogate_penalized_sources", "Sources with a penalty on record", counters.penalizedSources);
  }
  const d = counters.datagrams;
  if (d) {
    m.counter("echogate_datagrams_received_total", "UDP datagrams received", d.received)
      .counter("echogate_datagrams_answered_total", "UDP datagrams answered", d.answered)
      .counter("echogate_datagrams_dropped_total", "UDP datagrams dropped, by reason", [
        { labels: { reason: "refused_port" }, value: d.refusedPort },
        { labels: { reason: "too_big" }, value: d.tooBig },
        { labels: { reason: "rate_limited" }, value: d.rateLimited },
        { labels: { reason: "over_budget" }, value: d.overBudget },
        { labels: { reason: "send_buffer_full" }, value: d.sendBufferFull },
        { labels: { reason: "port_unreachable" }, value: d.portUnreachable },
      ])
      .counter("echogate_datagram_send_errors_total", "UDP sends that failed, and socket errors", d.sendErrors);
  }
  if (facts?.residentMemoryBytes !== undefined) {
    m.gauge("process_resident_memory_bytes", "Resident memory size in bytes", facts.residentMemoryBytes);
  }
  if (facts?.cpuSeconds !== undefined) {
    m.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds", facts.cpuSeconds);
  }
  if (facts?.openFds !== undefined) {
    m.gauge("process_open_fds", "Number of open file descriptors", facts.openFds);
  }
  return m.families;
}

function labelled(label: string, values: Readonly<Record<string, number>>): MetricFamily["samples"] {
  return Object.entries(values).map(([value, count]) => ({ labels: { [label]: value }, value: count }));
}

/**
 * The metrics endpoint's handler: `GET /metrics` (or `HEAD`) renders `render()`; another method
 * there is a 405, any other path a 404. The request's body is never read.
 *
 * @param render Builds the exposition when scraped.
 * @returns A fetch-style handler for `Transport.serveHttp`.
 *
 * @example
 * ```ts ignore
 * const http = await transport.serveHttp!({ hostname: "127.0.0.1", port: 9464 }, createMetricsHandler(() => "up 1\n"));
 * ```
 */
export function createMetricsHandler(render: () => string | Promise<string>): HttpHandler {
  return async (request) => {
    const path = new URL(request.url).pathname;
    if (path !== "/metrics") {
      return new Response("404 not found: metrics are at /metrics\n", { status: 404, headers: TEXT });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("405 method not allowed\n", { status: 405, headers: { ...TEXT, allow: "GET, HEAD" } });
    }
    const body = await render();
    return new Response(request.method === "HEAD" ? null : body, { headers: { "content-type": METRICS_CONTENT_TYPE } });
  };
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
