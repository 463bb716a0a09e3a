/**
 * The CLI's standard output and error, with standard output written in batches.
 *
 * @module
 */

/** Pending output beyond this many characters is written at once rather than at the end of the turn. */
const MAX_PENDING = 64 * 1024;

/**
 * Line output for a {@linkcode CliHost}: lines for standard output that come in the same turn of
 * the event loop (a burst of connections, each logging one) go out in one write rather than one
 * system call and one stream write each; per-line writes cost a busy server measurable time and
 * memory. A line for standard error writes what is pending first, so the two streams keep their
 * order. Call {@linkcode LineOutput.flush} before exiting.
 *
 * @example
 * ```ts
 * import { LineOutput } from "./output.ts";
 *
 * const writes: string[] = [];
 * const output = new LineOutput((text) => writes.push(text), (text) => writes.push(`error: ${text}`));
 * output.out("one");
 * output.out("two");
 * output.err("three");
 * console.log(writes); // ["one\ntwo\n", "error: three\n"]
 * ```
 */
export class LineOutput {
  #writeOut: (text: string) => void;
  #writeErr: (text: string) => void;
  #pending = "";
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param writeOut Writes text to standard output (synchronously, or at least in order).
   * @param writeErr Writes text to standard error.
   */
  constructor(writeOut: (text: string) => void, writeErr: (text: string) => void) {
    this.#writeOut = writeOut;
    this.#writeErr = writeErr;
  }

  /** Queues a line (without its newline) for standard output. */
  out = (line: string): void => {
    this.#pending += line + "\n";
    if (this.#pending.length >= MAX_PENDING) this.flush();
    else this.#timer ??= setTimeout(this.flush, 0);
  };

  /** Writes a line (without its newline) to standard error, after what is pending for standard output. */
  err = (line: string): void => {
    this.flush();
    this.#writeErr(line + "\n");
  };

  /** Writes what is pending for standard output now. */
  flush = (): void => {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const text = this.#pending;
    if (text === "") return;
    this.#pending = "";
    this.#writeOut(text);
  };
}
