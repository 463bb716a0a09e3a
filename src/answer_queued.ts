/**
 * Answering a push-style socket's chunks straight from its data callbacks, for a read queue and a
 * write side that are separate objects (read_queue.ts's `PushStreamSocket` is both; the step is shared).
 *
 * @module
 */

import type { ChunkResponder } from "./types.ts";
import { answerQueuedChunk, type ChunkListener, type ReadQueue } from "./read_queue.ts";
import type { ImmediateWriter } from "./write_queue.ts";

/**
 * {@linkcode StreamSocket.answerEach} for push-style adapters: answers chunks straight from the
 * data callbacks, with no promise at all. While an answer waits for the write queue to drain,
 * new chunks queue up in `queue` (which pauses its source), so backpressure holds.
 * `PushStreamSocket` does the same without the extra object per connection.
 *
 * @param queue The socket's read queue.
 * @param writer The socket's synchronous write side.
 * @param responder What to write for each chunk, and who hears when it is over.
 *
 * @example An in-memory socket answered by doubling each byte
 * ```ts
 * import { answerQueued } from "./answer_queued.ts";
 * import { ReadQueue } from "./read_queue.ts";
 *
 * const written: number[] = [];
 * const queue = new ReadQueue({ pause() {}, resume() {} });
 * const writer = { writeNow: (bytes: Uint8Array) => (written.push(...bytes), true), onDrain() {} };
 * answerQueued(queue, writer, {
 *   answer: (chunk) => chunk.map((byte) => byte * 2),
 *   ended: () => console.log(written), // [2, 4]
 * });
 * queue.push(new Uint8Array([1, 2]));
 * queue.end();
 * ```
 */
export function answerQueued(queue: ReadQueue, writer: ImmediateWriter, responder: ChunkResponder): void {
  queue.subscribe(new QueuedAnswerer(queue, writer, responder));
}

// Holds what closures would otherwise capture.
class QueuedAnswerer implements ChunkListener {
  #queue: ReadQueue;
  #writer: ImmediateWriter;
  #responder: ChunkResponder;

  constructor(queue: ReadQueue, writer: ImmediateWriter, responder: ChunkResponder) {
    this.#queue = queue;
    this.#writer = writer;
    this.#responder = responder;
  }

  onChunk(chunk: Uint8Array | null, error?: unknown): boolean {
    return answerQueuedChunk(this.#queue, this.#writer, this.#responder, this, chunk, error);
  }
}
