/**
 * A load generator for echo servers (and gates): drives any echo server over a
 * {@linkcode Transport}, checks every reply byte for byte, and reports throughput, latency,
 * errors and mismatches. `echogate bench` is its command line.
 *
 * Three modes:
 * - `pingpong`: each connection sends a message of `size` bytes and waits for its echo before
 *   sending the next (the echo may come back as several `prefix + piece` frames, see
 *   {@linkcode echoReplyState}); one operation is one round trip.
 * - `stream`: each connection keeps `size` bytes in flight and checks the echoed stream in
 *   order; with a prefix, the stream must come back as `prefix + piece` frames whose pieces
 *   join up to what was sent. One operation is one block (half of `size`, at most 64 KiB) echoed.
 * - `connect`: each operation is a fresh connection doing one full exchange and closing: one
 *   echo round trip, or with `knock`, a gate knock that must be answered `welcome to server!`.
 *
 * @module
 */

import { concatAll, pythonRepr, utf8 } from "./_bytes.ts";
import { TIMED_OUT, within } from "./_timers.ts";
import { formatEndpoint } from "./address.ts";
import { errorMessage } from "./log.ts";
import { echoReplyState } from "./client.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "./echo.ts";
import { DEFAULT_GATE_PORT, WELCOME } from "./gate.ts";
import type { Endpoint, StreamSocket, Transport } from "./types.ts";

/** The load generator's modes. */
export type BenchMode = "pingpong" | "stream" | "connect";

/** The list of bench modes, for validation. */
export const BENCH_MODES: readonly BenchMode[] = ["pingpong", "stream", "connect"];

/** Default message size in `pingpong` and `connect` mode, in bytes. */
export const DEFAULT_BENCH_MESSAGE_SIZE = 64;

/** Default bytes in flight per connection in `stream` mode: 64 KiB. */
export const DEFAULT_BENCH_STREAM_SIZE = 64 * 1024;

/** Default number of connections. */
export const DEFAULT_BENCH_CONNS = 50;

/** Default run length, in ms. */
export const DEFAULT_BENCH_DURATION_MS = 5000;

/**
 * How many descriptors the process may hold, and how many it holds now; `undefined` when the
 * runtime cannot tell. Adapters that can read the limit (Linux `/proc/self/limits`) provide it.
 */
export interface FileDescriptorUsage {
  /** The soft limit on open files (`ulimit -n`). */
  limit: number;
  /** Descriptors open right now. */
  open: number;
}

/**
 * What to drive and how hard.
 *
 * @example
 * ```ts
 * import type { BenchOptions } from "./bench.ts";
 *
 * const options: Omit<BenchOptions, "transport"> = { port: 50007, mode: "stream", conns: 64, durationMs: 3000 };
 * ```
 */
export interface BenchOptions {
  /** The runtime's socket API (each adapter exports one as `transport`). */
  transport: Transport;
  /** Host to connect to. @default {"localhost"} */
  hostname?: string;
  /** Port to connect to. @default {50007, or 8001 with `knock`} */
  port?: number;
  /** Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** What each connection does. @default {"pingpong"} */
  mode?: BenchMode;
  /** Connections (in `connect` mode: exchanges in progress at once). @default {50} */
  conns?: number;
  /**
   * Message size in `pingpong` and `connect` mode (default 64); bytes kept in flight per
   * connection in `stream` mode (default 65536).
   */
  size?: number;
  /** How long to run, in ms, once the connections are open. @default {5000} */
  durationMs?: number;
  /** The prefix the server puts before each answer; `""` for a raw echo server. @default {"Echo=>"} */
  prefix?: string | Uint8Array;
  /** In `connect` mode: knock on a gate with this token instead of doing an echo round trip. */
  knock?: string | Uint8Array;
  /**
   * Caps the pace at this many operations per second in total, and opens connections one per
   * operation slot (over at most a quarter of the run) instead of all at once.
   */
  rate?: number;
  /** How long to wait for a connection or a reply before counting an error, in ms. @default {5000} */
  timeoutMs?: number;
  /** How often `onInterval` is called, in ms. @default {1000} */
  intervalMs?: number;
  /** Called once per interval with the figures of that interval. */
  onInterval?: (interval: BenchInterval) => void;
  /** Reports the descriptor limit, so the run can refuse a `conns` that cannot fit. */
  fileDescriptors?: () => FileDescriptorUsage | undefined;
  /** Stops the run early; the report covers what ran. */
  signal?: AbortSignal;
}

/**
 * Latency percentiles, in milliseconds (from a histogram with under 2% error; `max` is exact).
 *
 * @example
 * ```ts
 * import type { LatencyMs } from "./bench.ts";
 *
 * const latency: LatencyMs = { p50: 0.21, p99: 1.3, max: 4.02, mean: 0.25 };
 * ```
 */
export interface LatencyMs {
  /** Median. */
  p50: number;
  /** 99th percentile. */
  p99: number;
  /** Slowest. */
  max: number;
  /** Average. */
  mean: number;
}

/**
 * The figures of one interval of a run (the `--json-stream` objects).
 *
 * @example
 * ```ts
 * import type { BenchInterval } from "./bench.ts";
 *
 * function show(interval: BenchInterval): string {
 *   return `${interval.elapsedS.toFixed(0)} s: ${interval.opsPerS.toFixed(0)} ops/s`;
 * }
 * ```
 */
export interface BenchInterval {
  /** Seconds since measuring began, at the end of this interval. */
  elapsedS: number;
  /** Length of this interval, in seconds. */
  intervalS: number;
  /** Operations completed in this interval. */
  operations: number;
  /** Operations per second in this interval. */
  opsPerS: number;
  /** Payload megabytes (10^6 bytes) echoed back per second in this interval. */
  throughputMBps: number;
  /** Latency of this interval's operations. */
  latencyMs: LatencyMs;
  /** Errors in this interval. */
  errors: number;
  /** Mismatched replies in this interval. */
  mismatches: number;
  /** Connections open at the end of this interval. */
  connections: number;
}

/**
 * The outcome of a run (the `--json` object).
 *
 * @example
 * ```ts
 * import type { BenchReport } from "./bench.ts";
 *
 * function ok(report: BenchReport): boolean {
 *   return report.errors === 0 && report.mismatches === 0 && report.operations > 0;
 * }
 * ```
 */
export interface BenchReport {
  /** The mode that ran. */
  mode: BenchMode;
  /** The server, printable: `127.0.0.1:50007` or `unix:/path`. */
  target: string;
  /** What one operation is: `"round trip"`, `"block"`, `"connection"` or `"knock"`. */
  operation: string;
  /** Connections (or concurrent exchanges in `connect` mode). */
  conns: number;
  /** Message size, or bytes in flight per connection in `stream` mode. */
  sizeBytes: number;
  /** The prefix expected before each answer (decoded as UTF-8); empty for a knock. */
  prefix: string;
  /** The pace cap in operations per second, or `null` when uncapped. */
  rateLimitPerS: number | null;
  /** Seconds measured. */
  durationS: number;
  /** Operations completed and verified. */
  operations: number;
  /** Operations per second. */
  opsPerS: number;
  /** Payload bytes echoed back and verified (prefixes not counted). */
  bytesEchoed: number;
  /** Payload megabytes (10^6 bytes) echoed back per second. */
  throughputMBps: number;
  /** Latency of each operation: a round trip, a block's echo, or a whole connection. */
  latencyMs: LatencyMs;
  /** Failed connects, resets, timeouts and early closes. */
  errors: number;
  /** Replies that differ from what was sent. */
  mismatches: number;
  /** The first error, if any. */
  firstError?: string;
  /** The first mismatch, described, if any. */
  firstMismatch?: string;
  /** Connections opened over the run. */
  connectionsOpened: number;
}

// Stream mode writes blocks of half the window (at most 64 KiB), cut from a pattern
// whose length is prime so that a lost or repeated block shifts the pattern visibly.
const PATTERN_LENGTH = 65_521;
const MAX_BLOCK = 64 * 1024;
// Connections opened at once when no rate is set (a burst beyond the listen backlog would be
// dropped and retried a second later by the kernel).
const OPEN_CONCURRENCY = 128;
// The longest message header carrying the sequence number.
const SEQUENCE_DIGITS = 12;
// A reply this much bigger than its message is not worth re-checking on every chunk.
const EAGER_CHECK_BYTES = 64 * 1024;
// Pause before a connection that failed is opened again.
const RETRY_MS = 100;
// Longest reply a knock reads (the seed's recv(1024)).
const MAX_KNOCK_REPLY = 1024;

/**
 * Runs the load generator and resolves with its report. Errors and mismatches are counted,
 * not thrown; the promise rejects only when the target cannot be reached at all (the first
 * connection fails) or when `conns` cannot fit in the descriptor limit.
 *
 * @param options The target, the mode and the load.
 * @returns The report of the run.
 *
 * @example Ten round trips a second for half a second
 * ```ts ignore
 * import { runBench } from "./bench.ts";
 * import { transport } from "../adapters/deno.ts";
 *
 * const report = await runBench({ transport, port: 50007, conns: 2, rate: 10, durationMs: 500 });
 * console.log(report.operations, report.latencyMs.p99, report.mismatches);
 * ```
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const settings = settle(options);
  checkDescriptors(settings, options.fileDescriptors?.());
  return await new BenchRun(settings, options).run();
}

interface Settings {
  transport: Transport;
  endpoint: Endpoint;
  target: string;
  mode: BenchMode;
  conns: number;
  size: number;
  durationMs: number;
  prefix: Uint8Array;
  knock: Uint8Array | undefined;
  rate: number | undefined;
  timeoutMs: number;
  intervalMs: number;
}

function settle(options: BenchOptions): Settings {
  const mode = options.mode ?? "pingpong";
  if (!BENCH_MODES.includes(mode)) throw new TypeError(`Unknown bench mode "${mode}"`);
  const knock = typeof options.knock === "string" ? utf8(options.knock) : options.knock;
  if (knock !== undefined && mode !== "connect") throw new TypeError("A knock is only done in connect mode");
  const endpoint: Endpoint = options.path !== undefined ? { path: options.path } : {
    hostname: options.hostname ?? "localhost",
    port: options.port ?? (knock ? DEFAULT_GATE_PORT : DEFAULT_ECHO_PORT),
  };
  const size = options.size ?? (mode === "stream" ? DEFAULT_BENCH_STREAM_SIZE : DEFAULT_BENCH_MESSAGE_SIZE);
  const settings: Settings = {
    transport: options.transport,
    endpoint,
    target: formatEndpoint(endpoint),
    mode,
    conns: options.conns ?? DEFAULT_BENCH_CONNS,
    size,
    durationMs: options.durationMs ?? DEFAULT_BENCH_DURATION_MS,
    prefix: typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX),
    knock,
    rate: options.rate,
    timeoutMs: options.timeoutMs ?? 5000,
    intervalMs: options.intervalMs ?? 1000,
  };
  for (const [name, value] of [["conns", settings.conns], ["size", settings.size]] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new RangeError(`${name} must be a positive integer`);
  }
  if (!(settings.durationMs >= 0)) throw new RangeError("durationMs must be a non-negative number");
  if (settings.rate !== undefined && !(settings.rate > 0)) throw new RangeError("rate must be a positive number");
  if (!(settings.timeoutMs > 0)) throw new RangeError("timeoutMs must be a positive number");
  if (!(settings.intervalMs > 0)) throw new RangeError("intervalMs must be a positive number");
  return settings;
}

/**
 * Thrown by {@linkcode runBench} when the requested connections cannot fit in the process's
 * file descriptor limit.
 *
 * @example
 * ```ts
 * import { DescriptorLimitError } from "./bench.ts";
 *
 * const error = new DescriptorLimitError(5000, { limit: 1024, open: 20 });
 * console.log(error.message.startsWith("5000 connections need")); // true
 * ```
 */
export class DescriptorLimitError extends Error {
  /**
   * Creates the error.
   *
   * @param conns The connections asked for.
   * @param usage The descriptor limit and how many are open.
   */
  constructor(conns: number, usage: FileDescriptorUsage) {
    super(
      `${conns} connections need ${conns} file descriptors, but only ${
        Math.max(0, usage.limit - usage.open - DESCRIPTOR_RESERVE)
      } are free (limit ${usage.limit}, ${usage.open} open, ${DESCRIPTOR_RESERVE} kept for the runtime): ` +
        `raise the limit (ulimit -n) or lower the connections`,
    );
    this.name = "DescriptorLimitError";
  }
}

// Descriptors left for the runtime itself (timers, stdio, DNS) beyond the sockets.
const DESCRIPTOR_RESERVE = 16;

function checkDescriptors(settings: Settings, usage: FileDescriptorUsage | undefined): void {
  if (!usage) return;
  if (settings.conns > usage.limit - usage.open - DESCRIPTOR_RESERVE) {
    throw new DescriptorLimitError(settings.conns, usage);
  }
}

/** A log-linear latency histogram in microseconds: 64 sub-buckets per power of two. */
class Histogram {
  static readonly BUCKETS = 128 + 24 * 64;
  #counts = new Uint32Array(Histogram.BUCKETS);
  count = 0;
  #sumUs = 0;
  #maxUs = 0;

  record(ms: number): void {
    const us = Math.min(Math.max(Math.round(ms * 1000), 0), 0x7fffffff);
    this.#counts[bucketOf(us)]!++;
    this.count++;
    this.#sumUs += us;
    if (us > this.#maxUs) this.#maxUs = us;
  }

  merge(other: Histogram): void {
    for (let i = 0; i < Histogram.BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
    this.count += other.count;
    this.#sumUs += other.#sumUs;
    if (other.#maxUs > this.#maxUs) this.#maxUs = other.#maxUs;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.#sumUs = 0;
    this.#maxUs = 0;
  }

  summary(): LatencyMs {
    return {
      p50: round3(this.#percentileUs(0.5) / 1000),
      p99: round3(this.#percentileUs(0.99) / 1000),
      max: round3(this.#maxUs / 1000),
      mean: round3(this.count === 0 ? 0 : this.#sumUs / this.count / 1000),
    };
  }

  #percentileUs(fraction: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(fraction * this.count));
    let seen = 0;
    for (let i = 0; i < Histogram.BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddle(i), this.#maxUs);
    }
    return this.#maxUs;
  }
}

function bucketOf(us: number): number {
  if (us < 128) return us;
  const shift = 31 - Math.clz32(us) - 6;
  return 128 + (shift - 1) * 64 + ((us >>> shift) - 64);
}

function bucketMiddle(index: number): number {
  if (index < 128) return index;
  const shift = Math.floor((index - 128) / 64) + 1;
  const top = 64 + ((index - 128) % 64);
  return (top + 0.5) * 2 ** shift;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Paces operations at a total rate: each takes the next free slot. */
class Pacer {
  #gapMs: number;
  #next = 0;

  constructor(rate: number) {
    this.#gapMs = 1000 / rate;
  }

  /** Takes the next free slot; returns how many ms until it is due. */
  take(): number {
    const now = performance.now();
    const slot = Math.max(now, this.#next);
    this.#next = slot + this.#gapMs;
    return slot - now;
  }
}

/** A connection's wait for the server, watched for the timeout. */
interface Watched {
  socket: StreamSocket | undefined;
  /** `performance.now()` when the current wait began, or 0 when not waiting. */
  since: number;
  timedOut: boolean;
}

class Mismatch extends Error {}

class BenchRun {
  readonly #s: Settings;
  readonly #options: BenchOptions;
  readonly #total = new Histogram();
  readonly #interval = new Histogram();
  readonly #watched = new Set<Watched>();
  readonly #wakers = new Set<() => void>();
  readonly #alphabet: Uint8Array;
  readonly #pattern: PatternCopies | undefined;
  #pacer: Pacer | undefined;
  #stopped = false;
  #operations = 0;
  #bytes = 0;
  #errors = 0;
  #mismatches = 0;
  #firstError: string | undefined;
  #firstMismatch: string | undefined;
  #opened = 0;
  #open = 0;
  #startedAt = 0;
  #intervalBase = { at: 0, operations: 0, bytes: 0, errors: 0, mismatches: 0 };

  constructor(settings: Settings, options: BenchOptions) {
    this.#s = settings;
    this.#options = options;
    this.#alphabet = messageAlphabet(settings.prefix);
    if (settings.mode === "stream") {
      this.#pattern = new PatternCopies(blockSize(settings.size), settings.prefix[0] ?? -1);
    }
  }

  async run(): Promise<BenchReport> {
    const s = this.#s;
    const signal = this.#options.signal;
    const stop = () => this.#stop();
    signal?.addEventListener("abort", stop);
    if (signal?.aborted) this.#stop();
    const watchdog = setInterval(() => this.#checkTimeouts(), Math.min(250, s.timeoutMs / 4));
    try {
      // The first contact: when it fails there is nothing to measure, so say why.
      let first: StreamSocket;
      try {
        first = await this.#connect();
      } catch (error) {
        throw new Error(`Cannot connect to ${s.target}: ${errorMessage(error)}`);
      }
      const loops = await this.#start(first);
      const ticker = setInterval(() => this.#emitInterval(), s.intervalMs);
      const stopTimer = setTimeout(stop, s.durationMs);
      try {
        await Promise.all(loops);
      } finally {
        clearInterval(ticker);
        clearTimeout(stopTimer);
      }
      // The last, shorter interval, unless it is a sliver.
      if (performance.now() - this.#intervalBase.at >= s.intervalMs / 4) this.#emitInterval();
      return this.#report();
    } finally {
      this.#stop();
      clearInterval(watchdog);
      signal?.removeEventListener("abort", stop);
    }
  }

  /** Opens the connections (or schedules them, when paced), starts the clock and the loops. */
  async #start(first: StreamSocket): Promise<Promise<void>[]> {
    const s = this.#s;
    const loops: Promise<void>[] = [];
    if (s.rate !== undefined) {
      // Paced: the clock starts now and connections come up one slot apart.
      this.#pacer = new Pacer(s.rate);
      const gapMs = Math.min(1000 / s.rate, s.durationMs / 4 / s.conns);
      this.#startClock();
      for (let i = 0; i < s.conns; i++) loops.push(this.#loop(i, i === 0 ? first : undefined, i * gapMs));
      return loops;
    }
    const sockets: (StreamSocket | null)[] = [first];
    if (s.mode !== "connect") {
      // Open every connection first, a bounded number at a time, then start the clock.
      const opener = async (from: number) => {
        for (let i = from; i < s.conns && !this.#stopped; i += OPEN_CONCURRENCY) {
          try {
            sockets[i] = await this.#connect();
          } catch (error) {
            this.#error(error);
            sockets[i] = null;
          }
        }
      };
      const openers: Promise<void>[] = [];
      for (let k = 1; k <= Math.min(OPEN_CONCURRENCY, s.conns - 1); k++) openers.push(opener(k));
      await Promise.all(openers);
    }
    this.#startClock();
    for (let i = 0; i < s.conns; i++) loops.push(this.#loop(i, sockets[i], 0));
    return loops;
  }

  #startClock(): void {
    this.#startedAt = performance.now();
    this.#intervalBase.at = this.#startedAt;
  }

  #stop(): void {
    this.#stopped = true;
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
  }

  /** Waits `ms`, or less if the run stops first. */
  #pause(ms: number): Promise<void> {
    if (this.#stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  /** Waits for this operation's slot when paced; false when the run stopped meanwhile. */
  async #paced(): Promise<boolean> {
    if (this.#pacer && !this.#stopped) await this.#pause(this.#pacer.take());
    return !this.#stopped;
  }

  #emitInterval(): void {
    const now = performance.now();
    const base = this.#intervalBase;
    const seconds = (now - base.at) / 1000;
    const operations = this.#operations - base.operations;
    const interval: BenchInterval = {
      elapsedS: round3((now - this.#startedAt) / 1000),
      intervalS: round3(seconds),
      operations,
      opsPerS: round3(operations / seconds),
      throughputMBps: round3((this.#bytes - base.bytes) / seconds / 1e6),
      latencyMs: this.#interval.summary(),
      errors: this.#errors - base.errors,
      mismatches: this.#mismatches - base.mismatches,
      connections: this.#open,
    };
    this.#total.merge(this.#interval);
    this.#interval.reset();
    this.#intervalBase = {
      at: now,
      operations: this.#operations,
      bytes: this.#bytes,
      errors: this.#errors,
      mismatches: this.#mismatches,
    };
    try {
      this.#options.onInterval?.(interval);
    } catch {
      // A failing observer must not stop the run.
    }
  }

  #report(): BenchReport {
    const s = this.#s;
    this.#total.merge(this.#interval);
    this.#interval.reset();
    const seconds = Math.max(performance.now() - this.#startedAt, 1e-3) / 1000;
    const report: BenchReport = {
      mode: s.mode,
      target: s.target,
      operation: s.mode === "pingpong"
        ? "round trip"
        : s.mode === "stream"
        ? "block"
        : s.knock
        ? "knock"
        : "connection",
      conns: s.conns,
      sizeBytes: s.size,
      prefix: s.knock ? "" : new TextDecoder().decode(s.prefix),
      rateLimitPerS: s.rate ?? null,
      durationS: round3(seconds),
      operations: this.#operations,
      opsPerS: round3(this.#operations / seconds),
      bytesEchoed: this.#bytes,
      throughputMBps: round3(this.#bytes / seconds / 1e6),
      latencyMs: this.#total.summary(),
      errors: this.#errors,
      mismatches: this.#mismatches,
      connectionsOpened: this.#opened,
    };
    if (this.#firstError !== undefined) report.firstError = this.#firstError;
    if (this.#firstMismatch !== undefined) report.firstMismatch = this.#firstMismatch;
    return report;
  }

  // --- bookkeeping ---

  #done(latencyMs: number, bytes: number): void {
    this.#operations++;
    this.#bytes += bytes;
    this.#interval.record(latencyMs);
  }

  #error(error: unknown): void {
    if (error instanceof Mismatch) {
      this.#mismatches++;
      this.#firstMismatch ??= error.message;
      return;
    }
    this.#errors++;
    this.#firstError ??= errorMessage(error);
  }

  #checkTimeouts(): void {
    const now = performance.now();
    for (const watched of this.#watched) {
      if (watched.since !== 0 && !watched.timedOut && now - watched.since > this.#s.timeoutMs) {
        watched.timedOut = true;
        watched.socket?.close();
      }
    }
  }

  async #connect(): Promise<StreamSocket> {
    const connecting = this.#s.transport.connect(this.#s.endpoint);
    const socket = await within(connecting, this.#s.timeoutMs);
    if (socket === TIMED_OUT) {
      connecting.then((late) => late.close(), () => {});
      throw new Error(`Connecting timed out after ${this.#s.timeoutMs / 1000} s`);
    }
    this.#opened++;
    this.#open++;
    socket.closed.then(() => this.#open--);
    return socket;
  }

  // --- connection loops ---

  /**
   * One connection slot: runs the mode's work until the run stops, opening a new connection
   * (after a pause) when one fails. `initial` is its first socket; `null` when opening it failed.
   */
  async #loop(index: number, initial: StreamSocket | null | undefined, delayMs: number): Promise<void> {
    await this.#pause(delayMs);
    const watched: Watched = { socket: initial ?? undefined, since: 0, timedOut: false };
    this.#watched.add(watched);
    let retry = initial === null;
    try {
      while (!this.#stopped) {
        if (retry) await this.#pause(RETRY_MS);
        if (this.#stopped) break;
        retry = false;
        watched.since = 0;
        watched.timedOut = false;
        try {
          if (this.#s.mode === "connect") {
            await this.#connectLoop(index, watched);
          } else {
            watched.socket ??= await this.#connect();
            if (this.#s.mode === "pingpong") await this.#pingpong(index, watched.socket, watched);
            else await this.#stream(index, watched.socket, watched);
          }
        } catch (error) {
          this.#error(watched.timedOut ? new Error(`No reply within ${this.#s.timeoutMs / 1000} s`) : error);
          retry = true;
        } finally {
          watched.socket?.close();
          watched.socket = undefined;
        }
      }
    } finally {
      watched.socket?.close();
      this.#watched.delete(watched);
    }
  }

  async #pingpong(index: number, socket: StreamSocket, watched: Watched): Promise<void> {
    const message = new Uint8Array(this.#s.size);
    const counter = new SequenceCounter(message, this.#alphabet, index);
    const prefix = this.#s.prefix;
    const expected = prefix.length + message.length;
    while (!this.#stopped) {
      if (this.#pacer && !(await this.#paced())) return;
      // Safe to rewrite the buffer: the previous message was fully echoed, so it was sent.
      const sequence = counter.next();
      const started = performance.now();
      watched.since = started;
      await socket.write(message);
      const chunk = await socket.read();
      if (watched.timedOut) throw new Error(`No reply within ${this.#s.timeoutMs / 1000} s`);
      // The usual case, checked inline: the whole echo in one frame, in one chunk.
      if (chunk === null || chunk.length !== expected || !isEcho(chunk, prefix, message)) {
        await this.#readEcho(socket, watched, message, chunk, () => `connection ${index}, round trip ${sequence}`);
      }
      watched.since = 0;
      this.#done(performance.now() - started, message.length);
    }
  }

  async #nextChunk(socket: StreamSocket, watched: Watched): Promise<Uint8Array | null> {
    const chunk = await socket.read();
    if (watched.timedOut) throw new Error(`No reply within ${this.#s.timeoutMs / 1000} s`);
    return chunk;
  }

  /**
   * Reads one echo of `message` (one frame or several), starting with `first` when a chunk was
   * already read; throws a Mismatch when the reply differs.
   */
  async #readEcho(
    socket: StreamSocket,
    watched: Watched,
    message: Uint8Array,
    first: Uint8Array | null | undefined,
    what: () => string,
  ): Promise<void> {
    const prefix = this.#s.prefix;
    const expected = prefix.length + message.length;
    const parts: Uint8Array[] = [];
    let total = 0;
    let chunk = first === undefined ? await this.#nextChunk(socket, watched) : first;
    while (true) {
      if (chunk === null) {
        throw new Error(`Server closed the connection ${total === 0 ? "without replying" : "mid-reply"} (${what()})`);
      }
      if (total === 0 && chunk.length === expected && isEcho(chunk, prefix, message)) return;
      parts.push(chunk);
      total += chunk.length;
      if (total >= expected || total <= EAGER_CHECK_BYTES) {
        const reply = concatAll(parts, total);
        parts.length = 0;
        parts.push(reply);
        const state = echoReplyState(reply, message, prefix);
        if (state === "complete") return;
        if (state === "other") {
          throw new Mismatch(`${what()}: expected ${preview(prefix, message)}, got ${preview(reply)}`);
        }
      }
      chunk = await this.#nextChunk(socket, watched);
    }
  }

  async #connectLoop(index: number, watched: Watched): Promise<void> {
    const knock = this.#s.knock;
    const message = new Uint8Array(knock ? 0 : this.#s.size);
    const counter = new SequenceCounter(message, this.#alphabet, index);
    while (!this.#stopped) {
      if (this.#pacer && !(await this.#paced())) return;
      const sequence = counter.next();
      const started = performance.now();
      // The slot's first socket may already be open (the run's first contact).
      const socket = watched.socket ?? await this.#connect();
      watched.socket = socket;
      watched.since = performance.now();
      if (knock) {
        await socket.write(knock);
        const reply = await this.#readToEnd(socket, watched);
        if (reply !== WELCOME) {
          throw new Mismatch(
            `connection ${index}, knock ${sequence}: expected '${WELCOME}', got ${pythonRepr(utf8(reply))}`,
          );
        }
      } else {
        await socket.write(message);
        await this.#readEcho(socket, watched, message, undefined, () => `connection ${index}, exchange ${sequence}`);
      }
      watched.since = 0;
      socket.close();
      watched.socket = undefined;
      this.#done(performance.now() - started, message.length);
    }
  }

  /** Reads until the server closes (a gate answers once and hangs up), keeping at most 1024 bytes. */
  async #readToEnd(socket: StreamSocket, watched: Watched): Promise<string> {
    const parts: Uint8Array[] = [];
    let total = 0;
    while (total <= MAX_KNOCK_REPLY) {
      const chunk = await this.#nextChunk(socket, watched);
      if (chunk === null) break;
      parts.push(chunk);
      total += chunk.length;
    }
    return new TextDecoder().decode(concatAll(parts, total));
  }

  async #stream(index: number, socket: StreamSocket, watched: Watched): Promise<void> {
    const pattern = this.#pattern!;
    const window = this.#s.size;
    const block = pattern.block;
    // Each connection starts at its own place in the pattern, so crossed streams show.
    const origin = (index * 7919) % PATTERN_LENGTH;
    const verifier = new StreamVerifier(pattern, origin, this.#s.prefix, `connection ${index}`);
    const written: number[] = []; // when each block in flight was written, oldest first
    let writtenHead = 0;
    let sent = 0;
    let acknowledged = 0; // bytes of whole blocks echoed
    let room: (() => void) | undefined;
    let readerError: unknown;
    let readerDone = false;
    let finishing = false;
    const wakeWriter = () => {
      const wake = room;
      room = undefined;
      wake?.();
    };

    const reading = (async () => {
      while (true) {
        const chunk = await this.#nextChunk(socket, watched);
        if (chunk === null) break;
        verifier.push(chunk);
        if (verifier.received > sent) throw new Mismatch(`connection ${index}: more bytes echoed than sent`);
        // The watchdog times a wait only while bytes are in flight.
        const now = performance.now();
        watched.since = verifier.received < sent || finishing ? now : 0;
        if (acknowledged + block <= verifier.received) {
          while (acknowledged + block <= verifier.received) {
            this.#done(now - written[writtenHead++]!, block);
            acknowledged += block;
          }
          if (writtenHead > 1024) {
            written.splice(0, writtenHead);
            writtenHead = 0;
          }
          wakeWriter();
        }
      }
      if (verifier.received !== sent) {
        throw new Error(`Server closed the connection after echoing ${verifier.received} of ${sent} bytes`);
      }
      if (!this.#stopped) throw new Error("Server closed the connection");
    })().catch((error) => {
      readerError = error;
      socket.close(); // fails a write stuck behind a server that stopped reading
    }).finally(() => {
      readerDone = true;
      wakeWriter();
    });

    const stopWaiting = () => wakeWriter();
    this.#wakers.add(stopWaiting);
    try {
      while (!this.#stopped && !readerDone) {
        if (sent - acknowledged + block > window) {
          // The window is full: wait until a block comes back, or the run stops.
          await new Promise<void>((resolve) => (room = resolve));
          continue;
        }
        if (this.#pacer && (!(await this.#paced()) || readerDone)) break;
        const bytes = pattern.slice((origin + sent) % PATTERN_LENGTH, block);
        written.push(performance.now());
        sent += block;
        if (watched.since === 0) watched.since = performance.now();
        await socket.write(bytes);
      }
      // Done sending: what is in flight must still come back, then the server's FIN (timed).
      if (!readerDone) {
        finishing = true;
        watched.since = performance.now();
        await socket.closeWrite();
      }
    } catch (error) {
      socket.close();
      await reading;
      throw readerError ?? error;
    } finally {
      this.#wakers.delete(stopWaiting);
    }
    await reading;
    if (readerError !== undefined) throw readerError;
  }
}

// --- messages ---

/** Message bytes: lowercase letters and digits, never the prefix's first byte (so frames parse). */
function messageAlphabet(prefix: Uint8Array): Uint8Array {
  const chars = utf8("abcdefghijklmnopqrstuvwxyz0123456789");
  return chars.filter((c) => prefix.length === 0 || c !== prefix[0]);
}

/**
 * A message with a pattern particular to its connection, whose first bytes count messages in
 * the alphabet's digits (so a stale echo is caught). It ends with `\n` so line-mode servers
 * answer too.
 */
class SequenceCounter {
  #message: Uint8Array;
  #digits: number;
  #successor = new Uint8Array(256);
  #zero: number;
  #sequence = -1;

  constructor(message: Uint8Array, alphabet: Uint8Array, index: number) {
    this.#message = message;
    for (let i = 0; i < message.length; i++) message[i] = alphabet[(index * 7 + i * 13) % alphabet.length]!;
    if (message.length > 0) message[message.length - 1] = 0x0a;
    this.#digits = Math.min(SEQUENCE_DIGITS, message.length - 1);
    this.#zero = alphabet[0]!;
    for (let i = 0; i < alphabet.length; i++) this.#successor[alphabet[i]!] = alphabet[(i + 1) % alphabet.length]!;
  }

  /** Stamps the next sequence number into the message and returns it (0 first). */
  next(): number {
    const message = this.#message;
    if (++this.#sequence === 0) {
      for (let i = 0; i < this.#digits; i++) message[i] = this.#zero;
      return 0;
    }
    for (let i = this.#digits - 1; i >= 0; i--) {
      const digit = this.#successor[message[i]!]!;
      message[i] = digit;
      if (digit !== this.#zero) break; // no carry
    }
    return this.#sequence;
  }
}

function isEcho(chunk: Uint8Array, prefix: Uint8Array, message: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (chunk[i] !== prefix[i]) return false;
  const offset = prefix.length;
  for (let i = 0; i < message.length; i++) if (chunk[offset + i] !== message[i]) return false;
  return true;
}

function preview(...parts: Uint8Array[]): string {
  const bytes = concatAll(parts);
  const shown = pythonRepr(bytes.subarray(0, 40));
  return bytes.length > 40 ? `${shown}… (${bytes.length} bytes)` : shown;
}

// --- stream mode ---

function blockSize(window: number): number {
  return Math.min(Math.max(Math.floor(window / 2), 1), MAX_BLOCK);
}

/**
 * The stream pattern, laid out four times at every alignment mod 4, each long enough that any
 * block starting inside the pattern is one contiguous slice, so comparisons run four bytes at a time.
 */
class PatternCopies {
  readonly block: number;
  readonly #copies: Uint8Array[] = [];

  constructor(block: number, avoid: number) {
    this.block = block;
    const length = PATTERN_LENGTH + Math.max(block, MAX_BLOCK);
    const base = new Uint8Array(length);
    let x = 0x9e3779b9;
    for (let i = 0; i < PATTERN_LENGTH; i++) {
      // xorshift32
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      let byte = x & 0xff;
      if (byte === avoid) byte = (byte + 1) & 0xff;
      base[i] = byte;
    }
    for (let i = PATTERN_LENGTH; i < length; i++) base[i] = base[i - PATTERN_LENGTH]!;
    for (let shift = 0; shift < 4; shift++) {
      const copy = new Uint8Array(new ArrayBuffer(length + 4), shift, length);
      copy.set(base);
      this.#copies.push(copy);
    }
  }

  /** The `length` pattern bytes from `offset` (which is below the pattern length). */
  slice(offset: number, length: number): Uint8Array {
    return this.#copies[0]!.subarray(offset, offset + length);
  }

  /** How many pattern bytes a comparison at `offset` can cover in one go. */
  span(offset: number): number {
    return this.#copies[0]!.length - offset;
  }

  /**
   * Compares `length` bytes of `chunk` from `at` with the pattern from `offset`; returns -1
   * when equal, else the index (from `at`) of the first difference.
   */
  compare(chunk: Uint8Array, at: number, offset: number, length: number): number {
    const address = (chunk.byteOffset + at) & 3;
    const copy = this.#copies[(address - offset) & 3]!;
    let i = 0;
    // Head bytes until both sides are 4-aligned (they are at the same alignment).
    while (i < length && ((chunk.byteOffset + at + i) & 3) !== 0) {
      if (chunk[at + i] !== copy[offset + i]) return i;
      i++;
    }
    const words = (length - i) >>> 2;
    if (words > 8) {
      const a = new Uint32Array(chunk.buffer, chunk.byteOffset + at + i, words);
      const b = new Uint32Array(copy.buffer, copy.byteOffset + offset + i, words);
      for (let k = 0; k < words; k++) {
        if (a[k] !== b[k]) {
          for (let j = i + k * 4;; j++) if (chunk[at + j] !== copy[offset + j]) return j;
        }
      }
      i += words * 4;
    }
    for (; i < length; i++) if (chunk[at + i] !== copy[offset + i]) return i;
    return -1;
  }
}

/**
 * Checks an echoed stream in order: raw, or as `prefix + piece` frames (the pattern never
 * holds the prefix's first byte, so a frame can start only where that byte appears).
 */
class StreamVerifier {
  received = 0;
  #pattern: PatternCopies;
  #origin: number;
  #prefix: Uint8Array;
  #what: string;
  /** Prefix bytes matched of the frame being read; -1 between frames (payload). */
  #inPrefix: number;
  #payloadInFrame = 0;

  constructor(pattern: PatternCopies, origin: number, prefix: Uint8Array, what: string) {
    this.#pattern = pattern;
    this.#origin = origin;
    this.#prefix = prefix;
    this.#what = what;
    this.#inPrefix = prefix.length > 0 ? 0 : -1;
  }

  push(chunk: Uint8Array): void {
    const prefix = this.#prefix;
    let j = 0;
    while (j < chunk.length) {
      if (this.#inPrefix >= 0) {
        while (this.#inPrefix < prefix.length && j < chunk.length) {
          if (chunk[j] !== prefix[this.#inPrefix]) {
            throw new Mismatch(
              `${this.#what}: expected the prefix ${pythonRepr(prefix)} at echoed byte ${this.received}, got ${
                preview(chunk.subarray(j - Math.min(j, this.#inPrefix)))
              }`,
            );
          }
          this.#inPrefix++;
          j++;
        }
        if (this.#inPrefix === prefix.length) {
          this.#inPrefix = -1;
          this.#payloadInFrame = 0;
        }
        continue;
      }
      let end = chunk.length;
      if (prefix.length > 0) {
        const next = chunk.indexOf(prefix[0]!, j);
        if (next !== -1) end = next;
      }
      this.#payload(chunk, j, end);
      j = end;
      if (j < chunk.length) {
        if (this.#payloadInFrame === 0) {
          throw new Mismatch(`${this.#what}: an empty frame at echoed byte ${this.received}`);
        }
        this.#inPrefix = 0;
      }
    }
  }

  #payload(chunk: Uint8Array, from: number, to: number): void {
    let at = from;
    while (at < to) {
      const offset = (this.#origin + this.received) % PATTERN_LENGTH;
      const length = Math.min(to - at, this.#pattern.span(offset));
      const bad = this.#pattern.compare(chunk, at, offset, length);
      if (bad !== -1) {
        const position = this.received + bad;
        throw new Mismatch(
          `${this.#what}: echoed byte ${position} is ${hex(chunk[at + bad]!)}, expected ${
            hex(this.#pattern.slice((this.#origin + position) % PATTERN_LENGTH, 1)[0]!)
          }`,
        );
      }
      at += length;
      this.received += length;
      this.#payloadInFrame += length;
    }
  }
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}
