// Small byte helpers shared by the protocols. Private: not re-exported from mod.ts.

const encoder = new TextEncoder();

/** UTF-8 encodes a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The largest result cut from a slab; write queues copy views up to this size (RETAIN_COPY_MAX). */
export const SLAB_VIEW_MAX = 1024;
const SLAB_BYTES = 8 * 1024;
const EMPTY = new Uint8Array(0);

/**
 * Joins byte arrays for one write. Small results are cut from shared slabs, as Node's Buffer pool
 * does: a separate ArrayBuffer per reply cost Node about 5% more CPU per round trip. A view must
 * not be kept for long, or it keeps its whole slab alive: writers that queue bytes keep a copy of
 * small views (toRetainable()).
 */
export class ReplySlabs {
  #allocate: (size: number) => Uint8Array;
  #slab: Uint8Array = EMPTY;
  #used = SLAB_BYTES; // the first join allocates the first slab

  /** @param allocate Makes uninitialized bytes of the runtime's preferred kind (Transport.allocate). */
  constructor(allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size)) {
    this.#allocate = allocate;
  }

  /** `a` then `b` in one array. */
  join(a: Uint8Array, b: Uint8Array): Uint8Array {
    const length = a.length + b.length;
    let out: Uint8Array;
    if (length > SLAB_VIEW_MAX) {
      out = this.#allocate(length);
    } else {
      if (this.#used + length > SLAB_BYTES) {
        this.#slab = this.#allocate(SLAB_BYTES);
        this.#used = 0;
      }
      out = this.#slab.subarray(this.#used, this.#used + length);
      this.#used += (length + 7) & ~7; // 8-byte aligned, like the runtimes' own pools
    }
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }
}

/** An empty list shared by queues with nothing queued, so an idle queue allocates none. Never push to it. */
export const NO_CHUNKS: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];

/** Joins any number of byte arrays into a new one. */
export function concatAll(parts: readonly Uint8Array[], total?: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total ?? parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** True when `bytes` ends with `suffix`. */
export function endsWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  if (suffix.length > bytes.length) return false;
  const start = bytes.length - suffix.length;
  for (let i = 0; i < suffix.length; i++) {
    if (bytes[start + i] !== suffix[i]) return false;
  }
  return true;
}

/** True when both arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && endsWith(a, b);
}

const ESCAPES: Record<number, string> = { 0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r", 0x27: "\\'", 0x5c: "\\\\" };

/**
 * Renders bytes the way Python 2 `repr()` renders a byte string: single quotes, printable
 * ASCII as is, `\t \n \r \' \\` escaped, everything else as `\xNN`. The seed's client prints this.
 */
export function pythonRepr(bytes: Uint8Array): string {
  let out = "'";
  for (const byte of bytes) {
    const escape = ESCAPES[byte];
    if (escape) out += escape;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += "\\x" + byte.toString(16).padStart(2, "0");
  }
  return out + "'";
}
