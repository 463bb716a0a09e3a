/**
 * Answering a stream chunk by chunk, through {@linkcode StreamSocket.answerEach} where the
 * adapter has it, else through `read()` and `write()`.
 *
 * @module
 */

import type { ChunkResponder, StreamSocket } from "./types.ts";

/**
 * Answers every chunk `socket` reads with what `answer` returns (`undefined`: nothing; `null`:
 * stop reading), until the peer finishes sending. The chunk is lent: valid only until `answer`
 * returns, unless returned as the answer.
 *
 * @param socket The connection.
 * @param answer What to write for each chunk.
 * @returns A promise that resolves at end of input or once `answer` returned `null`, and
 *   rejects on a socket error or when `answer` throws.
 *
 * @example Upper-case every chunk
 * ```ts ignore
 * import { answerAll } from "./answer.ts";
 *
 * const encoder = new TextEncoder();
 * const decoder = new TextDecoder();
 * await answerAll(socket, (chunk) => encoder.encode(decoder.decode(chunk).toUpperCase()));
 * ```
 */
export function answerAll(
  socket: StreamSocket,
  answer: (chunk: Uint8Array) => Uint8Array | null | undefined,
): Promise<void> {
  if (!socket.answerEach) return answerByReading(socket, answer);
  return new Promise((resolve, reject) => {
    const responder: ChunkResponder = {
      answer,
      ended: (error) => error === undefined ? resolve() : reject(error),
    };
    socket.answerEach!(responder);
  });
}

async function answerByReading(
  socket: StreamSocket,
  answer: (chunk: Uint8Array) => Uint8Array | null | undefined,
): Promise<void> {
  while (true) {
    const chunk = await socket.read();
    if (chunk === null) return;
    const reply = answer(chunk);
    if (reply === null) return;
    if (reply !== undefined && reply.length > 0) await socket.write(reply);
  }
}
