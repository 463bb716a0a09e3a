/**
 * The run loop: opens the connections, drives each in its mode, times and verifies every
 * operation, and builds the report.
 *
 * @module
 */

import { TIMED_OUT, within } from "../_timers.ts";
import { errorMessage } from "../log.ts";
import { ConnectError, looksLikeTlsRecord, ServerSpeaksTlsError } from "../client/connect_errors.ts";
import { proxyHeaderFor } from "../client/stream.ts";
import type { Address, StreamSocket } from "../types.ts";
import { ProxyHeaderTemplate } from "../proxy_protocol/mod.ts";
import { checkDescriptors } from "./descriptors.ts";
import { type BenchOptions, type Settings, settle } from "./options.ts";
import type { BenchReport } from "./report.ts";
import type { Histogram } from "./_histogram.ts";
import { Pacer, RunStop } from "./_pacing.ts";
import { BenchTally } from "./_tally.ts";
import { connectLoop, type ModeRun, pingpong, stream, type Watched } from "./_modes.ts";
import { blockSize, messageAlphabet, PatternCopies } from "./_verify.ts";

// Connections opened at once when no rate is set (a burst beyond the listen backlog would be
// dropped and retried a second later by the kernel).
const OPEN_CONCURRENCY = 128;
// Pause before a connection that failed is opened again.
const RETRY_MS = 100;

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
 * import { runBench } from "./mod.ts";
 * import { transport } from "../adapters/deno.ts";
 *
 * const report = await runBench({ transport, port: 50007, conns: 2, rate: 10, durationMs: 500 });
 * console.log(report.operations, report.latencyMs.p99, report.mismatches);
 * ```
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const settings = settle(options);
  checkDescriptors(settings, options.fileDescriptors?.());
  return (await new BenchRun(settings, options).run()).report;
}

/** A run's report with its latency histograms (for `--hdr` and for merging workers' runs exactly). */
export interface DetailedRun {
  report: BenchReport;
  latency: Histogram;
  /** Under a rate: latency from when each operation was sent. */
  uncorrected: Histogram | undefined;
}

/** {@linkcode runBench}, with the histograms. */
export async function runBenchDetailed(options: BenchOptions): Promise<DetailedRun> {
  const settings = settle(options);
  checkDescriptors(settings, options.fileDescriptors?.());
  return await new BenchRun(settings, options).run();
}

class BenchRun implements ModeRun {
  readonly #s: Settings;
  readonly #options: BenchOptions;
  readonly #tally: BenchTally;
  readonly #watched = new Set<Watched>();
  readonly #end = new RunStop();
  readonly alphabet: Uint8Array;
  readonly pattern: PatternCopies | undefined;
  #proxyTemplate: ProxyHeaderTemplate | undefined; // connect mode with proxyHeader: see withProxyHeader
  /** What ends the run at once: there is nothing to measure (a plain client at a TLS server). */
  #fatal: Error | undefined;

  get settings(): Settings {
    return this.#s;
  }

  get stopped(): boolean {
    return this.#end.stopped;
  }

  get wakers(): Set<() => void> {
    return this.#end.wakers;
  }

  constructor(settings: Settings, options: BenchOptions) {
    this.#s = settings;
    this.#options = options;
    this.#tally = new BenchTally(settings.rate !== undefined);
    this.alphabet = messageAlphabet(settings.prefix);
    if (settings.mode === "stream") {
      this.pattern = new PatternCopies(blockSize(settings.size), settings.prefix[0] ?? -1);
    }
  }

  async run(): Promise<DetailedRun> {
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
        first = await this.connect();
      } catch (error) {
        // A connect error names the address itself.
        if (error instanceof ConnectError) throw error;
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
      if (this.#fatal !== undefined) throw this.#fatal;
      // The last, shorter interval, unless it is a sliver.
      if (this.#tally.intervalMs >= s.intervalMs / 4) this.#emitInterval();
      const report = this.#tally.report(s);
      return {
        report,
        latency: this.#tally.latency,
        uncorrected: this.#tally.uncorrected,
      };
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
      const gapMs = Math.min(1000 / s.rate, s.durationMs / 4 / s.conns);
      this.#startClock();
      for (let i = 0; i < s.conns; i++) loops.push(this.#loop(i, i === 0 ? first : undefined, i * gapMs));
      return loops;
    }
    const sockets: (StreamSocket | null)[] = [first];
    if (s.mode !== "connect") {
      // Open every connection first, a bounded number at a time, then start the clock.
      const opener = async (from: number) => {
        for (let i = from; i < s.conns && !this.#end.stopped; i += OPEN_CONCURRENCY) {
          try {
            sockets[i] = await this.connect();
          } catch (error) {
            this.#tally.error(error);
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
    this.#tally.startClock();
  }

  #stop(): void {
    this.#end.stop();
  }

  /** Waits `ms`, or less if the run stops first. */
  #pause(ms: number): Promise<void> {
    return this.#end.pause(ms);
  }

  /**
   * Waits for the connection's next slot; resolves with when it was due (the start of the
   * operation's latency), or undefined when the run stopped meanwhile. Timers may fire a little
   * early (Bun rounds fractions of a millisecond down): an operation sent before its slot counts
   * from when it was sent, as nothing was held back.
   */
  async paced(pacer: Pacer): Promise<number | undefined> {
    if (this.#end.stopped) return undefined;
    const due = pacer.take();
    await this.#pause(due - performance.now());
    return this.#end.stopped ? undefined : due;
  }

  #emitInterval(): void {
    const interval = this.#tally.interval();
    try {
      this.#options.onInterval?.(interval);
    } catch {
      // A failing observer must not stop the run.
    }
  }

  // --- bookkeeping ---

  done(due: number, sent: number, bytes: number): void {
    this.#tally.done(due, sent, bytes);
  }

  /**
   * Called with a connection's first reply when it failed verification: a plain client whose reply
   * is a TLS record reached a TLS server, which ends the run (off the hot path: only on failure).
   */
  checkForTls(reply: Uint8Array | string): void {
    if (this.#s.connectOptions?.tls !== undefined) return;
    const bytes = typeof reply === "string" ? Uint8Array.from(reply.slice(0, 3), (c) => c.charCodeAt(0)) : reply;
    if (!looksLikeTlsRecord(bytes)) return;
    this.#fatal ??= new ServerSpeaksTlsError(this.#s.target);
    this.#stop();
    throw this.#fatal;
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

  /** Opens a connection; with `proxyHeader`, writes the PROXY header on it unless `sendHeader` is false. */
  async connect(sendHeader = true): Promise<StreamSocket> {
    const connecting = this.#s.transport.connect(this.#s.endpoint, this.#s.connectOptions);
    const socket = await within(connecting, this.#s.timeoutMs);
    if (socket === TIMED_OUT) {
      connecting.then((late) => late.close(), () => {});
      throw new Error(`Connecting timed out after ${this.#s.timeoutMs / 1000} s`);
    }
    this.#tally.opened(socket.closed);
    if (this.#s.proxyHeader && sendHeader) {
      await socket.write(proxyHeaderFor(socket, this.#s.proxyHeader)).catch((error) => {
        socket.close();
        throw error;
      });
    }
    return socket;
  }

  // --- connection loops ---

  /**
   * One connection slot: runs the mode's work until the run stops, opening a new connection
   * (after a pause) when one fails. `initial` is its first socket; `null` when opening it failed.
   */
  async #loop(index: number, initial: StreamSocket | null | undefined, delayMs: number): Promise<void> {
    await this.#pause(delayMs);
    // Each connection's own schedule: rate / conns operations per second (as wrk2).
    const pacer = this.#s.rate === undefined ? undefined : new Pacer(this.#s.rate / this.#s.conns);
    const watched: Watched = { socket: initial ?? undefined, since: 0, timedOut: false, pacer };
    this.#watched.add(watched);
    let retry = initial === null;
    try {
      while (!this.#end.stopped) {
        if (retry) await this.#pause(RETRY_MS);
        if (this.#end.stopped) break;
        retry = false;
        watched.since = 0;
        watched.timedOut = false;
        try {
          if (this.#s.mode === "connect") {
            await connectLoop(this, index, watched);
          } else {
            watched.socket ??= await this.connect();
            if (this.#s.mode === "pingpong") await pingpong(this, index, watched.socket, watched);
            else await stream(this, index, watched.socket, watched);
          }
        } catch (error) {
          this.#tally.error(watched.timedOut ? new Error(`No reply within ${this.#s.timeoutMs / 1000} s`) : error);
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

  /**
   * A fresh connection's PROXY header followed by its first bytes, in one buffer. Encoded per
   * connection, as a proxy does, but the way a proxy can afford: from a template made once for
   * the local and remote addresses, with only the source port written in.
   */
  withProxyHeader(socket: StreamSocket, bytes: Uint8Array): Uint8Array {
    const init = this.#s.proxyHeader!;
    const source = init.source ?? socket.localAddr;
    const destination = init.destination ?? socket.remoteAddr;
    let template = this.#proxyTemplate;
    if (
      template === undefined || !sameAddress(template.init.source, source, false) ||
      !sameAddress(template.init.destination, destination, true)
    ) {
      template = this.#proxyTemplate = new ProxyHeaderTemplate({ ...init, source, destination });
    }
    return template.encode(source.transport === "tcp" ? source.port : 0, bytes);
  }
}

// Same host (and, with `port`, the same port), or the same unix path.
function sameAddress(a: Address | undefined, b: Address, port: boolean): boolean {
  if (a === undefined || a.transport !== b.transport) return false;
  if (a.transport === "unix") return a.path === (b as typeof a).path;
  return a.hostname === (b as typeof a).hostname && (!port || a.port === (b as typeof a).port);
}
