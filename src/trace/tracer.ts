/**
 * The tracer servers and clients report steps to, and the sink it hands them on to.
 *
 * @module
 */

import type { TraceEvent, TraceRecord } from "./events.ts";

/**
 * Where stamped steps go: the CLI renders each to a line on standard error. Must not throw, and
 * must not block: the CLI's output is bounded and drops lines a slow reader cannot take.
 *
 * @example
 * ```ts
 * import type { TraceSink } from "./mod.ts";
 *
 * const records: unknown[] = [];
 * const sink: TraceSink = (record) => void records.push(record);
 * ```
 */
export type TraceSink = (record: TraceRecord) => void;

/**
 * What servers and clients call, once per step. Tracing is off where there is no tracer: the
 * untraced code paths never see one (see {@linkcode traceTransport}).
 *
 * @example
 * ```ts
 * import { createTracer } from "./mod.ts";
 *
 * const tracer = createTracer((record) => console.log(record.step, record.conn));
 * const conn = tracer.connection();
 * tracer.trace({ step: "close", conn });
 * ```
 */
export interface Tracer {
  /** Numbers a new connection: 1, 2, … (0 is the listening or UDP socket). */
  connection(): number;
  /** Reports a step; the tracer stamps it with the time since it started. */
  trace(event: TraceEvent): void;
}

/** Options for {@linkcode createTracer}. */
export interface CreateTracerOptions {
  /** The clock, in ms. @default {() => performance.now()} */
  now?: () => number;
}

/**
 * Creates a tracer that stamps each step with the ms since its creation and hands it to `sink`.
 *
 * @param sink Where stamped steps go.
 * @param options The clock.
 * @returns The tracer.
 *
 * @example
 * ```ts
 * import { createTracer } from "./mod.ts";
 *
 * let clock = 0;
 * const tracer = createTracer((record) => console.log(record.ms), { now: () => clock });
 * clock = 2.5;
 * tracer.trace({ step: "socket", conn: 0 }); // 2.5
 * ```
 */
export function createTracer(sink: TraceSink, options: CreateTracerOptions = {}): Tracer {
  const now = options.now ?? (() => performance.now());
  const start = now();
  let connections = 0;
  return {
    connection: () => ++connections,
    trace(event) {
      try {
        sink({ ...event, ms: now() - start });
      } catch {
        // A trace must never take a server down.
      }
    },
  };
}
