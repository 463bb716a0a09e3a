// An echoed byte stream checked as it arrives, against a pattern both sides compute from the byte's
// position: the soak's peers use it (test/robustness.test.ts has its own copy for now). The pattern
// never holds the prefix's first byte, "E", so a frame can only start where that byte appears.

const PREFIX = new TextEncoder().encode("Echo=>");

/** `length` bytes of `patternByte` from `offset` (a Buffer, for node:net's write). */
export function patternBytes(patternByte, offset, length) {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = patternByte(offset + i);
  return bytes;
}

/**
 * Checks an echo in order: the pattern, with "Echo=>" frames around its pieces when `framed`
 * (chunk mode). `received` counts pattern bytes; `error` says what first went wrong.
 */
export class EchoVerifier {
  received = 0;
  error = undefined;
  #patternByte;
  #framed;
  #inPrefix = 0;

  constructor(patternByte, { framed = true } = {}) {
    this.#patternByte = patternByte;
    this.#framed = framed;
  }

  push(chunk) {
    for (let k = 0; k < chunk.length && this.error === undefined; k++) {
      const byte = chunk[k];
      if (this.#inPrefix > 0) {
        if (byte !== PREFIX[this.#inPrefix]) this.error = `bad prefix byte at offset ${this.received}`;
        this.#inPrefix = (this.#inPrefix + 1) % PREFIX.length;
      } else if (this.#framed && byte === PREFIX[0]) this.#inPrefix = 1;
      else if (byte !== this.#patternByte(this.received)) {
        this.error = `byte ${this.received} is ${byte}, expected ${this.#patternByte(this.received)}`;
      } else this.received++;
    }
  }
}
