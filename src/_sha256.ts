// SHA-256 and HMAC-SHA-256 (FIPS 180-4, RFC 2104) in plain TypeScript. Private: not re-exported.
//
// The gate MACs one short token per connection. WebCrypto's sign() is asynchronous and, on Node,
// a thread-pool job per call: it was most of the gate's CPU time per knock. These run in a few
// microseconds, synchronously, with no branch or table lookup that depends on the data.

const K = new Uint32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);
const IV = new Uint32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);
const BLOCK = 64;
const W = new Uint32Array(64); // message schedule scratch, shared: the functions do not re-enter

/** Hashes `block[offset, offset + 64)` into `state`. */
function compress(state: Uint32Array, block: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) {
    const j = offset + i * 4;
    W[i] = (block[j]! << 24) | (block[j + 1]! << 16) | (block[j + 2]! << 8) | block[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = W[i - 16]! + s0 + W[i - 7]! + s1;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!;
  let e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + s1 + ((e & f) ^ (~e & g)) + K[i]! + W[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = state[0]! + a;
  state[1] = state[1]! + b;
  state[2] = state[2]! + c;
  state[3] = state[3]! + d;
  state[4] = state[4]! + e;
  state[5] = state[5]! + f;
  state[6] = state[6]! + g;
  state[7] = state[7]! + h;
}

// One hash at a time runs over this module scratch (the functions are synchronous and do not
// re-enter), so a call allocates nothing but its 32-byte result.
const STATE = new Uint32Array(8);
const TAIL = new Uint8Array(BLOCK * 2); // the unfinished block, then room for the padding
let tailFilled = 0;
let totalLength = 0;

function begin(initial: Uint32Array, absorbed: number): void {
  STATE.set(initial);
  tailFilled = 0;
  totalLength = absorbed;
}

function update(part: Uint8Array): void {
  totalLength += part.length;
  let offset = 0;
  if (tailFilled > 0) {
    const take = Math.min(BLOCK - tailFilled, part.length);
    TAIL.set(part.subarray(0, take), tailFilled);
    tailFilled += take;
    offset = take;
    if (tailFilled < BLOCK) return;
    compress(STATE, TAIL, 0);
    tailFilled = 0;
  }
  for (; offset + BLOCK <= part.length; offset += BLOCK) compress(STATE, part, offset);
  TAIL.set(part.subarray(offset), 0);
  tailFilled = part.length - offset;
}

function finish(digest: Uint8Array): Uint8Array {
  // Padding: 0x80, zeros, then the length in bits as a 64-bit big-endian number.
  TAIL.fill(0, tailFilled);
  TAIL[tailFilled] = 0x80;
  const end = tailFilled + 9 <= BLOCK ? BLOCK : BLOCK * 2;
  writeUint32(TAIL, end - 8, Math.floor(totalLength / 0x2000_0000)); // (length * 8) >>> 32
  writeUint32(TAIL, end - 4, totalLength * 8);
  compress(STATE, TAIL, 0);
  if (end > BLOCK) compress(STATE, TAIL, BLOCK);
  for (let i = 0; i < 8; i++) writeUint32(digest, i * 4, STATE[i]!);
  return digest;
}

function writeUint32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = value >>> 16;
  bytes[offset + 2] = value >>> 8;
  bytes[offset + 3] = value;
}

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  begin(IV, 0);
  for (const part of parts) update(part);
  return finish(new Uint8Array(32));
}

/**
 * An HMAC-SHA-256 function for one key. The states after the key's inner and outer pads are
 * computed once, so each MAC of a short message costs two compressions.
 */
export function createHmacSha256(key: Uint8Array): (message: Uint8Array) => Uint8Array {
  const block = new Uint8Array(BLOCK);
  block.set(key.length > BLOCK ? sha256(key) : key);
  const padded = (pad: number) => {
    begin(IV, 0);
    update(block.map((byte) => byte ^ pad));
    return STATE.slice();
  };
  const inner = padded(0x36);
  const outer = padded(0x5c);
  const innerDigest = new Uint8Array(32);
  return (message) => {
    begin(inner, BLOCK);
    update(message);
    finish(innerDigest);
    begin(outer, BLOCK);
    update(innerDigest);
    return finish(new Uint8Array(32));
  };
}
