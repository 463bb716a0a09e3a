/**
 * A write queue for sockets whose `write()` takes what the kernel accepts and buffers nothing
 * (Bun's): the rest waits here until the socket drains, and writers wait while more than a
 * high-water mark is queued, so a slow peer pauses the producer instead of growing memory.
 *
 * @module
 */

import { NO_CHUNKS, SLAB_VIEW_MAX } from "./_bytes.ts";

/**
 * A write side with a synchronous write and a drain signal: what {@linkcode answerQueued} needs,
 * and what {@linkcode writeAndDrain} turns into a promise-returning `write()`.
 * {@linkcode WriteQueue} is one.
 */
export interface ImmediateWriter {
  /**
   * Writes all of `bytes` now, queueing what the kernel does not take. Returns `false` when the
   * queue is at or over its high-water mark (then wait for `onDrain`); throws once closed.
   */
  writeNow(bytes: Uint8Array): boolean;
  /**
   * After `writeNow` returned `false`: calls `callback` once the queue is back under its
   * high-water mark, or with an error once the socket closed.
   */
  onDrain(callback: (error?: unknown) => void): void;
}

/**
 * `StreamSocket.write()` over an {@linkcode ImmediateWriter}: writes now, and resolves at once, or
 * (past the high-water mark) once the queue has drained. Rejects when the socket is closed.
 *
 * @param writer The socket's write side.
 * @param bytes What to write.
 * @returns A promise that resolves when more may be written.
 *
 * @example
 * ```ts
 * import { writeAndDrain, WriteQueue } from "./write_queue.ts";
 *
 * const queue = new WriteQueue({ write: (bytes: Uint8Array) => bytes.length, shutdown() {} });
 * await writeAndDrain(queue, new Uint8Array([1, 2, 3]));
 * ```
 */
export function writeAndDrain(writer: ImmediateWriter, bytes: Uint8Array): Promise<void> {
  try {
    if (writer.writeNow(bytes)) return RESOLVED;
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve, reject) => writer.onDrain((error) => error === undefined ? resolve() : reject(error)));
}

/** Default bytes queued before `write()` makes the caller wait: 64 KiB. */
export const DEFAULT_WRITE_HIGH_WATER = 64 * 1024;

/** The socket side of a {@linkcode WriteQueue}. */
export interface WriteSink {
  /** Writes what it can now; returns the bytes taken, or a negative number once closed. */
  write(bytes: Uint8Array): number;
  /** Sends FIN. */
  shutdown(): void;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Queues what a {@linkcode WriteSink} could not take, flushing it on `drain`.
 *
 * @example
 * ```ts
 * import { WriteQueue } from "./write_queue.ts";
 *
 * const out: number[] = [];
 * // A sink that takes at most 2 bytes per call.
 * const sink = { write: (b: Uint8Array) => (out.push(...b.subarray(0, 2)), Math.min(2, b.length)), shutdown() {} };
 * const queue = new WriteQueue(sink);
 * await queue.write(new Uint8Array([1, 2, 3, 4, 5]));
 * while (out.length < 5) queue.flush(); // what the socket's drain callback does
 * console.log(out); // [1, 2, 3, 4, 5]
 * ```
 */
export class WriteQueue implements ImmediateWriter {
  #sink: WriteSink;
  #highWater: number;
  #queue: Uint8Array[] = NO_CHUNKS; // shared until a write is left over: idle queues allocate nothing
  #queuedBytes = 0;
  #drainCallbacks: ((error?: unknown) => void)[] | undefined; // made on the first wait
  #shutdownWaiter: (() => void) | undefined;
  #failure: unknown;

  /**
   * Creates an empty queue.
   *
   * @param sink The socket to write to.
   * @param highWater Bytes queued before writers wait.
   */
  constructor(sink: WriteSink, highWater: number = DEFAULT_WRITE_HIGH_WATER) {
    this.#sink = sink;
    this.#highWater = highWater;
  }

  /** Writes all of `bytes`; resolves once less than the high-water mark is queued. */
  write(bytes: Uint8Array): Promise<void> {
    return writeAndDrain(this, bytes);
  }

  /**
   * Writes what the sink takes now and queues the rest. Returns `false` when the high-water mark
   * is reached (wait for {@linkcode WriteQueue.onDrain} before writing more); throws once the
   * socket is closed.
   */
  writeNow(bytes: Uint8Array): boolean {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#queue.length === 0) {
      const n = this.#sink.write(bytes);
      if (n < 0) throw new Error("Socket is closed");
      if (n === bytes.length) return true;
      bytes = bytes.subarray(n);
    }
    bytes = toRetainable(bytes);
    if (this.#queue === NO_CHUNKS) this.#queue = [bytes];
    else this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    return this.#queuedBytes < this.#highWater;
  }

  /**
   * Calls `callback` once less than the high-water mark is queued (at once, in a microtask, if
   * that is already so), or with the error once the socket closed.
   */
  onDrain(callback: (error?: unknown) => void): void {
    if (this.#failure !== undefined) queueMicrotask(() => callback(this.#failure));
    else if (this.#queuedBytes < this.#highWater) queueMicrotask(() => callback());
    else (this.#drainCallbacks ??= []).push(callback);
  }

  /** Writes what the sink takes now: call it when the socket drains. */
  flush(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      const n = this.#sink.write(head);
      if (n < 0) return; // closed: fail() calls the drain callbacks
      this.#queuedBytes -= n;
      if (n < head.length) {
        this.#queue[0] = head.subarray(n);
        break;
      }
      this.#queue.shift();
    }
    if (this.#queuedBytes < this.#highWater) {
      this.#callDrainCallbacks();
    }
    if (this.#queue.length === 0 && this.#shutdownWaiter) {
      this.#sink.shutdown();
      this.#shutdownWaiter();
      this.#shutdownWaiter = undefined;
    }
  }

  /** Sends FIN once everything queued is written; resolves then. */
  closeWrite(): Promise<void> {
    if (this.#failure !== undefined) return RESOLVED;
    if (this.#queue.length === 0) {
      this.#sink.shutdown();
      return RESOLVED;
    }
    return new Promise((resolve) => (this.#shutdownWaiter = resolve));
  }

  #callDrainCallbacks(error?: unknown): void {
    const callbacks = this.#drainCallbacks;
    this.#drainCallbacks = undefined;
    if (callbacks) { for (const callback of callbacks) callback(error); }
  }

  /** The socket closed: waiting writers reject with `error`, later writes too. */
  fail(error: unknown): void {
    this.#failure ??= error;
    this.#queue = NO_CHUNKS;
    this.#queuedBytes = 0;
    this.#callDrainCallbacks(this.#failure);
    this.#shutdownWaiter?.();
    this.#shutdownWaiter = undefined;
  }
}

/** Views this small or smaller are copied before they are kept (see {@linkcode toRetainable}); replies cut from shared slabs are never larger. */
export const RETAIN_COPY_MAX: number = SLAB_VIEW_MAX;

/**
 * Returns bytes that are safe to keep queued: a small view into a larger buffer (a reply cut
 * from a shared slab, say) is copied, so that it cannot keep the whole buffer alive while a slow
 * peer holds up the queue. Larger views and arrays that own their buffer are returned as they are.
 *
 * @param bytes Bytes about to be queued.
 * @returns `bytes`, or a copy of them.
 *
 * @example
 * ```ts
 * import { toRetainable } from "./write_queue.ts";
 *
 * const slab = new Uint8Array(8192);
 * const reply = slab.subarray(0, 70);
 * console.log(toRetainable(reply).buffer.byteLength); // 70: a copy, not the 8 KiB slab
 * ```
 */
export function toRetainable(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength <= RETAIN_COPY_MAX && bytes.byteLength !== bytes.buffer.byteLength ? bytes.slice() : bytes;
}
