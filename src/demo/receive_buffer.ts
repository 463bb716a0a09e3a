// The tutorial's `recv(1024)` over echogate's chunked StreamSocket: bytes the runtime delivered
// wait here, as they wait in the kernel's receive buffer, and each recv(max) takes at most `max`.

import type { StreamSocket } from "../types.ts";

/**
 * A receive buffer in front of a {@linkcode StreamSocket}: it reads everything the peer sends
 * as it arrives, and {@linkcode ReceiveBuffer.recv} hands it out at most `max` bytes at a time,
 * the rest kept for the next call, as Python's `socket.recv(bufsize)` does. The demo's reader
 * uses it to show the tutorial's point on every runtime, whatever chunk sizes the runtime reads in.
 *
 * @example Read a 3000-byte message in reads of at most 1024 bytes
 * ```ts ignore
 * import { ReceiveBuffer } from "./receive_buffer.ts";
 *
 * const buffer = new ReceiveBuffer(socket);
 * let chunk;
 * while ((chunk = await buffer.recv(1024)).length > 0) console.log(chunk.length); // 1024, 1024, 952
 * ```
 */
export class ReceiveBuffer {
  #parts: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  /** Starts reading `socket` into the buffer, until its end of input. */
  constructor(socket: StreamSocket) {
    this.#pump(socket);
  }

  /** Bytes received and not yet taken by {@linkcode ReceiveBuffer.recv}. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Resolves once at least `bytes` are buffered, or the peer finished sending.
   *
   * @param bytes How many bytes to wait for.
   */
  async waitFor(bytes: number): Promise<void> {
    while (this.#buffered < bytes && !this.#ended) await this.#changed();
    if (this.#error !== undefined && this.#buffered < bytes) throw this.#error;
  }

  /**
   * Takes at most `max` bytes, waiting while none are buffered; an empty array means the peer
   * finished sending (Python's `b''`).
   *
   * @param max The most bytes to take (Python's `bufsize`).
   * @returns The bytes taken, at most `max`.
   */
  async recv(max: number): Promise<Uint8Array> {
    await this.waitFor(1);
    const size = Math.min(max, this.#buffered);
    const out = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const part = this.#parts[0]!;
      const take = Math.min(part.length, size - filled);
      out.set(part.subarray(0, take), filled);
      filled += take;
      if (take === part.length) this.#parts.shift();
      else this.#parts[0] = part.subarray(take);
    }
    this.#buffered -= size;
    return out;
  }

  async #pump(socket: StreamSocket): Promise<void> {
    try {
      for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) {
        this.#parts.push(chunk.slice());
        this.#buffered += chunk.length;
        this.#wake?.();
      }
    } catch (error) {
      this.#error = error;
    }
    this.#ended = true;
    this.#wake?.();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }
}
