// Messages and their checks: what each connection sends, and how its echo is verified.

import { concatAll, pythonRepr, utf8 } from "../_bytes.ts";

// Stream mode writes blocks of half the window (at most 64 KiB), cut from a pattern
// whose length is prime so that a lost or repeated block shifts the pattern visibly.
export const PATTERN_LENGTH = 65_521;
export const MAX_BLOCK = 64 * 1024;
// The longest message header carrying the sequence number.
const SEQUENCE_DIGITS = 12;

/** A reply that differs from what was sent (counted apart from errors). */
export class Mismatch extends Error {}

// --- messages ---

/** Message bytes: lowercase letters and digits, never the prefix's first byte (so frames parse). */
export function messageAlphabet(prefix: Uint8Array): Uint8Array {
  const chars = utf8("abcdefghijklmnopqrstuvwxyz0123456789");
  return chars.filter((c) => prefix.length === 0 || c !== prefix[0]);
}

/**
 * A message with a pattern particular to its connection, whose first bytes count messages in
 * the alphabet's digits (so a stale echo is caught). It ends with `\n` so line-mode servers
 * answer too.
 */
export class SequenceCounter {
  #message: Uint8Array;
  #digits: number;
  #successor = new Uint8Array(256);
  #zero: number;
  #sequence = -1;

  constructor(message: Uint8Array, alphabet: Uint8Array, index: number) {
    this.#message = message;
    for (let i = 0; i < message.length; i++) message[i] = alphabet[(index * 7 + i * 13) % alphabet.length]!;
    if (message.length > 0) message[message.length - 1] = 0x0a;
    this.#digits = Math.min(SEQUENCE_DIGITS, message.length - 1);
    this.#zero = alphabet[0]!;
    for (let i = 0; i < alphabet.length; i++) this.#successor[alphabet[i]!] = alphabet[(i + 1) % alphabet.length]!;
  }

  /** Stamps the next sequence number into the message and returns it (0 first). */
  next(): number {
    const message = this.#message;
    if (++this.#sequence === 0) {
      for (let i = 0; i < this.#digits; i++) message[i] = this.#zero;
      return 0;
    }
    for (let i = this.#digits - 1; i >= 0; i--) {
      const digit = this.#successor[message[i]!]!;
      message[i] = digit;
      if (digit !== this.#zero) break; // no carry
    }
    return this.#sequence;
  }
}

export function isEcho(chunk: Uint8Array, prefix: Uint8Array, message: Uint8Array): boolean {
  for (let i = 0; i < prefix.length; i++) if (chunk[i] !== prefix[i]) return false;
  const offset = prefix.length;
  for (let i = 0; i < message.length; i++) if (chunk[offset + i] !== message[i]) return false;
  return true;
}

export function preview(...parts: Uint8Array[]): string {
  const bytes = concatAll(parts);
  const shown = pythonRepr(bytes.subarray(0, 40));
  return bytes.length > 40 ? `${shown}… (${bytes.length} bytes)` : shown;
}

// --- stream mode ---

export function blockSize(window: number): number {
  return Math.min(Math.max(Math.floor(window / 2), 1), MAX_BLOCK);
}

/**
 * The stream pattern, laid out four times at every alignment mod 4, each long enough that any
 * block starting inside the pattern is one contiguous slice, so comparisons run four bytes at a time.
 */
export class PatternCopies {
  readonly block: number;
  readonly #copies: Uint8Array[] = [];

  constructor(block: number, avoid: number) {
    this.block = block;
    const length = PATTERN_LENGTH + Math.max(block, MAX_BLOCK);
    const base = new Uint8Array(length);
    let x = 0x9e3779b9;
    for (let i = 0; i < PATTERN_LENGTH; i++) {
      // xorshift32
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      let byte = x & 0xff;
      if (byte === avoid) byte = (byte + 1) & 0xff;
      base[i] = byte;
    }
    for (let i = PATTERN_LENGTH; i < length; i++) base[i] = base[i - PATTERN_LENGTH]!;
    for (let shift = 0; shift < 4; shift++) {
      const copy = new Uint8Array(new ArrayBuffer(length + 4), shift, length);
      copy.set(base);
      this.#copies.push(copy);
    }
  }

  /** The `length` pattern bytes from `offset` (which is below the pattern length). */
  slice(offset: number, length: number): Uint8Array {
    return this.#copies[0]!.subarray(offset, offset + length);
  }

  /** How many pattern bytes a comparison at `offset` can cover in one go. */
  span(offset: number): number {
    return this.#copies[0]!.length - offset;
  }

  /**
   * Compares `length` bytes of `chunk` from `at` with the pattern from `offset`; returns -1
   * when equal, else the index (from `at`) of the first difference.
   */
  compare(chunk: Uint8Array, at: number, offset: number, length: number): number {
    const address = (chunk.byteOffset + at) & 3;
    const copy = this.#copies[(address - offset) & 3]!;
    let i = 0;
    // Head bytes until both sides are 4-aligned (they are at the same alignment).
    while (i < length && ((chunk.byteOffset + at + i) & 3) !== 0) {
      if (chunk[at + i] !== copy[offset + i]) return i;
      i++;
    }
    const words = (length - i) >>> 2;
    if (words > 8) {
      const a = new Uint32Array(chunk.buffer, chunk.byteOffset + at + i, words);
      const b = new Uint32Array(copy.buffer, copy.byteOffset + offset + i, words);
      for (let k = 0; k < words; k++) {
        if (a[k] !== b[k]) {
          for (let j = i + k * 4;; j++) if (chunk[at + j] !== copy[offset + j]) return j;
        }
      }
      i += words * 4;
    }
    for (; i < length; i++) if (chunk[at + i] !== copy[offset + i]) return i;
    return -1;
  }
}

/**
 * Checks an echoed stream in order: raw, or as `prefix + piece` frames (the pattern never
 * holds the prefix's first byte, so a frame can start only where that byte appears).
 */
export class StreamVerifier {
  received = 0;
  #pattern: PatternCopies;
  #origin: number;
  #prefix: Uint8Array;
  #what: string;
  /** Prefix bytes matched of the frame being read; -1 between frames (payload). */
  #inPrefix: number;
  #payloadInFrame = 0;

  constructor(pattern: PatternCopies, origin: number, prefix: Uint8Array, what: string) {
    this.#pattern = pattern;
    this.#origin = origin;
    this.#prefix = prefix;
    this.#what = what;
    this.#inPrefix = prefix.length > 0 ? 0 : -1;
  }

  push(chunk: Uint8Array): void {
    const prefix = this.#prefix;
    let j = 0;
    while (j < chunk.length) {
      if (this.#inPrefix >= 0) {
        while (this.#inPrefix < prefix.length && j < chunk.length) {
          if (chunk[j] !== prefix[this.#inPrefix]) {
            throw new Mismatch(
              `${this.#what}: expected the prefix ${pythonRepr(prefix)} at echoed byte ${this.received}, got ${
                preview(chunk.subarray(j - Math.min(j, this.#inPrefix)))
              }`,
            );
          }
          this.#inPrefix++;
          j++;
        }
        if (this.#inPrefix === prefix.length) {
          this.#inPrefix = -1;
          this.#payloadInFrame = 0;
        }
        continue;
      }
      let end = chunk.length;
      if (prefix.length > 0) {
        const next = chunk.indexOf(prefix[0]!, j);
        if (next !== -1) end = next;
      }
      this.#payload(chunk, j, end);
      j = end;
      if (j < chunk.length) {
        if (this.#payloadInFrame === 0) {
          throw new Mismatch(`${this.#what}: an empty frame at echoed byte ${this.received}`);
        }
        this.#inPrefix = 0;
      }
    }
  }

  #payload(chunk: Uint8Array, from: number, to: number): void {
    let at = from;
    while (at < to) {
      const offset = (this.#origin + this.received) % PATTERN_LENGTH;
      const length = Math.min(to - at, this.#pattern.span(offset));
      const bad = this.#pattern.compare(chunk, at, offset, length);
      if (bad !== -1) {
        const position = this.received + bad;
        throw new Mismatch(
          `${this.#what}: echoed byte ${position} is ${hex(chunk[at + bad]!)}, expected ${
            hex(this.#pattern.slice((this.#origin + position) % PATTERN_LENGTH, 1)[0]!)
          }`,
        );
      }
      at += length;
      this.received += length;
      this.#payloadInFrame += length;
    }
  }
}

export function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, "0")}`;
}
