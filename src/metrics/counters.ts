/**
 * A server's counters as plain data: what `EchogateServer.counters()` returns, what a worker sends
 * its supervisor, and what the supervisor sums. Kept as numbers in fixed-shape objects so that
 * counting is an addition and a snapshot is a copy.
 *
 * @module
 */

import type { DatagramEchoStats } from "../echo/datagram.ts";

/**
 * Why a connection was closed at admission, as the `reason` label says it.
 *
 * @example
 * ```ts
 * import { REFUSAL_REASONS } from "./counters.ts";
 *
 * REFUSAL_REASONS.includes("penalized"); // true
 * ```
 */
export const REFUSAL_REASONS = [
  "max_conns",
  "shutting_down",
  "penalized",
  "max_pending",
  "max_pending_per_source",
  "untrusted_proxy",
  "proxy_header",
  "proxy_pending",
  "out_of_fds",
  "other",
] as const;

/**
 * One of {@linkcode REFUSAL_REASONS}.
 *
 * @example
 * ```ts
 * import type { RefusalReason } from "./counters.ts";
 *
 * const reason: RefusalReason = "max_conns";
 * ```
 */
export type RefusalReason = typeof REFUSAL_REASONS[number];

/**
 * A UDP echo server's datagram counters (`DatagramEchoStats`: each field says what it counts).
 *
 * @example
 * ```ts
 * import type { DatagramCounters } from "./counters.ts";
 *
 * const dropped = (d: DatagramCounters) => d.received - d.answered;
 * ```
 */
export type DatagramCounters = DatagramEchoStats;

/**
 * Everything a server counts since it started. Counters only go up; `open` and
 * `penalizedSources` are gauges.
 *
 * @example
 * ```ts
 * import type { ServerCounters } from "./counters.ts";
 *
 * const refusedTotal = (c: ServerCounters) => Object.values(c.refused).reduce((a, b) => a + b, 0);
 * ```
 */
export interface ServerCounters {
  /** Connections accepted and served (refused ones are counted in `refused` instead). */
  accepted: number;
  /** Connections open now. */
  open: number;
  /** Bytes read from peers (after TLS and any PROXY header). */
  receivedBytes: number;
  /** Bytes written to peers. */
  sentBytes: number;
  /** Connections closed at admission, by reason. */
  refused: Record<RefusalReason, number>;
  /** Failed TLS handshakes: timed out, or failed otherwise. */
  tlsHandshakeFailures: { timeout: number; failed: number };
  /** The gate's knocks, by outcome. */
  knocks?: { welcome: number; refused: number; timeout: number };
  /** The gate's sources with a penalty on record. */
  penalizedSources?: number;
  /** A UDP server's datagrams. */
  datagrams?: DatagramCounters;
}

/**
 * Counters at zero.
 *
 * @example
 * ```ts
 * import { newServerCounters } from "./counters.ts";
 *
 * const counters = newServerCounters();
 * counters.accepted++;
 * ```
 */
export function newServerCounters(): ServerCounters {
  return {
    accepted: 0,
    open: 0,
    receivedBytes: 0,
    sentBytes: 0,
    refused: Object.fromEntries(REFUSAL_REASONS.map((reason) => [reason, 0])) as Record<RefusalReason, number>,
    tlsHandshakeFailures: { timeout: 0, failed: 0 },
  };
}

/**
 * The `reason` label of an admission refusal's logged reason (the log keeps the full sentence).
 *
 * @example
 * ```ts
 * import { refusalReason } from "./counters.ts";
 *
 * refusalReason("100 connections open"); // "max_conns"
 * ```
 */
export function refusalReason(reason: string): RefusalReason {
  if (reason === "penalised") return "penalized";
  if (reason === "shutting down") return "shutting_down";
  if (reason.endsWith(" connections open")) return "max_conns";
  if (reason.endsWith(" from this source waiting for a token")) return "max_pending_per_source";
  if (reason.endsWith(" waiting for a token")) return "max_pending";
  if (reason.startsWith("not a trusted proxy")) return "untrusted_proxy";
  if (reason.includes(" waiting for a PROXY header")) return "proxy_pending";
  return "other";
}

/**
 * Adds `from` into `into`, counter by counter (gauges too: the sum over workers).
 *
 * @example
 * ```ts
 * import { addCounters, newServerCounters } from "./counters.ts";
 *
 * const total = newServerCounters();
 * addCounters(total, { ...newServerCounters(), accepted: 2 });
 * ```
 */
export function addCounters(into: ServerCounters, from: ServerCounters): ServerCounters {
  into.accepted += from.accepted;
  into.open += from.open;
  into.receivedBytes += from.receivedBytes;
  into.sentBytes += from.sentBytes;
  for (const reason of REFUSAL_REASONS) into.refused[reason] += from.refused[reason];
  into.tlsHandshakeFailures.timeout += from.tlsHandshakeFailures.timeout;
  into.tlsHandshakeFailures.failed += from.tlsHandshakeFailures.failed;
  if (from.knocks) {
    into.knocks ??= { welcome: 0, refused: 0, timeout: 0 };
    for (const key of ["welcome", "refused", "timeout"] as const) into.knocks[key] += from.knocks[key];
  }
  if (from.penalizedSources !== undefined) into.penalizedSources = (into.penalizedSources ?? 0) + from.penalizedSources;
  if (from.datagrams) {
    const sum = into.datagrams ??= Object.fromEntries(
      DATAGRAM_KEYS.map((key) => [key, 0]),
    ) as unknown as DatagramCounters;
    for (const key of DATAGRAM_KEYS) sum[key] += from.datagrams[key];
  }
  return into;
}

const DATAGRAM_KEYS: readonly (keyof DatagramCounters)[] = [
  "received",
  "answered",
  "refusedPort",
  "tooBig",
  "rateLimited",
  "overBudget",
  "sendBufferFull",
  "sendErrors",
  "portUnreachable",
  "receivedBytes",
  "sentBytes",
];

/**
 * Reads counters from an untrusted value (a worker's message): every field a finite number from
 * 0, no other keys; `undefined` if anything is off.
 *
 * @example
 * ```ts
 * import { newServerCounters, parseCounters } from "./counters.ts";
 *
 * parseCounters(JSON.parse(JSON.stringify(newServerCounters()))); // the counters
 * parseCounters({ accepted: -1 }); // undefined
 * ```
 */
export function parseCounters(value: unknown): ServerCounters | undefined {
  if (!isRecord(value)) return undefined;
  const allowed = ["accepted", "open", "receivedBytes", "sentBytes", "refused", "tlsHandshakeFailures"];
  const optional = ["knocks", "penalizedSources", "datagrams"];
  if (!Object.keys(value).every((key) => allowed.includes(key) || optional.includes(key))) return undefined;
  const counters = newServerCounters();
  for (const key of ["accepted", "open", "receivedBytes", "sentBytes"] as const) {
    if (!isCount(value[key])) return undefined;
    counters[key] = value[key];
  }
  const refused = numbers(value.refused, REFUSAL_REASONS);
  const tls = numbers(value.tlsHandshakeFailures, ["timeout", "failed"] as const);
  if (!refused || !tls) return undefined;
  counters.refused = refused;
  counters.tlsHandshakeFailures = tls;
  if (value.knocks !== undefined) {
    const knocks = numbers(value.knocks, ["welcome", "refused", "timeout"] as const);
    if (!knocks) return undefined;
    counters.knocks = knocks;
  }
  if (value.penalizedSources !== undefined) {
    if (!isCount(value.penalizedSources)) return undefined;
    counters.penalizedSources = value.penalizedSources;
  }
  if (value.datagrams !== undefined) {
    const datagrams = numbers(value.datagrams, DATAGRAM_KEYS);
    if (!datagrams) return undefined;
    counters.datagrams = datagrams;
  }
  return counters;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}

/** An object with exactly `keys`, each a count; `undefined` otherwise. */
function numbers<K extends string>(value: unknown, keys: readonly K[]): Record<K, number> | undefined {
  if (!isRecord(value)) return undefined;
  const names = Object.keys(value);
  if (names.length !== keys.length || !keys.every((key) => isCount(value[key]))) return undefined;
  return Object.fromEntries(keys.map((key) => [key, value[key]])) as Record<K, number>;
}
