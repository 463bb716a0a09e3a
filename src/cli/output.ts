/**
 * The CLI's standard output and error: lines batched per turn of the event loop, written through
 * one bounded queue per stream that never blocks the event loop.
 *
 * @module
 */

/** Pending output beyond this many characters is written at once rather than at the end of the turn. */
const MAX_PENDING = 64 * 1024;

/**
 * The default bound of each stream's queue, in characters (bytes, for the ASCII a server logs).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_QUEUED } from "./output.ts";
 *
 * console.log(DEFAULT_MAX_QUEUED); // 1048576
 * ```
 */
export const DEFAULT_MAX_QUEUED: number = 1024 * 1024;

/**
 * How long an exiting CLI waits for its queued output to be written, in ms: long enough for any
 * reader that keeps up, short enough that a stopped one cannot hold the process.
 *
 * @example
 * ```ts
 * import { EXIT_FLUSH_MS } from "./output.ts";
 *
 * console.log(EXIT_FLUSH_MS); // 1000
 * ```
 */
export const EXIT_FLUSH_MS = 1000;

/**
 * Writes text to a stream. Returns nothing once the text is written synchronously (a terminal, a
 * file: as fast as the disk, never waiting on a reader), or a promise that settles once the stream
 * has taken all of it (a pipe or a socket: its reader may be slow or stopped). The output calls it
 * again only after that promise settles; a rejection or a throw means the stream is gone (`| head`
 * exited), and later lines for it are discarded.
 *
 * @example
 * ```ts
 * import type { WriteText } from "./output.ts";
 *
 * const chunks: string[] = [];
 * const write: WriteText = (text) => void chunks.push(text);
 * ```
 */
export type WriteText = (text: string) => void | Promise<void>;

/**
 * Called when lines were dropped, once there is room again: writes the line that says so (the
 * CLI logs a `log-dropped` event, human or JSON).
 *
 * @example
 * ```ts
 * import type { DroppedReporter } from "./output.ts";
 *
 * const report: DroppedReporter = (stream, lines) => console.log(`${lines} lines dropped from ${stream}`);
 * ```
 */
export type DroppedReporter = (stream: "stdout" | "stderr", lines: number) => void;

/** Options for {@linkcode LineOutput}. */
export interface LineOutputOptions {
  /** Characters each stream may hold before new lines are dropped. @default {DEFAULT_MAX_QUEUED} */
  maxQueued?: number;
}

/**
 * Line output for a {@linkcode CliHost}: lines for standard output that come in the same turn of
 * the event loop (a burst of connections, each logging one) go out in one write rather than one
 * system call each; a line for standard error writes what is pending for standard output first,
 * so the two keep their order.
 *
 * A reader that does not keep up (a stopped `| less`, a slow log shipper, a parent that never
 * reads) must neither block the server nor grow its memory: each stream has one write in flight
 * and a queue of at most `maxQueued` characters behind it. Lines that find the queue full are
 * dropped and counted; once it has drained to half, the count goes out as one line in their place
 * (see {@linkcode LineOutput.onDropped}), and lines are taken again. Call
 * {@linkcode LineOutput.close} before exiting: it writes what is queued, within a deadline.
 *
 * @example
 * ```ts
 * import { LineOutput } from "./output.ts";
 *
 * const writes: string[] = [];
 * const output = new LineOutput((text) => void writes.push(text), (text) => void writes.push(`error: ${text}`));
 * output.out("one");
 * output.out("two");
 * output.err("three");
 * console.log(writes); // ["one\ntwo\n", "error: three\n"]
 * ```
 */
export class LineOutput {
  #stdout: StreamQueue;
  #stderr: StreamQueue;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Creates the output over two streams' write functions.
   *
   * @param writeOut Writes to standard output (see {@linkcode WriteText}).
   * @param writeErr Writes to standard error.
   * @param options The queue bound.
   */
  constructor(writeOut: WriteText, writeErr: WriteText, options: LineOutputOptions = {}) {
    const max = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.#stdout = new StreamQueue("stdout", writeOut, max);
    this.#stderr = new StreamQueue("stderr", writeErr, max);
  }

  /** Queues a line (without its newline) for standard output. */
  out = (line: string): void => {
    if (this.#stdout.push(line) >= MAX_PENDING) this.flush();
    else this.#timer ??= setTimeout(this.flush, 0);
  };

  /** Queues a line (without its newline) for standard error, after what is pending for standard output. */
  err = (line: string): void => {
    this.flush();
    this.#stderr.push(line);
    this.#stderr.write();
  };

  /** Starts writing what is pending for standard output now (without waiting for the end of the turn). */
  flush = (): void => {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#stdout.write();
  };

  /**
   * Sets what writes the line about dropped lines. Without one, the output writes
   * `echogate: N log lines dropped (standard output was not read in time)` itself.
   */
  onDropped(reporter: DroppedReporter): void {
    this.#stdout.reporter = this.#stderr.reporter = reporter;
  }

  /** Lines dropped so far, per stream. */
  get dropped(): { stdout: number; stderr: number } {
    return { stdout: this.#stdout.droppedTotal, stderr: this.#stderr.droppedTotal };
  }

  /**
   * Writes everything queued, and resolves once it is written or after `deadlineMs`, whichever
   * comes first: a reader that is gone or stopped cannot hold up the exit.
   */
  close(deadlineMs: number): Promise<void> {
    this.flush();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs)));
    return Promise.race([Promise.all([this.#stdout.drained(), this.#stderr.drained()]), late]).then(() =>
      clearTimeout(timer)
    );
  }
}

// One stream's queue: the text not yet handed to the stream, and the size of the write in flight.
class StreamQueue {
  reporter: DroppedReporter | undefined;
  droppedTotal = 0;
  #name: "stdout" | "stderr";
  #write: WriteText;
  #max: number;
  #pending = "";
  #inFlight = 0; // characters of the write in flight; 0 when none
  #dropped = 0; // dropped since the last report
  #gone = false;
  #drainWaiters: (() => void)[] = [];

  constructor(name: "stdout" | "stderr", write: WriteText, max: number) {
    this.#name = name;
    this.#write = write;
    this.#max = max;
  }

  /** Queues a line unless the queue is full; returns the characters now pending. */
  push(line: string): number {
    if (this.#gone) return 0;
    const size = this.#pending.length + this.#inFlight + line.length + 1;
    // Once dropping, take lines again only when down to half: few, long gaps rather than many.
    if (size > (this.#dropped > 0 ? this.#max / 2 : this.#max)) {
      this.#dropped++;
      this.droppedTotal++;
      return this.#pending.length;
    }
    this.#reportDropped();
    this.#pending += line + "\n";
    return this.#pending.length;
  }

  /** Starts writing what is pending, unless a write is in flight (it continues when that one is done). */
  write(): void {
    while (!this.#gone && this.#inFlight === 0 && this.#pending !== "") {
      const text = this.#pending;
      this.#pending = "";
      this.#inFlight = text.length;
      let written: void | Promise<void>;
      try {
        written = this.#write(text);
      } catch {
        this.#fail();
        return;
      }
      if (written instanceof Promise) {
        written.then(this.#written, this.#fail);
        return;
      }
      this.#inFlight = 0; // written synchronously: go on
      if (this.#dropped > 0) this.#reportDropped();
    }
    if (this.#inFlight === 0 && this.#pending === "") this.#wakeDrainWaiters();
  }

  drained(): Promise<void> {
    if (this.#gone || (this.#inFlight === 0 && this.#pending === "")) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  #written = (): void => {
    this.#inFlight = 0;
    if (this.#dropped > 0 && this.#pending.length <= this.#max / 2) this.#reportDropped();
    this.write();
  };

  #fail = (): void => {
    // The reader is gone: nothing written later can reach it.
    this.#gone = true;
    this.#pending = "";
    this.#inFlight = 0;
    this.#wakeDrainWaiters();
  };

  #reportDropped(): void {
    const lines = this.#dropped;
    if (lines === 0) return;
    this.#dropped = 0; // first: the report comes back through push()
    if (this.reporter) this.reporter(this.#name, lines);
    else {
      const stream = this.#name === "stdout" ? "standard output" : "standard error";
      this.#pending += `echogate: ${lines} log ${
        lines === 1 ? "line" : "lines"
      } dropped (${stream} was not read in time)\n`;
    }
  }

  #wakeDrainWaiters(): void {
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }
}
