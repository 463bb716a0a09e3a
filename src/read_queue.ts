/**
 * Turns a push-style socket (data callbacks, as in `node:net` and `Bun.listen`) into the
 * pull-style {@linkcode StreamSocket.read} the core uses, pausing the source while too much is
 * buffered so a fast sender cannot grow memory.
 *
 * @module
 */

/** Default bytes buffered before the source is paused: 64 KiB. */
export const DEFAULT_READ_HIGH_WATER = 64 * 1024;

/** How a {@linkcode ReadQueue} stops and restarts its source. */
export interface ReadQueueSource {
  /** Stop delivering data (e.g. `socket.pause()`). */
  pause(): void;
  /** Deliver data again (e.g. `socket.resume()`). */
  resume(): void;
}

/**
 * A queue between a push-style source and one pull-style reader.
 *
 * @example
 * ```ts
 * import { ReadQueue } from "./mod.ts";
 *
 * const queue = new ReadQueue({ pause() {}, resume() {} });
 * queue.push(new Uint8Array([1, 2]));
 * queue.end();
 * console.log(await queue.read()); // Uint8Array [1, 2]
 * console.log(await queue.read()); // null
 * ```
 */
export class ReadQueue {
  #source: ReadQueueSource;
  #highWater: number;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #bytes = 0;
  #paused = false;
  #ended = false;
  #error: unknown;
  #reader: { resolve(chunk: Uint8Array | null): void; reject(error: unknown): void } | undefined;

  /**
   * Creates an empty queue.
   *
   * @param source Pauses and resumes the producer.
   * @param highWater Bytes buffered before the source is paused.
   */
  constructor(source: ReadQueueSource, highWater: number = DEFAULT_READ_HIGH_WATER) {
    this.#source = source;
    this.#highWater = highWater;
  }

  /** Delivers a chunk: straight to a waiting reader, else into the queue. */
  push(chunk: Uint8Array): void {
    const reader = this.#reader;
    if (reader) {
      this.#reader = undefined;
      reader.resolve(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= this.#highWater && !this.#paused) {
      this.#paused = true;
      this.#source.pause();
    }
  }

  /**
   * Marks the end of input. With an error, the next read (after the queued chunks) rejects with
   * it, once; reads after that resolve `null`.
   */
  end(error?: unknown): void {
    if (error !== undefined && this.#error === undefined && !this.#ended) this.#error = error;
    this.#ended = true;
    const reader = this.#reader;
    if (!reader) return;
    this.#reader = undefined;
    const failure = this.#takeError();
    if (failure === undefined) reader.resolve(null);
    else reader.reject(failure);
  }

  /** Resolves with the next chunk, or `null` at end of input. Only one read may be pending. */
  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      }
      this.#bytes -= chunk.length;
      if (this.#paused && this.#bytes < this.#highWater) {
        this.#paused = false;
        this.#source.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.#ended) {
      const failure = this.#takeError();
      return failure === undefined ? Promise.resolve(null) : Promise.reject(failure);
    }
    return new Promise((resolve, reject) => {
      this.#reader = { resolve, reject };
    });
  }

  /** Bytes buffered and not yet read. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  #takeError(): unknown {
    const error = this.#error;
    this.#error = undefined; // reported once
    return error;
  }
}

const EMPTY = new Uint8Array(0);
