/**
 * The messages between a `--workers` supervisor and its workers, and the checks each end applies
 * to every message it gets: a worker's come over its IPC channel, the supervisor's as control
 * lines on the worker's standard input. Nothing a peer sent can pass these checks as a message.
 *
 * @module
 */

import type { PenaltyKind } from "../gate/penalties.ts";
import { parseIp } from "../ip.ts";
import { parseCounters, type ProcessFacts, type ServerCounters } from "../metrics/mod.ts";

/**
 * Penalties the supervisor keeps to replay to a worker it starts again, so a restarted worker
 * knows the sources the others have penalised: the latest ones, for as long as a penalty can
 * last (600 s by default).
 */
export const MAX_REPLAY = 65_536;
export const REPLAY_MS = 600_000;
/** Marks a control line: on a worker's standard input, and a bench worker's output. */
export const CONTROL = "\u001e";

/** How far in the future a penalty's time may be (clocks read a moment apart). */
const MAX_AHEAD_MS = 60_000;

/** A penalty a worker gave (and the supervisor passes on to the others). */
export type Penalty = { t: "penalty"; address: string; kind: PenaltyKind; at: number };
/** What a worker tells its supervisor, over its IPC channel. */
export type WorkerMessage =
  | { t: "listening"; address: string; port?: number }
  | Penalty
  | { t: "draining"; connections: number } // a stopping worker's open connections
  | CountersMessage;
/** A worker's counters and process facts: asked for at each scrape, and sent once more at exit. */
export type CountersMessage = { t: "counters"; counters: ServerCounters; process: ProcessFacts };
/** What the supervisor tells a worker, as control lines on its standard input. */
export type SupervisorMessage =
  | Penalty
  | { t: "stop" }
  | { t: "reload" }
  | { t: "counters" } // send your counters now (a scrape of the supervisor's --metrics)
  | { t: "synced" }; // every penalty given before this worker started has been sent

const PENALTY_KINDS: readonly string[] = ["authfail", "grace-exceeded", "noauth"];

export function encode(message: SupervisorMessage): string {
  return `${CONTROL}${JSON.stringify(message)}\n`;
}

/** Whether `value` is a plain object (not null, not an array). */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An IP address in printable ASCII (an IPv6 zone allowed), as a penalty names its source. */
function isIpAddress(value: unknown): value is string {
  return typeof value === "string" && value.length <= 64 && /^[\x21-\x7e]+$/.test(value) &&
    parseIp(value) !== undefined;
}

function isPort(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** A penalty with a source's address, a known kind, and a time within the replay window (not ahead of now). */
function checkPenalty(value: Record<string, unknown>, now: number): Penalty | undefined {
  const { address, kind, at } = value;
  if (!isIpAddress(address) || typeof kind !== "string" || !PENALTY_KINDS.includes(kind)) return undefined;
  if (typeof at !== "number" || !Number.isFinite(at) || at < now - REPLAY_MS || at > now + MAX_AHEAD_MS) {
    return undefined;
  }
  return { t: "penalty", address, kind: kind as PenaltyKind, at };
}

/**
 * Checks a message from a worker: "listening" with the address it printed (`host:port`,
 * `[v6]:port`) and that port, or a penalty. Anything else is undefined.
 */
export function checkWorkerMessage(value: unknown, now: number): WorkerMessage | undefined {
  if (!isRecord(value)) return undefined;
  if (value.t === "penalty") return checkPenalty(value, now);
  if (value.t === "counters") return checkCounters(value);
  if (value.t === "draining") {
    const { connections } = value;
    return typeof connections === "number" && Number.isSafeInteger(connections) && connections >= 0
      ? { t: "draining", connections }
      : undefined;
  }
  if (value.t !== "listening") return undefined;
  const { address, port } = value;
  if (!isPort(port) || typeof address !== "string" || address.length > 300) return undefined;
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([0-9.]+)):(\d{1,5})$/.exec(address);
  if (!match || Number(match[3]) !== port || !isIpAddress(match[1] ?? match[2])) return undefined;
  return { t: "listening", address, port };
}

/** Counters that parse, and process facts that are counts (each may be missing). */
function checkCounters(value: Record<string, unknown>): CountersMessage | undefined {
  const counters = parseCounters(value.counters);
  const facts = value.process;
  if (!counters || !isRecord(facts) || Object.keys(facts).length > 3) return undefined;
  const process: ProcessFacts = {};
  for (const key of ["residentMemoryBytes", "cpuSeconds", "openFds"] as const) {
    const fact = facts[key];
    if (fact === undefined) continue;
    if (typeof fact !== "number" || !Number.isFinite(fact) || fact < 0) return undefined;
    process[key] = fact;
  }
  return { t: "counters", counters, process };
}

/** Reads a control line from the supervisor; anything else is undefined. */
export function decodeSupervisorLine(line: string, now: number): SupervisorMessage | undefined {
  if (!line.startsWith(CONTROL)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line.slice(CONTROL.length));
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  if (value.t === "penalty") return checkPenalty(value, now);
  return value.t === "stop" || value.t === "reload" || value.t === "synced" || value.t === "counters"
    ? { t: value.t }
    : undefined;
}
