/**
 * The throttle for log lines that come in floods (accept failures, refusals at accept, failed TLS
 * handshakes, datagram drops): the
 * first of a burst is logged at once; each later one within the interval is only counted, and
 * the interval ends with one line for the latest of them, saying how many it stands for. So a
 * flood costs one line at once and one per interval, and nothing counted is lost.
 *
 * @module
 */

/** At most one line per this many ms, per throttle. */
export const LOG_THROTTLE_INTERVAL_MS = 10_000;

/**
 * A throttle for one kind of log line. `emit(latest, more)` writes a line for `latest`, where
 * `more` is how many others were counted since the previous line (0 for a line of its own).
 *
 * @example
 * ```ts
 * import { LogThrottle } from "./_log_throttle.ts";
 *
 * const lines: string[] = [];
 * const refusals = new LogThrottle<string>((remote, more) => lines.push(`${remote} (+${more})`));
 * for (const remote of ["a", "b", "c"]) refusals.add(remote);
 * refusals.close();
 * console.log(lines); // ["a (+0)", "c (+1)"]
 * ```
 */
export class LogThrottle<T> {
  #emit: (latest: T, more: number) => void;
  #intervalMs: number;
  #loggedAt = -Infinity;
  #counted = 0; // since the last line, the latest included
  #latest: T | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /**
   * Creates the throttle.
   *
   * @param emit Writes one line.
   * @param intervalMs At most one line per this many ms.
   */
  constructor(emit: (latest: T, more: number) => void, intervalMs: number = LOG_THROTTLE_INTERVAL_MS) {
    this.#emit = emit;
    this.#intervalMs = intervalMs;
  }

  /** Counts one occurrence, and logs it (with what was counted before) unless a line went out recently. */
  add(item: T): void {
    this.#latest = item;
    this.#counted++;
    if (this.#timer !== undefined) return; // the interval's line is due already: a flood costs a count
    const wait = this.#loggedAt + this.#intervalMs - Date.now();
    // Once closed, no timer: it would outlive its server.
    if (wait <= 0 || this.#closed) this.#flush();
    else this.#timer ??= setTimeout(this.#flush, wait);
  }

  /** Logs what is counted and not yet logged, and stops the timer; later occurrences are logged at once. */
  close(): void {
    this.#closed = true;
    this.#flush();
  }

  #flush = (): void => {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#counted === 0) return;
    const latest = this.#latest as T;
    const more = this.#counted - 1;
    this.#latest = undefined;
    this.#counted = 0;
    this.#loggedAt = Date.now();
    this.#emit(latest, more);
  };
}
