/**
 * The run loop: opens the connections, drives each in its mode, times and verifies every
 * operation, and builds the report.
 *
 * @module
 */

import { concatAll, pythonRepr, utf8 } from "../_bytes.ts";
import { TIMED_OUT, within } from "../_timers.ts";
import { errorMessage } from "../log.ts";
import { ConnectError, looksLikeTlsRecord, ServerSpeaksTlsError } from "../connect_errors.ts";
import { echoReplyState, proxyHeaderFor } from "../client.ts";
import { WELCOME } from "../gate.ts";
import type { Address, StreamSocket } from "../types.ts";
import { ProxyHeaderTemplate } from "../proxy_protocol/mod.ts";
import { checkDescriptors } from "./descriptors.ts";
import { type BenchOptions, type Settings, settle } from "./options.ts";
import type { BenchInterval, BenchReport } from "./report.ts";
import { Histogram, round3 } from "./_histogram.ts";
import { Pacer } from "./_pacing.ts";
import {
  blockSize,
  isEcho,
  messageAlphabet,
  Mismatch,
  PATTERN_LENGTH,
  PatternCopies,
  preview,
  SequenceCounter,
  StreamVerifier,
} from "./_verify.ts";

// Connections opened at once when no rate is set (a burst beyond the listen backlog would be
// dropped and retried a second later by the kernel).
const OPEN_CONCURRENCY = 128;
// The longest message header carrying the sequence number.
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

/** A connection's wait for the server, watched for the timeout. */
interface Watched {
  socket: StreamSocket | undefined;
  /** `performance.now()` when the current wait began, or 0 when not waiting. */
  since: number;
  timedOut: boolean;
  /** This connection's schedule, under a rate. */
  pacer: Pacer | undefined;
}

class BenchRun {
  readonly #s: Settings;
  readonly #options: BenchOptions;
  readonly #total = new Histogram();
  readonly #interval = new Histogram();
  readonly #totalUncorrected = new Histogram();
  readonly #intervalUncorrected = new Histogram();
  readonly #watched = new Set<Watched>();
  readonly #wakers = new Set<() => void>();
  readonly #alphabet: Uint8Array;
  readonly #pattern: PatternCopies | undefined;
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
  #proxyTemplate: ProxyHeaderTemplate | undefined; // connect mode with proxyHeader: see #withProxyHeader
  /** What ends the run at once: there is nothing to measure (a plain client at a TLS server). */
  #fatal: Error | undefined;

  constructor(settings: Settings, options: BenchOptions) {
    this.#s = settings;
    this.#options = options;
    this.#alphabet = messageAlphabet(settings.prefix);
    if (settings.mode === "stream") {
      this.#pattern = new PatternCopies(blockSize(settings.size), settings.prefix[0] ?? -1);
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
        first = await this.#connect();
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
      if (performance.now() - this.#intervalBase.at >= s.intervalMs / 4) this.#emitInterval();
      const report = this.#report();
      return {
        report,
        latency: this.#total,
        uncorrected: s.rate === undefined ? undefined : this.#totalUncorrected,
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

  /**
   * Waits for the connection's next slot; resolves with when it was due (the start of the
   * operation's latency), or undefined when the run stopped meanwhile. Timers may fire a little
   * early (Bun rounds fractions of a millisecond down): an operation sent before its slot counts
   * from when it was sent, as nothing was held back.
   */
  async #paced(pacer: Pacer): Promise<number | undefined> {
    if (this.#stopped) return undefined;
    const due = pacer.take();
    await this.#pause(due - performance.now());
    return this.#stopped ? undefined : due;
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
    this.#totalUncorrected.merge(this.#intervalUncorrected);
    this.#intervalUncorrected.reset();
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
    this.#totalUncorrected.merge(this.#intervalUncorrected);
    this.#intervalUncorrected.reset();
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
      uncorrectedLatencyMs: s.rate === undefined ? null : this.#totalUncorrected.summary(),
      workers: 1,
      errors: this.#errors,
      mismatches: this.#mismatches,
      connectionsOpened: this.#opened,
    };
    if (this.#firstError !== undefined) report.firstError = this.#firstError;
    if (this.#firstMismatch !== undefined) report.firstMismatch = this.#firstMismatch;
    return report;
  }

  // --- bookkeeping ---

  /**
   * Counts an operation done now: sent at `sent`, due at `due` by its schedule (the same
   * without a rate). Latency counts from `due`; from `sent` too, under a rate.
   */
  #done(due: number, sent: number, bytes: number): void {
    const now = performance.now();
    this.#operations++;
    this.#bytes += bytes;
    this.#interval.record(now - due);
    if (this.#s.rate !== undefined) this.#intervalUncorrected.record(now - sent);
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

  /**
   * Called with a connection's first reply when it failed verification: a plain client whose reply
   * is a TLS record reached a TLS server, which ends the run (off the hot path: only on failure).
   */
  #checkForTls(reply: Uint8Array | string): void {
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
  async #connect(sendHeader = true): Promise<StreamSocket> {
    const connecting = this.#s.transport.connect(this.#s.endpoint, this.#s.connectOptions);
    const socket = await within(connecting, this.#s.timeoutMs);
    if (socket === TIMED_OUT) {
      connecting.then((late) => late.close(), () => {});
      throw new Error(`Connecting timed out after ${this.#s.timeoutMs / 1000} s`);
    }
    this.#opened++;
    this.#open++;
    socket.closed.then(() => this.#open--);
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
      const due = watched.pacer ? await this.#paced(watched.pacer) : 0;
      if (due === undefined) return;
      // Safe to rewrite the buffer: the previous message was fully echoed, so it was sent.
      const sequence = counter.next();
      const started = performance.now();
      watched.since = started;
      await socket.write(message);
      const chunk = await socket.read();
      if (watched.timedOut) throw new Error(`No reply within ${this.#s.timeoutMs / 1000} s`);
      // The usual case, checked inline: the whole echo in one frame, in one chunk.
      if (chunk === null || chunk.length !== expected || !isEcho(chunk, prefix, message)) {
        await this.#readEcho(
          socket,
          watched,
          message,
          chunk,
          () => `connection ${index}, round trip ${sequence}`,
          sequence === 0,
        );
      }
      watched.since = 0;
      this.#done(watched.pacer ? Math.min(due, started) : started, started, message.length);
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
    firstReply: boolean,
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
          if (firstReply) this.#checkForTls(reply);
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
      const due = watched.pacer ? await this.#paced(watched.pacer) : 0;
      if (due === undefined) return;
      const sequence = counter.next();
      const started = performance.now();
      // The slot's first socket may already be open (the run's first contact).
      // A fresh connection's PROXY header goes out with its first bytes, in one write, as a proxy
      // that already holds the client's data sends it (a separate small write would meet Nagle's
      // algorithm and the server's delayed ACK).
      const fresh = watched.socket === undefined && this.#s.proxyHeader !== undefined;
      const socket = watched.socket ?? await this.#connect(false);
      const first = (bytes: Uint8Array) => fresh ? this.#withProxyHeader(socket, bytes) : bytes;
      watched.socket = socket;
      watched.since = performance.now();
      if (knock) {
        await socket.write(first(knock));
        const reply = await this.#readToEnd(socket, watched);
        if (reply !== WELCOME) {
          this.#checkForTls(reply);
          throw new Mismatch(
            `connection ${index}, knock ${sequence}: expected '${WELCOME}', got ${pythonRepr(utf8(reply))}`,
          );
        }
      } else {
        await socket.write(first(message));
        await this.#readEcho(
          socket,
          watched,
          message,
          undefined,
          () => `connection ${index}, exchange ${sequence}`,
          true,
        );
      }
      watched.since = 0;
      socket.close();
      watched.socket = undefined;
      this.#done(watched.pacer ? Math.min(due, started) : started, started, message.length);
    }
  }

  /**
   * A fresh connection's PROXY header followed by its first bytes, in one buffer. Encoded per
   * connection, as a proxy does, but the way a proxy can afford: from a template made once for
   * the local and remote addresses, with only the source port written in.
   */
  #withProxyHeader(socket: StreamSocket, bytes: Uint8Array): Uint8Array {
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
    const dues: number[] = []; // under a rate, when each was due
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
        try {
          verifier.push(chunk);
        } catch (error) {
          if (verifier.received === 0) this.#checkForTls(chunk);
          throw error;
        }
        if (verifier.received > sent) throw new Mismatch(`connection ${index}: more bytes echoed than sent`);
        // The watchdog times a wait only while bytes are in flight.
        const now = performance.now();
        watched.since = verifier.received < sent || finishing ? now : 0;
        if (acknowledged + block <= verifier.received) {
          while (acknowledged + block <= verifier.received) {
            const sentAt = written[writtenHead]!;
            this.#done(watched.pacer ? dues[writtenHead]! : sentAt, sentAt, block);
            writtenHead++;
            acknowledged += block;
          }
          if (writtenHead > 1024) {
            written.splice(0, writtenHead);
            if (watched.pacer) dues.splice(0, writtenHead);
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
        if (watched.pacer) {
          const due = await this.#paced(watched.pacer);
          if (due === undefined || readerDone) break;
          dues.push(Math.min(due, performance.now()));
        }
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

// Same host (and, with `port`, the same port), or the same unix path.
function sameAddress(a: Address | undefined, b: Address, port: boolean): boolean {
  if (a === undefined || a.transport !== b.transport) return false;
  if (a.transport === "unix") return a.path === (b as typeof a).path;
  return a.hostname === (b as typeof a).hostname && (!port || a.port === (b as typeof a).port);
}
