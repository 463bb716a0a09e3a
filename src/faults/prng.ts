/**
 * A small seeded pseudo-random generator, so that every random choice of a fault proxy
 * (toxicity, jitter, slicer sizes) replays from a seed.
 *
 * @module
 */

/**
 * A source of numbers in [0, 1), the same sequence for the same key (sfc32 seeded by a
 * cyrb128 hash of the key).
 *
 * @example Two generators from one key agree
 * ```ts
 * import { SeededRandom } from "./prng.ts";
 *
 * const a = new SeededRandom("42/db/1/upstream");
 * const b = new SeededRandom("42/db/1/upstream");
 * console.log(a.next() === b.next()); // true
 * ```
 */
export class SeededRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /**
   * Creates the generator for `key`.
   *
   * @param key Any string: a seed, a proxy name and a connection number, joined.
   */
  constructor(key: string) {
    [this.#a, this.#b, this.#c, this.#d] = cyrb128(key);
    for (let i = 0; i < 12; i++) this.next(); // mix the state before use
  }

  /** The next number in [0, 1). */
  next(): number {
    let a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.#a = a, this.#b = b, this.#c = c, this.#d = d;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [0, n) (0 when n <= 0). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.next() * n);
  }
}

function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4, h2 ^= h1, h3 ^= h1, h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}
