/**
 * Prometheus' text exposition format (0.0.4): metric families of counters and gauges, with
 * labels, rendered with HELP and TYPE lines and escaped label values. Shared by the servers'
 * `--metrics` endpoint and `echogate faults`' /metrics.
 *
 * @module
 */

/**
 * The media type of the text format.
 *
 * @example
 * ```ts
 * import { METRICS_CONTENT_TYPE } from "./exposition.ts";
 *
 * const response = new Response("up 1\n", { headers: { "content-type": METRICS_CONTENT_TYPE } });
 * ```
 */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A sample's labels: name to value. Names must match `[a-zA-Z_][a-zA-Z0-9_]*`.
 *
 * @example
 * ```ts
 * import type { MetricLabels } from "./exposition.ts";
 *
 * const labels: MetricLabels = { reason: "max_conns" };
 * ```
 */
export type MetricLabels = Readonly<Record<string, string>>;

/**
 * One metric family: its samples share a name, a type and a help text.
 *
 * @example
 * ```ts
 * import type { MetricFamily } from "./exposition.ts";
 *
 * const up: MetricFamily = { name: "up", type: "gauge", help: "Whether it runs", samples: [{ value: 1 }] };
 * ```
 */
export interface MetricFamily {
  /** The metric name, such as `echogate_connections_accepted_total`. */
  readonly name: string;
  /** `counter` (only goes up) or `gauge`. */
  readonly type: "counter" | "gauge";
  /** One line saying what it counts. */
  readonly help: string;
  /** Its samples, one per label set. */
  readonly samples: readonly { readonly labels?: MetricLabels; readonly value: number }[];
}

/**
 * Collects metric families in order, to be rendered with {@linkcode renderMetrics}.
 *
 * @example
 * ```ts
 * import { MetricsBuilder, renderMetrics } from "./exposition.ts";
 *
 * const metrics = new MetricsBuilder();
 * metrics.counter("jobs_total", "Jobs done", 3);
 * metrics.gauge("queue_length", "Jobs waiting", [{ labels: { queue: "a" }, value: 2 }]);
 * console.log(renderMetrics(metrics.families));
 * ```
 */
export class MetricsBuilder {
  /** The families added so far. */
  readonly families: MetricFamily[] = [];

  /** Adds a counter: one value, or samples with labels. */
  counter(name: string, help: string, value: number | MetricFamily["samples"]): this {
    return this.#add(name, "counter", help, value);
  }

  /** Adds a gauge: one value, or samples with labels. */
  gauge(name: string, help: string, value: number | MetricFamily["samples"]): this {
    return this.#add(name, "gauge", help, value);
  }

  #add(name: string, type: MetricFamily["type"], help: string, value: number | MetricFamily["samples"]): this {
    this.families.push({ name, type, help, samples: typeof value === "number" ? [{ value }] : value });
    return this;
  }
}

/**
 * Renders families in the text format: `# HELP` and `# TYPE` lines, then one line per sample,
 * label names sorted, label values escaped (`\\`, `\"`, `\n`), help texts escaped (`\\`, `\n`).
 *
 * @param families What to render.
 * @returns The exposition, ending with a newline.
 *
 * @example
 * ```ts
 * import { renderMetrics } from "./exposition.ts";
 *
 * const text = renderMetrics([{
 *   name: "up",
 *   type: "gauge",
 *   help: "Whether it runs",
 *   samples: [{ labels: { job: 'a "b"' }, value: 1 }],
 * }]);
 * // # HELP up Whether it runs\n# TYPE up gauge\nup{job="a \"b\""} 1\n
 * ```
 */
export function renderMetrics(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const { name, type, help, samples } of families) {
    lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const { labels, value } of samples) {
      const names = labels ? Object.keys(labels).sort() : [];
      const text = names.map((label) => `${label}="${escapeLabelValue(labels![label]!)}"`).join(",");
      lines.push(`${name}${text === "" ? "" : `{${text}}`} ${formatValue(value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

/**
 * Escapes a label value for the text format: backslash, double quote and line feed.
 *
 * @example
 * ```ts
 * import { escapeLabelValue } from "./exposition.ts";
 *
 * escapeLabelValue('say "hi"\n'); // say \"hi\"\n
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => c === "\n" ? "\\n" : "\\\\");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
