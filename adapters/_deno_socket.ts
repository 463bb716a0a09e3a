// The Deno adapter's socket: a Deno.Conn as echogate's StreamSocket, read with adaptive buffers.

import type { Address, ChunkResponder, StreamSocket, TlsInfo } from "../src/mod.ts";
import { Deno, type DenoAddr, type DenoConn } from "./_deno_api.ts";
import { prefixedBuffer } from "./_prefixed_buffer.ts";

// Read buffers adapt: 4 KiB at first (a gate token over 1 KiB shows in the first read), doubled
// while reads fill them, cut to a quarter (down to 512 bytes, so idle connections stay cheap) while
// reads use less than a quarter.
const FIRST_READ = 4 * 1024;
const MIN_READ = 512;
const MAX_READ = 64 * 1024;

function nextReadSize(size: number, n: number): number {
  if (n === size) return size < MAX_READ ? size * 2 : size;
  return n < size / 4 && size > MIN_READ ? Math.max(MIN_READ, size / 4) : size;
}

// answerEach keeps one buffer and cuts it only after this many reads in a row used under a
// quarter of it: a stream's reads vary in size, and cutting at the first small one traded the
// buffer for a new one every few reads (garbage that Deno's heap and glibc then keep).
const SHRINK_AFTER = 8;

/** Deno's TLS connections (Deno.startTls, Deno.connectTls; Deno 2.9) name their addresses without `transport`. */
export function withTransport(addr: DenoAddr): Address {
  return "transport" in addr ? addr : { transport: "tcp", ...(addr as { hostname: string; port: number }) };
}

/** A Deno connection as echogate's {@linkcode StreamSocket}: pulled with `conn.read()`. */
export class DenoStreamSocket implements StreamSocket {
  readonly remoteAddr: Address;
  declare readonly tls?: TlsInfo; // set on TLS connections only
  #conn: DenoConn;
  #readSize = FIRST_READ;
  #writing: Promise<unknown> | undefined; // the last write, which closeWrite() lets finish first
  #isClosed = false;
  #closed: Promise<void> | undefined;
  #markClosed: (() => void) | undefined;

  constructor(conn: DenoConn, remoteAddr: Address = withTransport(conn.remoteAddr), tls?: TlsInfo) {
    this.#conn = conn;
    this.remoteAddr = remoteAddr;
    if (tls) (this as { tls?: TlsInfo }).tls = tls;
  }

  get localAddr(): Address {
    return withTransport(this.#conn.localAddr);
  }

  get closed(): Promise<void> {
    return this.#closed ??= this.#isClosed ? Promise.resolve() : new Promise((resolve) => (this.#markClosed = resolve));
  }

  async read(): Promise<Uint8Array | null> {
    // A fresh buffer per read: read() chunks stay valid after the next read.
    const buffer = new Uint8Array(this.#readSize);
    const n = await this.#readInto(buffer);
    if (n === null) return null;
    this.#readSize = nextReadSize(this.#readSize, n);
    return buffer.subarray(0, n);
  }

  answerEach(responder: ChunkResponder): void {
    void this.#answerLoop(responder);
  }

  async #answerLoop(responder: ChunkResponder): Promise<void> {
    let failure: unknown;
    try {
      // One buffer, reused for every read (answerEach lends its chunks). It starts at the floor,
      // not at FIRST_READ: small exchanges then never allocate (and leave as garbage) a bigger one.
      // With a reply prefix, chunks are read right behind a copy of it, so prefix + chunk is
      // answered from this buffer too: no reply buffer per chunk, which Deno would leave to GC
      // and glibc to hold (docs/reliability.md).
      const prefix = responder.replyPrefix;
      const offset = prefix?.length ?? 0;
      let buffer = prefixedBuffer(prefix, Math.max(MIN_READ, responder.readBytes ?? 0));
      let readInto = buffer.subarray(offset);
      let smallReads = 0;
      while (!this.#isClosed) {
        // #readInto's work, inline: its async frame would stay alive on every idle connection.
        let n: number | null;
        try {
          n = await this.#conn.read(readInto);
        } catch (error) {
          if (this.#isClosed || isTruncation(error)) break; // closed by us while the read was pending
          throw error;
        }
        if (n === null) break;
        const reply = offset === 0
          ? responder.answer(buffer.subarray(0, n))
          : responder.answer(readInto.subarray(0, n), buffer.subarray(0, offset + n));
        if (reply === null) break;
        // Awaited before the next read, which may overwrite a reply that is the lent chunk itself.
        // conn.write() itself, not write(): no promise of our own per chunk.
        if (reply !== undefined && reply.length > 0) {
          const written = await (this.#writing = this.#conn.write(reply));
          if (written < reply.length) await this.write(reply.subarray(written));
          responder.answered?.();
        }
        let size = nextReadSize(readInto.length, n);
        if (size >= readInto.length) smallReads = 0;
        else if (++smallReads < SHRINK_AFTER) size = readInto.length;
        if (size !== readInto.length) {
          smallReads = 0;
          buffer = prefixedBuffer(prefix, size);
          readInto = buffer.subarray(offset);
        }
      }
    } catch (error) {
      failure = error;
    }
    responder.ended(failure);
  }

  async #readInto(buffer: Uint8Array): Promise<number | null> {
    if (this.#isClosed) return null;
    try {
      return await this.#conn.read(buffer);
    } catch (error) {
      if (this.#isClosed || isTruncation(error)) return null; // closed by us while the read was pending
      throw error;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return this.#writing = this.#writeAll(bytes);
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    // conn.write() may take only part of the data.
    let written = await this.#conn.write(bytes);
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  async closeWrite(): Promise<void> {
    if (this.#isClosed) return;
    try {
      // A write still in flight (answerEach's) goes out before the FIN.
      await this.#writing;
      await this.#conn.closeWrite();
    } catch {
      // Already shut down or reset: nothing to flush.
    }
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    closeQuietly(this.#conn);
    this.#markClosed?.();
  }
}

/**
 * A TLS peer that sends FIN without close_notify makes Deno's read() reject with UnexpectedEof
 * (denoland/deno#23960). Everything it sent was authenticated, so that is end of input as on TCP.
 */
function isTruncation(error: unknown): boolean {
  return error instanceof Deno.errors.UnexpectedEof;
}

/** Closes `resource`, which may be closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
