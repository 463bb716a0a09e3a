/**
 * The load generator over UDP (`echogate bench --udp`): each socket sends a numbered datagram
 * and waits for its echo before sending the next (pingpong). A datagram whose echo does not
 * come within `timeoutMs` counts as lost and the socket goes on; an echo arriving after that
 * counts as reordered (and no longer lost), a second echo of one datagram as a duplicate. Every
 * echo is checked byte for byte. Loss is a result, not a failure: a rate-limited server shows
 * its limits as loss.
 *
 * @module
 */

import { utf8 } from "../_bytes.ts";
import { formatAddress } from "../address.ts";
import { isSpecificIp } from "../address.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "../echo/stream.ts";
import { errorMessage } from "../log.ts";
import type { DatagramSocket, Transport } from "../types.ts";
import { Histogram, round3 } from "./_histogram.ts";
import { Pacer, RunStop } from "./_pacing.ts";
import { preview } from "./_verify.ts";
import { DEFAULT_BENCH_CONNS, DEFAULT_BENCH_DURATION_MS, DEFAULT_BENCH_MESSAGE_SIZE } from "./options.ts";
import type { BenchInterval, LatencyMs } from "./report.ts";

/** Default wait for one echo before the datagram counts as lost, in ms. */
export const DEFAULT_UDP_BENCH_TIMEOUT_MS = 500;

// Every datagram starts with its sequence number in this many ASCII digits.
const SEQUENCE_DIGITS = 12;
// Timed-out sequence numbers remembered per socket, to tell a late echo from a duplicate.
const LATE_WINDOW = 4096;

/**
 * What to drive over UDP and how hard.
 *
 * @example
 * ```ts
 * import type { DatagramBenchOptions } from "./mod.ts";
 *
 * const options: Omit<DatagramBenchOptions, "transport"> = { port: 50007, conns: 8, rate: 1000 };
 * ```
 */
export interface DatagramBenchOptions {
  /** The runtime's socket API; it must have `bindDatagram`. */
  transport: Transport;
  /** The server: an IP address or a name. @default {"localhost"} */
  hostname?: string;
  /** The server's port. @default {50007} */
  port?: number;
  /** Sockets, each with one datagram in flight. @default {50} */
  conns?: number;
  /** Datagram size in bytes, at least 12 (the sequence number). @default {64} */
  size?: number;
  /** How long to run, in ms. @default {5000} */
  durationMs?: number;
  /** What the server puts before each echo; `""` for a raw server. @default {"Echo=>"} */
  prefix?: string | Uint8Array;
  /** At most this many datagrams per second in total. */
  rate?: number;
  /** How long to wait for an echo before counting the datagram lost, in ms. @default {500} */
  timeoutMs?: number;
  /** How often `onInterval` is called, in ms. @default {1000} */
  intervalMs?: number;
  /** Called once per interval. */
  onInterval?: (interval: DatagramBenchInterval) => void;
  /** Stops the run early; the report covers what ran. */
  signal?: AbortSignal;
}

/**
 * One interval of a UDP run: the TCP figures plus the datagrams lost in it.
 *
 * @example
 * ```ts
 * import type { DatagramBenchInterval } from "./mod.ts";
 *
 * const show = (i: DatagramBenchInterval) => `${i.opsPerS.toFixed(0)} rt/s, ${i.lost} lost`;
 * ```
 */
export interface DatagramBenchInterval extends BenchInterval {
  /** Datagrams that timed out in this interval (a late echo later does not change it). */
  lost: number;
}

/**
 * The outcome of a UDP run (the `--json` object). `operations` are echoes received in time
 * and verified; `lost` is `sent - operations - reordered` at the end.
 *
 * @example
 * ```ts
 * import type { DatagramBenchReport } from "./mod.ts";
 *
 * const ok = (r: DatagramBenchReport) => r.mismatches === 0 && r.lossRate < 0.01;
 * ```
 */
export interface DatagramBenchReport {
  /** Always `"pingpong"`. */
  mode: "pingpong";
  /** Always `"udp"`. */
  transport: "udp";
  /** The server, printable. */
  target: string;
  /** Always `"round trip"`. */
  operation: "round trip";
  /** Sockets. */
  conns: number;
  /** Datagram size. */
  sizeBytes: number;
  /** The prefix expected before each echo (decoded as UTF-8). */
  prefix: string;
  /** The pace cap in datagrams per second, or `null`. */
  rateLimitPerS: number | null;
  /** Seconds measured. */
  durationS: number;
  /** Datagrams sent. */
  sent: number;
  /** Echoes received in time and verified. */
  operations: number;
  /** `operations` per second. */
  opsPerS: number;
  /** Datagrams never echoed. */
  lost: number;
  /** `lost / sent`. */
  lossRate: number;
  /** Echoes that came after their timeout (the socket had moved on): out of order. */
  reordered: number;
  /** Second (or later) echoes of one datagram. */
  duplicates: number;
  /** Echoes that differ from what was sent. */
  mismatches: number;
  /** Socket errors (such as ECONNREFUSED: nothing listens there). */
  errors: number;
  /** Payload bytes echoed and verified (prefixes not counted). */
  bytesEchoed: number;
  /** Payload megabytes (10^6 bytes) echoed per second. */
  throughputMBps: number;
  /** Round-trip latency of the echoes received in time. */
  latencyMs: LatencyMs;
  /** The first error, if any. */
  firstError?: string;
  /** The first mismatch, described, if any. */
  firstMismatch?: string;
}

/**
 * Runs the UDP load generator and resolves with its report. Loss, reordering and duplicates
 * are counted; the promise rejects only for bad options or a transport without datagrams.
 *
 * @param options The target and the load.
 * @returns The report.
 *
 * @example
 * ```ts ignore
 * import { runDatagramBench } from "./mod.ts";
 * import { transport } from "../../adapters/node.ts";
 *
 * const report = await runDatagramBench({ transport, port: 50007, conns: 4, durationMs: 500 });
 * console.log(report.opsPerS, report.lossRate, report.latencyMs.p99);
 * ```
 */
export async function runDatagramBench(options: DatagramBenchOptions): Promise<DatagramBenchReport> {
  const { transport } = options;
  if (!transport.bindDatagram) throw new TypeError(`The ${transport.runtime} transport has no datagram sockets`);
  const conns = options.conns ?? DEFAULT_BENCH_CONNS;
  const size = options.size ?? DEFAULT_BENCH_MESSAGE_SIZE;
  const durationMs = options.durationMs ?? DEFAULT_BENCH_DURATION_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_UDP_BENCH_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? 1000;
  if (!(Number.isSafeInteger(conns) && conns >= 1)) throw new RangeError("conns must be a positive integer");
  if (!(Number.isSafeInteger(size) && size >= SEQUENCE_DIGITS && size <= 65_000)) {
    throw new RangeError(`size must be an integer from ${SEQUENCE_DIGITS} to 65000 for UDP`);
  }
  if (!(durationMs >= 0)) throw new RangeError("durationMs must be a non-negative number");
  if (options.rate !== undefined && !(options.rate > 0)) throw new RangeError("rate must be a positive number");
  if (!(timeoutMs > 0)) throw new RangeError("timeoutMs must be a positive number");
  const name = options.hostname ?? "localhost";
  const server = isSpecificIp(name) ? name : await transport.lookup?.(name) ?? name;
  const port = options.port ?? DEFAULT_ECHO_PORT;
  const prefix = typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX);
  const run = new Run(options, server, port, prefix, conns, size, timeoutMs);
  return await run.start(durationMs, intervalMs);
}

class Run {
  readonly total = new Histogram();
  readonly interval = new Histogram();
  sent = 0;
  operations = 0;
  lostNow = 0; // timed out, not (yet) arrived late
  timedOut = 0;
  reordered = 0;
  duplicates = 0;
  mismatches = 0;
  errors = 0;
  firstError: string | undefined;
  firstMismatch: string | undefined;
  readonly #end = new RunStop();
  readonly senders: Sender[] = [];
  readonly pacer: Pacer | undefined;
  intervalBase = { at: 0, operations: 0, errors: 0, mismatches: 0, timedOut: 0 };

  constructor(
    readonly options: DatagramBenchOptions,
    readonly server: string,
    readonly port: number,
    readonly prefix: Uint8Array,
    readonly conns: number,
    readonly size: number,
    readonly timeoutMs: number,
  ) {
    this.pacer = options.rate === undefined ? undefined : new Pacer(options.rate);
  }

  async start(durationMs: number, intervalMs: number): Promise<DatagramBenchReport> {
    const stop = () => this.stop();
    const signal = this.options.signal;
    signal?.addEventListener("abort", stop);
    const sockets = this.senders;
    try {
      for (let i = 0; i < this.conns; i++) sockets.push(await Sender.open(this));
      const startedAt = performance.now();
      this.intervalBase.at = startedAt;
      const ticker = setInterval(() => this.emitInterval(), intervalMs);
      const watchdog = setInterval(() => {
        const now = performance.now();
        for (const sender of sockets) sender.expire(now);
      }, Math.max(1, Math.min(100, this.timeoutMs / 4)));
      const stopTimer = setTimeout(stop, durationMs);
      if (signal?.aborted) this.stop();
      try {
        await Promise.all(sockets.map((s) => s.loop()));
      } finally {
        clearInterval(watchdog);
        clearInterval(ticker);
        clearTimeout(stopTimer);
      }
      if (performance.now() - this.intervalBase.at >= intervalMs / 4) this.emitInterval();
      const durationS = (performance.now() - startedAt) / 1000;
      // Echoes still in flight at the stop get a last chance: the server may just be slow.
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.timeoutMs, 200)));
      return this.report(durationS);
    } finally {
      this.stop();
      signal?.removeEventListener("abort", stop);
      await Promise.all(sockets.map((s) => s.socket.close()));
    }
  }

  get stopped(): boolean {
    return this.#end.stopped;
  }

  stop(): void {
    this.#end.stop();
    for (const sender of this.senders) sender.expire(performance.now());
  }

  error(error: unknown): void {
    this.errors++;
    this.firstError ??= errorMessage(error);
  }

  mismatch(description: string): void {
    this.mismatches++;
    this.firstMismatch ??= description;
  }

  emitInterval(): void {
    const now = performance.now();
    const base = this.intervalBase;
    const intervalS = (now - base.at) / 1000;
    const operations = this.operations - base.operations;
    if (this.options.onInterval && intervalS > 0) {
      this.options.onInterval({
        elapsedS: round3((now - (base.at - 0)) / 1000),
        intervalS: round3(intervalS),
        operations,
        opsPerS: operations / intervalS,
        throughputMBps: (operations * this.size) / intervalS / 1e6,
        latencyMs: this.interval.summary(),
        errors: this.errors - base.errors,
        mismatches: this.mismatches - base.mismatches,
        connections: this.conns,
        lost: this.timedOut - base.timedOut,
      });
    }
    this.interval.reset();
    this.intervalBase = {
      at: now,
      operations: this.operations,
      errors: this.errors,
      mismatches: this.mismatches,
      timedOut: this.timedOut,
    };
  }

  report(durationS: number): DatagramBenchReport {
    const lost = this.sent - this.operations - this.reordered;
    return {
      mode: "pingpong",
      transport: "udp",
      target: formatAddress({ transport: "udp", hostname: this.server, port: this.port }),
      operation: "round trip",
      conns: this.conns,
      sizeBytes: this.size,
      prefix: new TextDecoder().decode(this.prefix),
      rateLimitPerS: this.options.rate ?? null,
      durationS: round3(durationS),
      sent: this.sent,
      operations: this.operations,
      opsPerS: durationS > 0 ? this.operations / durationS : 0,
      lost,
      lossRate: this.sent > 0 ? lost / this.sent : 0,
      reordered: this.reordered,
      duplicates: this.duplicates,
      mismatches: this.mismatches,
      errors: this.errors,
      bytesEchoed: this.operations * this.size,
      throughputMBps: durationS > 0 ? (this.operations * this.size) / durationS / 1e6 : 0,
      latencyMs: this.total.summary(),
      ...(this.firstError === undefined ? {} : { firstError: this.firstError }),
      ...(this.firstMismatch === undefined ? {} : { firstMismatch: this.firstMismatch }),
    };
  }

  /** Waits `ms`, or less if the run stops first. */
  pause(ms: number): Promise<void> {
    return this.#end.pause(ms);
  }
}

/** One socket: one datagram in flight, its echo awaited. */
class Sender {
  socket!: DatagramSocket;
  #run: Run;
  #seq = 0; // the datagram in flight (sequence numbers start at 1)
  #sentAt = 0;
  #answered: ((inTime: boolean) => void) | undefined;
  #late = new Set<number>(); // timed out, echo not seen yet
  #uncounted = 0; // in flight when the run stopped

  private constructor(run: Run) {
    this.#run = run;
  }

  static async open(run: Run): Promise<Sender> {
    const sender = new Sender(run);
    sender.socket = await run.options.transport.bindDatagram!({
      hostname: run.server.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    }, {
      onMessage: (bytes, hostname, port) => sender.#onEcho(bytes, hostname, port),
      onError: (error) => run.error(error),
    });
    return sender;
  }

  async loop(): Promise<void> {
    const run = this.#run;
    while (!run.stopped) {
      // The pacer hands out due times on one schedule for the whole run (rate in total).
      if (run.pacer) await run.pause(run.pacer.take() - performance.now());
      if (run.stopped) break;
      const seq = ++this.#seq;
      const message = datagram(seq, run.size);
      while (!this.socket.send(message, run.server, run.port)) {
        await new Promise<void>((resolve) => this.socket.onDrain(resolve));
        if (run.stopped) return;
      }
      run.sent++;
      this.#sentAt = performance.now();
      // No timer per datagram: the run's watchdog ends waits past the timeout (expire()).
      const answered = await new Promise<boolean>((resolve) => (this.#answered = resolve));
      this.#answered = undefined;
      if (!answered && run.stopped) {
        // In flight at the stop: not given its chance, so neither counted sent nor lost.
        run.sent--;
        this.#uncounted = seq;
        break;
      }
      if (!answered) {
        run.timedOut++;
        this.#late.add(seq);
        if (this.#late.size > LATE_WINDOW) this.#late.delete(this.#late.values().next().value!);
      }
    }
  }

  /** Ends the wait for an echo that is overdue at `now` (or any wait, once the run stopped). */
  expire(now: number): void {
    if (this.#answered && (this.#run.stopped || now - this.#sentAt >= this.#run.timeoutMs)) this.#answered(false);
  }

  #onEcho(bytes: Uint8Array, hostname: string, port: number): void {
    const run = this.#run;
    if (port !== run.port || !sameHost(hostname, run.server)) return; // not the server's
    const seq = verify(bytes, run.prefix, run.size);
    if (typeof seq === "string") return run.mismatch(seq);
    if (seq === this.#seq && this.#answered) {
      const ms = performance.now() - this.#sentAt;
      run.total.record(ms);
      run.interval.record(ms);
      run.operations++;
      this.#answered(true);
    } else if (seq === this.#uncounted) {
      // its echo, after the stop: ignored
    } else if (this.#late.delete(seq)) {
      run.reordered++;
    } else if (seq <= this.#seq) {
      run.duplicates++;
    } else {
      run.mismatch(`an echo of datagram ${seq}, never sent (last sent: ${this.#seq})`);
    }
  }
}

/** Datagram `seq`: its number in 12 digits, then bytes that depend on it. */
function datagram(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  const digits = String(seq).padStart(SEQUENCE_DIGITS, "0");
  for (let i = 0; i < SEQUENCE_DIGITS; i++) bytes[i] = digits.charCodeAt(i);
  for (let i = SEQUENCE_DIGITS; i < size; i++) bytes[i] = (seq * 31 + i * 7) & 0xff;
  return bytes;
}

/** The sequence number of a correct echo, or a description of what is wrong with it. */
function verify(echo: Uint8Array, prefix: Uint8Array, size: number): number | string {
  if (echo.length !== prefix.length + size) {
    return `an echo of ${echo.length} bytes, expected ${prefix.length + size}: ${preview(echo)}`;
  }
  for (let i = 0; i < prefix.length; i++) {
    if (echo[i] !== prefix[i]) return `an echo without the prefix: ${preview(echo)}`;
  }
  let seq = 0;
  for (let i = 0; i < SEQUENCE_DIGITS; i++) {
    const digit = echo[prefix.length + i]! - 0x30;
    if (digit < 0 || digit > 9) return `an echo without a sequence number: ${preview(echo)}`;
    seq = seq * 10 + digit;
  }
  for (let i = SEQUENCE_DIGITS; i < size; i++) {
    if (echo[prefix.length + i] !== ((seq * 31 + i * 7) & 0xff)) {
      return `the echo of datagram ${seq} differs at byte ${i}: ${preview(echo)}`;
    }
  }
  return seq;
}

function sameHost(a: string, b: string): boolean {
  const plain = (address: string) => address.startsWith("::ffff:") ? address.slice(7) : address;
  return plain(a) === plain(b);
}
