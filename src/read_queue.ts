/**
 * Turns a push-style socket (one that delivers data through callbacks, as Node's and Bun's do) into the
 * pull-style {@linkcode StreamSocket.read} the core uses, pausing the source while too much is
 * buffered so a fast sender cannot grow memory; and gives such sockets the promise-free
 * {@linkcode StreamSocket.answerEach} as one object through the {@linkcode PushStreamSocket}
 * base class (or for a separate queue and writer, through `answerQueued` in answer_queued.ts).
 *
 * @module
 */

import { NO_CHUNKS } from "./_bytes.ts";
import type { Address, ChunkResponder, StreamSocket } from "./types.ts";
import { type ImmediateWriter, writeAndDrain } from "./write_queue.ts";

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
 * import { ReadQueue } from "./read_queue.ts";
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
  #chunks: Uint8Array[] = NO_CHUNKS; // shared until something queues: idle queues allocate nothing
  #head = 0;
  #bytes = 0;
  #paused = false;
  #ended = false;
  #error: unknown;
  #reader: { resolve(chunk: Uint8Array | null): void; reject(error: unknown): void } | undefined;
  #listener: ChunkListener | undefined;

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

  /** Delivers a chunk: straight to a waiting reader or listener, else into the queue. */
  push(chunk: Uint8Array): void {
    const listener = this.#listener;
    if (listener) {
      this.#listener = undefined;
      // A listener that keeps going stays subscribed (catching up on whatever arrived or ended
      // meanwhile), unless it subscribed another one itself.
      if (listener.onChunk(chunk) && this.#listener === undefined) this.subscribe(listener);
      return;
    }
    const reader = this.#reader;
    if (reader) {
      this.#reader = undefined;
      reader.resolve(chunk);
      return;
    }
    if (this.#chunks === NO_CHUNKS) this.#chunks = [chunk];
    else this.#chunks.push(chunk);
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
    const listener = this.#listener;
    if (listener) {
      this.#listener = undefined;
      listener.onChunk(null, this.#takeError());
      return;
    }
    const reader = this.#reader;
    if (!reader) return;
    this.#reader = undefined;
    const failure = this.#takeError();
    if (failure === undefined) reader.resolve(null);
    else reader.reject(failure);
  }

  /**
   * Hands chunks to `listener.onChunk` synchronously, the queued ones first, for as long as it
   * returns `true`; returning `false` unsubscribes it (later chunks queue up again). At end of
   * input it is called once with `null` (and the error, if any) and dropped. Like `read()`,
   * only one consumer at a time.
   */
  subscribe(listener: ChunkListener): void {
    while (this.#head < this.#chunks.length) {
      if (!listener.onChunk(this.#take())) return;
    }
    if (this.#ended) listener.onChunk(null, this.#takeError());
    else this.#listener = listener;
  }

  /** Resolves with the next chunk, or `null` at end of input. Only one read may be pending. */
  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) return Promise.resolve(this.#take());
    if (this.#ended) {
      const failure = this.#takeError();
      return failure === undefined ? Promise.resolve(null) : Promise.reject(failure);
    }
    return new Promise((resolve, reject) => {
      this.#reader = { resolve, reject };
    });
  }

  #take(): Uint8Array {
    const chunk = this.#chunks[this.#head]!;
    this.#chunks[this.#head++] = EMPTY;
    if (this.#head === this.#chunks.length) {
      this.#chunks = NO_CHUNKS;
      this.#head = 0;
    }
    this.#bytes -= chunk.length;
    if (this.#paused && this.#bytes < this.#highWater) {
      this.#paused = false;
      this.#source.resume();
    }
    return chunk;
  }

  /**
   * Takes every queued chunk now, in order (for handing the connection over to another reader,
   * as a TLS handshake after a clear-text header does). The source is resumed if it was paused.
   *
   * @returns The chunks not read yet (none: an empty array).
   *
   * @example
   * ```ts
   * import { ReadQueue } from "./read_queue.ts";
   *
   * const queue = new ReadQueue({ pause() {}, resume() {} });
   * queue.push(new Uint8Array([1]));
   * queue.push(new Uint8Array([2]));
   * console.log(queue.takeQueued().length); // 2
   * ```
   */
  takeQueued(): Uint8Array[] {
    const taken: Uint8Array[] = [];
    while (this.#head < this.#chunks.length) taken.push(this.#take());
    return taken;
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

/**
 * Receives chunks from {@linkcode ReadQueue.subscribe}. An object rather than a function, so a
 * long-lived subscriber (one per connection) needs no closure.
 *
 * @example Count bytes until the end of input
 * ```ts
 * import type { ChunkListener } from "./mod.ts";
 *
 * let bytes = 0;
 * const counter: ChunkListener = {
 *   onChunk(chunk) {
 *     if (chunk === null) return false;
 *     bytes += chunk.length;
 *     return true;
 *   },
 * };
 * ```
 */
export interface ChunkListener {
  /**
   * Takes a chunk; returns `true` to keep receiving. Called with `null` (and an error, if the
   * input failed) at end of input.
   */
  onChunk(chunk: Uint8Array | null, error?: unknown): boolean;
}

/**
 * A base for push-style sockets (Node's and Bun's): the socket is its own read queue, writer and
 * answerer, so a connection served through {@linkcode StreamSocket.answerEach} costs one object
 * here rather than three. Subclasses feed it from their callbacks (`push`, `end`), make the
 * synchronous write side (`writeNow`, `onDrain`) and the rest of {@linkcode StreamSocket}.
 *
 * @example A socket whose peer is an array
 * ```ts
 * import { type Address } from "./mod.ts";
 * import { PushStreamSocket } from "./read_queue.ts";
 *
 * class ArraySocket extends PushStreamSocket {
 *   readonly localAddr: Address = { transport: "unix", path: "/tmp/array" };
 *   readonly remoteAddr: Address = this.localAddr;
 *   readonly closed: Promise<void> = Promise.resolve();
 *   sent: number[] = [];
 *   constructor() {
 *     super({ pause() {}, resume() {} });
 *   }
 *   writeNow(bytes: Uint8Array): boolean {
 *     this.sent.push(...bytes);
 *     return true;
 *   }
 *   onDrain(callback: () => void): void {
 *     queueMicrotask(callback);
 *   }
 *   closeWrite(): Promise<void> {
 *     return Promise.resolve();
 *   }
 *   close(): void {
 *     this.end();
 *   }
 * }
 *
 * const socket = new ArraySocket();
 * socket.answerEach({ answer: (chunk) => chunk, ended: () => console.log(socket.sent) }); // [7]
 * socket.push(new Uint8Array([7]));
 * socket.end();
 * ```
 */
export abstract class PushStreamSocket extends ReadQueue implements StreamSocket, ImmediateWriter, ChunkListener {
  #responder: ChunkResponder | undefined;

  /** This end's address. */
  abstract readonly localAddr: Address;
  /** The peer's address. */
  abstract readonly remoteAddr: Address;
  /** Resolves once the socket is fully closed. */
  abstract readonly closed: Promise<void>;
  /** Writes what the transport takes now; `false` when the caller should wait for {@linkcode onDrain}. */
  abstract writeNow(bytes: Uint8Array): boolean;
  /** Calls back once written bytes have drained (with an error if the socket failed first). */
  abstract onDrain(callback: (error?: unknown) => void): void;
  /** Flushes, then sends FIN. */
  abstract closeWrite(): Promise<void>;
  /** Closes at once. */
  abstract close(): void;

  /** Writes `bytes`, resolving once the transport has taken them. */
  write(bytes: Uint8Array): Promise<void> {
    return writeAndDrain(this, bytes);
  }

  /** Answers each chunk from the data callbacks (as `answerQueued` in answer_queued.ts does). */
  answerEach(responder: ChunkResponder): void {
    this.#responder = responder;
    this.subscribe(this);
  }

  /** The socket's own {@linkcode ChunkListener}, subscribed by {@linkcode answerEach}. */
  onChunk(chunk: Uint8Array | null, error?: unknown): boolean {
    return answerQueuedChunk(this, this, this.#responder!, this, chunk, error);
  }
}

/**
 * One step of answering from a read queue: answer and write `chunk`; true to take the next one at once. Shared by
 * {@linkcode PushStreamSocket} (its own queue, writer and listener) and `answerQueued` (answer_queued.ts).
 */
export function answerQueuedChunk(
  queue: ReadQueue,
  writer: ImmediateWriter,
  responder: ChunkResponder,
  listener: ChunkListener,
  chunk: Uint8Array | null,
  error: unknown,
): boolean {
  if (chunk === null) {
    responder.ended(error);
    return false;
  }
  let reply: Uint8Array | null | undefined;
  try {
    reply = responder.answer(chunk);
    if (reply === undefined || (reply !== null && reply.length === 0)) return true;
    if (reply !== null && writer.writeNow(reply)) {
      responder.answered?.();
      return true;
    }
  } catch (error) {
    responder.ended(error);
    return false;
  }
  if (reply === null) {
    responder.ended();
    return false;
  }
  // Over the write high-water mark: stop taking chunks (they queue up, pausing the source)
  // until the writes drain.
  writer.onDrain((error) => {
    if (error !== undefined) return responder.ended(error);
    try {
      responder.answered?.();
    } catch (error) {
      return responder.ended(error);
    }
    queue.subscribe(listener);
  });
  return false;
}
