// Property tests (fast-check) on the framing code: whatever the chunk boundaries, line mode yields
// exactly the stream's lines, raw mode exactly the stream, and the gate opens only for the token.

import { describe, expect, test } from "vitest";
import fc from "fast-check";
import { type ConnectionContext, silentLogger, type StreamSocket } from "../src/mod.ts";
import { echoReplyState } from "../src/client/stream.ts";
import { createEchoHandler, LineSplitter } from "../src/echo/stream.ts";
import { createTokenMatcher, tokenFromChunk } from "../src/gate/mod.ts";
import { toRetainable, WriteQueue } from "../src/write_queue.ts";
import { ReplySlabs } from "../src/_bytes.ts";
import { concat } from "./_utils.ts";

const NL = 0x0a;

/** A byte stream rich in newlines, and a way to cut it into chunks. */
const streamAndCuts = fc
  .array(fc.oneof(fc.constant(NL), fc.integer({ min: 0, max: 255 })), { maxLength: 400 })
  .chain((stream) =>
    fc.tuple(
      fc.constant(Uint8Array.from(stream)),
      fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, stream.length - 1) }), { maxLength: 20 }),
    )
  );

function cut(stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [0, ...cuts.filter((c) => c < stream.length).sort((a, b) => a - b), stream.length];
  const chunks: Uint8Array[] = [];
  for (let i = 1; i < points.length; i++) {
    if (points[i]! > points[i - 1]!) chunks.push(stream.slice(points[i - 1], points[i]));
  }
  return chunks;
}

/** The lines of a stream: each ends after a newline; a final unterminated tail is a line too. */
function linesOf(stream: Uint8Array): Uint8Array[] {
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < stream.length; i++) {
    if (stream[i] === NL) {
      lines.push(stream.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < stream.length) lines.push(stream.slice(start));
  return lines;
}

/** An in-memory socket that yields `chunks` and records what is written. */
function memorySocket(chunks: Uint8Array[]): StreamSocket & { written: Uint8Array[] } {
  const queue = [...chunks];
  const written: Uint8Array[] = [];
  const addr = { transport: "unix" as const, path: "memory" };
  return {
    remoteAddr: addr,
    localAddr: addr,
    written,
    read: () => Promise.resolve(queue.shift() ?? null),
    write: (bytes) => (written.push(bytes.slice()), Promise.resolve()),
    closeWrite: () => Promise.resolve(),
    close() {},
    closed: Promise.resolve(),
  };
}

function context(): ConnectionContext {
  return {
    remote: "memory",
    logger: silentLogger,
    connectedAt: 0,
    bytesIn: 0,
    bytesOut: 0,
    lastActivity: 0,
    idle: false,
    stopping: false,
  };
}

/** The rule, restated independently of tokenFromChunk: one trailing "\r\n" or "\n" is not part of the token. */
const stripOneNewline = (s: string): string => s.replace(/\r?\n$/, "");

describe("framing properties", () => {
  test("LineSplitter yields exactly the lines of the stream, for any chunking", () => {
    fc.assert(
      fc.property(streamAndCuts, ([stream, cuts]) => {
        const splitter = new LineSplitter(1024);
        const lines: Uint8Array[] = [];
        for (const chunk of cut(stream, cuts)) lines.push(...splitter.push(chunk)!);
        const tail = splitter.flush();
        if (tail) lines.push(tail);
        expect(lines.map((l) => [...l])).toEqual(linesOf(stream).map((l) => [...l]));
      }),
      { numRuns: 300 },
    );
  });

  test("LineSplitter refuses a line longer than maxLine, and only then", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 128 }), (maxLine, length) => {
        const splitter = new LineSplitter(maxLine);
        const result = splitter.push(new Uint8Array(length).fill(0x61));
        expect(result === undefined).toBe(length > maxLine);
      }),
    );
  });

  test("line mode answers prefix + line for each line of the stream, for any chunking", async () => {
    await fc.assert(
      fc.asyncProperty(streamAndCuts, async ([stream, cuts]) => {
        const socket = memorySocket(cut(stream, cuts));
        await createEchoHandler({ mode: "line", prefix: ">" })(socket, context());
        const expected = linesOf(stream).flatMap((line) => [0x3e, ...line]);
        expect([...concat(socket.written)]).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  test("raw mode returns exactly the stream, for any chunking", async () => {
    await fc.assert(
      fc.asyncProperty(streamAndCuts, async ([stream, cuts]) => {
        const socket = memorySocket(cut(stream, cuts));
        await createEchoHandler({ mode: "raw" })(socket, context());
        expect([...concat(socket.written)]).toEqual([...stream]);
      }),
      { numRuns: 200 },
    );
  });

  test("chunk mode answers each read with prefix + chunk, and echoReplyState sees it complete", async () => {
    await fc.assert(
      fc.asyncProperty(streamAndCuts, async ([stream, cuts]) => {
        fc.pre(stream.length > 0);
        const chunks = cut(stream, cuts);
        const socket = memorySocket(chunks);
        await createEchoHandler({})(socket, context());
        const prefix = new TextEncoder().encode("Echo=>");
        expect(socket.written.map((w) => [...w])).toEqual(chunks.map((c) => [...prefix, ...c]));
        expect(echoReplyState(concat(socket.written), stream, prefix)).toBe("complete");
      }),
      { numRuns: 200 },
    );
  });

  test("the gate opens for the exact token, with or without one trailing newline, and nothing else", () => {
    const printable = fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(
        printable,
        printable,
        fc.constantFrom("", "\n", "\r\n", "\n\n", "\r", " "),
        (token, other, suffix) => {
          const matches = createTokenMatcher([token]);
          const enc = new TextEncoder();
          const exact = matches(tokenFromChunk(enc.encode(token + suffix)));
          expect(exact).toBe(stripOneNewline(token + suffix) === token);
          const wrong = matches(tokenFromChunk(enc.encode(other)));
          expect(wrong).toBe(stripOneNewline(other) === token);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("the token matcher says equal exactly when the bytes are equal, for any tokens and near misses", () => {
    const enc = new TextEncoder();
    // Any code points, NUL and control characters included, up to 1024 bytes once encoded.
    const token = fc.string({ unit: "binary", maxLength: 300 }).filter((t) => enc.encode(t).length <= 1024);
    // Candidates: the token itself, the token changed at one byte, cut short, extended (by NULs
    // too, which the zero padding must not hide), or arbitrary bytes.
    const candidate = (t: Uint8Array) =>
      fc.oneof(
        fc.constant(t),
        fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, flip]) => {
          const changed = t.slice();
          if (changed.length > 0) changed[at % changed.length]! ^= flip;
          return changed;
        }),
        fc.nat().map((n) => t.slice(0, t.length === 0 ? 0 : n % t.length)),
        fc.uint8Array({ minLength: 1, maxLength: 4 }).map((tail) => Uint8Array.from([...t, ...tail])),
        fc.integer({ min: 1, max: 4 }).map((zeros) => Uint8Array.from([...t, ...new Uint8Array(zeros)])),
        fc.uint8Array({ maxLength: 1100 }),
      );
    const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
    fc.assert(
      fc.property(
        fc.array(token, { minLength: 1, maxLength: 4 }).chain((tokens) =>
          fc.tuple(
            fc.constant(tokens),
            fc.nat().chain((pick) => candidate(enc.encode(tokens[pick % tokens.length]!))),
          )
        ),
        ([tokens, guess]) => {
          const expected = tokens.some((t) => sameBytes(enc.encode(t), guess));
          expect(createTokenMatcher(tokens)(guess)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("reply slabs join exactly, never overlap live replies, and take every buffer from the allocator", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 700 }), fc.uint8Array({ maxLength: 700 })), { maxLength: 60 }),
        (pairs) => {
          const allocated: Uint8Array[] = [];
          // Uninitialized memory, as the runtimes hand it out: every reply byte must be written.
          const slabs = new ReplySlabs((size) => {
            const buffer = new Uint8Array(size).fill(0xa5);
            allocated.push(buffer);
            return buffer;
          });
          const replies = pairs.map(([a, b]) => slabs.join(a, b));
          // Checked only after all were made: a later reply must not have overwritten an earlier one.
          replies.forEach((reply, i) => {
            const [a, b] = pairs[i]!;
            expect(reply).toEqual(concat([a, b]));
            if (reply.length > 0) expect(allocated.some((buffer) => buffer.buffer === reply.buffer)).toBe(true);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  test("queued bytes never keep a larger buffer alive: small views are copied, owned and large ones kept", () => {
    const slab = new Uint8Array(8192).fill(7);
    const small = slab.subarray(100, 170);
    const copy = toRetainable(small);
    expect(copy).toEqual(small);
    expect(copy.buffer.byteLength).toBe(70);
    const owned = new Uint8Array(70);
    expect(toRetainable(owned)).toBe(owned);
    const large = new Uint8Array(64 * 1024).subarray(0, 32 * 1024);
    expect(toRetainable(large)).toBe(large);
  });

  test("WriteQueue delivers every byte in order, whatever the socket takes per call, then sends FIN once", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 64 }), { minLength: 1, maxLength: 30 }),
        async (writes, takes) => {
          fc.pre(takes.some((t) => t > 0));
          const out: number[] = [];
          let call = 0;
          let finAt = -1;
          let fins = 0;
          const sink = {
            write(bytes: Uint8Array) {
              const n = Math.min(bytes.length, takes[call++ % takes.length]!);
              out.push(...bytes.subarray(0, n));
              return n;
            },
            shutdown() {
              fins++;
              finAt = out.length;
            },
          };
          const queue = new WriteQueue(sink, 128);
          let done = false;
          const writer = (async () => {
            for (const bytes of writes) await queue.write(bytes);
            await queue.closeWrite();
          })().then(() => (done = true));
          while (!done) {
            queue.flush(); // as the socket's drain callback would
            for (let i = 0; i < 4; i++) await Promise.resolve();
          }
          await writer;
          const expected = writes.flatMap((w) => [...w]);
          expect(out).toEqual(expected);
          expect(fins).toBe(1);
          expect(finAt).toBe(expected.length);
        },
      ),
      { numRuns: 200 },
    );
  });
});
