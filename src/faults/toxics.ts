/**
 * What each toxic does to one direction of one connection: to each chunk as it passes, at the
 * end of input, and while it is in place (timers).
 *
 * @module
 */

import type { SeededRandom } from "./prng.ts";
import type { Toxic } from "./model.ts";
import type { Address } from "../types.ts";
import { cidrContains, parseCidr, parseIp } from "../ip.ts";

/** Whether `toxic` targets a client at `remote`: always, unless it lists `clients`. */
export function targets(toxic: Toxic, remote: Address): boolean {
  if (!toxic.clients) return true;
  const ip = remote.transport === "unix" ? undefined : parseIp(remote.hostname);
  return ip !== undefined && toxic.clients.some((block) => cidrContains(parseCidr(block), ip));
}

/** What a toxic may do to the connection it acts on. */
export interface ToxicLink {
  /** This direction's random source (toxicity, jitter, slicer sizes). */
  readonly random: SeededRandom;
  /** Aborted once the connection is closed: every wait ends. */
  readonly signal: AbortSignal;
  /** Closes the connection normally (FIN), after what was already written. */
  close(): void;
  /** Closes the connection with an RST. */
  reset(): void;
}

/** One toxic in place on one direction of one connection. */
export interface ToxicRun {
  toxic: Toxic;
  /** Whether its toxicity roll chose it for this connection and direction. */
  active: boolean;
  /** limit_data: bytes let through so far (kept across updates, as toxiproxy does). */
  sent: number;
  /** bandwidth: how far behind the rate we are, in ms. */
  debt: number;
  /** The timer of timeout and limit_time. */
  timer?: ReturnType<typeof setTimeout>;
  /**
   * Aborted when the toxic is updated or removed: a wait in progress ends at once (a delayed
   * chunk goes on now, as toxiproxy's interrupted stubs pass theirs on), and the toxic then in
   * place decides what follows.
   */
  interrupt: AbortController;
}

type Attributes = Record<
  | "latency"
  | "jitter"
  | "rate"
  | "delay"
  | "timeout"
  | "average_size"
  | "size_variation"
  | "bytes"
  | "time"
  | "probability",
  number
>;

/** A toxic's attributes (every one of its type is filled in by the model). */
function attributesOf(run: ToxicRun): Attributes {
  return run.toxic.attributes as Attributes;
}

/**
 * Passes bytes on to the next toxic (or the socket), with the time they count from: when they
 * were read, plus the delays of the latency toxics before (so that two of 100 ms add 200 ms).
 */
export type Next = (bytes: Uint8Array, at: number) => Promise<void>;

/**
 * Resolves after `ms` (at once for 0 or less; never by time for `Infinity`), or as soon as one
 * of `signals` is aborted.
 */
export function wait(ms: number, ...signals: AbortSignal[]): Promise<void> {
  if (ms <= 0 || signals.some((signal) => signal.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const signal of signals) signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = ms === Infinity ? undefined : setTimeout(done, ms);
    for (const signal of signals) signal.addEventListener("abort", done);
  });
}

/** Waits `ms` unless the connection closes or the toxic is updated or removed; true if interrupted. */
async function pause(run: ToxicRun, ms: number, link: ToxicLink): Promise<boolean> {
  const interrupt = run.interrupt.signal;
  await wait(ms, link.signal, interrupt);
  return interrupt.aborted;
}

/** Called when the toxic is put in place on a connection (or updated): starts its timers. */
export function startToxic(run: ToxicRun, link: ToxicLink): void {
  if (!run.active) return;
  const type = run.toxic.type;
  const attributes = attributesOf(run);
  if (type === "timeout" && attributes.timeout > 0) {
    run.timer = setTimeout(() => link.close(), attributes.timeout);
  }
  if (type === "limit_time") run.timer = setTimeout(() => link.close(), attributes.time);
}

/**
 * Called when the toxic is taken off a connection. `removed` is false for an update (it
 * starts again). Removing a timeout closes the connections it held, as toxiproxy does.
 */
export function stopToxic(run: ToxicRun, link: ToxicLink, removed: boolean): void {
  clearTimeout(run.timer);
  run.timer = undefined;
  run.interrupt.abort();
  run.interrupt = new AbortController(); // for the toxic that follows, if it was updated
  if (removed && run.active && run.toxic.type === "timeout") link.close();
}

/**
 * Passes `bytes` (counting from `at`, ms on `performance.now()`'s clock) through the toxic to `next`. An update
 * or removal of the toxic during one of its waits passes what is held on at once.
 */
export async function toxicData(run: ToxicRun, bytes: Uint8Array, at: number, next: Next, link: ToxicLink) {
  const a = attributesOf(run);
  switch (run.toxic.type) {
    case "latency": {
      const jitter = a.jitter > 0 ? link.random.int(a.jitter * 2) - a.jitter : 0;
      // An absolute deadline on the monotonic clock: time spent in earlier toxics or the event
      // loop is not added again. Timers count whole milliseconds and fire late rather than early,
      // so wait the whole milliseconds left, and pass on once less than one is left.
      const due = at + a.latency + jitter;
      for (let left = due - performance.now(); left >= 1 && !link.signal.aborted; left = due - performance.now()) {
        if (await pause(run, Math.floor(left), link)) return next(bytes, at);
      }
      return next(bytes, Math.max(at, due));
    }
    case "bandwidth":
      return bandwidth(run, bytes, at, next, link);
    case "timeout":
      return; // dropped, as toxiproxy drops it
    case "reset_peer":
      // Interrupted (updated or removed before it fired): the chunk goes on, no reset.
      if (await pause(run, a.timeout, link)) return next(bytes, at);
      return link.reset();
    case "slicer":
      return slice(run, bytes, at, next, link);
    case "limit_data": {
      const allowed = Math.max(0, a.bytes - run.sent);
      const part = bytes.length > allowed ? bytes.subarray(0, allowed) : bytes;
      if (part.length > 0) {
        await next(part, at);
        run.sent += part.length;
      }
      if (run.sent >= a.bytes) link.close();
      return;
    }
    case "corrupt":
      return next(corrupt(bytes, a.probability, link.random), at);
    default:
      return next(bytes, at); // noop; limit_time and slow_open act on the connection, not its bytes
  }
}

/** A copy of `bytes` where each byte has one random bit flipped with that probability. */
function corrupt(bytes: Uint8Array, probability: number, random: SeededRandom): Uint8Array {
  if (probability <= 0) return bytes;
  const out = bytes.slice();
  for (let i = 0; i < out.length; i++) {
    if (random.next() < probability) out[i]! ^= 1 << random.int(8);
  }
  return out;
}

/** Called at the end of input, before it is passed on (as a FIN). */
export async function toxicEnd(run: ToxicRun, link: ToxicLink): Promise<void> {
  if (run.toxic.type === "slow_close") await pause(run, attributesOf(run).delay, link);
  // A stalled connection does not pass its end on either, until the toxic goes.
  if (run.toxic.type === "timeout" && attributesOf(run).timeout === 0) await pause(run, Infinity, link);
}

async function bandwidth(run: ToxicRun, bytes: Uint8Array, at: number, next: Next, link: ToxicLink): Promise<void> {
  const rate = attributesOf(run).rate; // KB/s, KB = 1000 bytes: `rate` bytes per ms
  if (rate <= 0) return next(bytes, at);
  run.debt += bytes.length / rate;
  const slice = rate * 100; // what 100 ms allow
  while (bytes.length > slice && !link.signal.aborted) {
    if (await pause(run, 100, link)) return next(bytes, at); // interrupted: the rest at once
    await next(bytes.subarray(0, slice), at);
    bytes = bytes.subarray(slice);
    run.debt -= 100;
  }
  const start = performance.now();
  const interrupted = await pause(run, run.debt, link);
  run.debt = interrupted ? 0 : run.debt - (performance.now() - start);
  return next(bytes, at);
}

async function slice(run: ToxicRun, bytes: Uint8Array, at: number, next: Next, link: ToxicLink): Promise<void> {
  const { average_size: average, size_variation: variation, delay } = attributesOf(run);
  const bounds = cuts(0, bytes.length, average, variation, link.random);
  for (let i = 1; i < bounds.length; i += 2) {
    await next(bytes.subarray(bounds[i - 1], bounds[i]), at);
    // delay is in microseconds; interrupted, the rest goes on in one piece
    if (i + 2 < bounds.length && await pause(run, delay / 1000, link)) return next(bytes.subarray(bounds[i]), at);
  }
}

/** toxiproxy's slicer: halves around a random middle until pieces are near the average size. */
function cuts(start: number, end: number, average: number, variation: number, random: SeededRandom): number[] {
  if (end - start - average <= variation) return [start, end];
  let mid = start + Math.floor((end - start) / 2);
  if (variation > 0) mid += random.int(variation * 2) - variation;
  mid = Math.min(end - 1, Math.max(start + 1, mid)); // never an empty piece, never past the ends
  return [...cuts(start, mid, average, variation, random), ...cuts(mid, end, average, variation, random)];
}
