import { afterEach, describe, expect, test } from "vitest";
import { knockGate, sendEcho, serveEcho, serveGate, type ServeGateOptions } from "../src/mod.ts";
import { createTokenMatcher, REFUSAL, tokenFromChunk, WELCOME } from "../src/gate/mod.ts";
import {
  bytes,
  cleanup,
  portOf,
  readAll,
  recordingLogger,
  RUNTIME,
  tempSocketPath,
  text,
  transport,
} from "./_utils.ts";
import { matchesAnySlot } from "../src/gate/_constant_time.ts";

const resources = cleanup();
afterEach(() => resources.run());

async function startGate(options: Partial<ServeGateOptions> = {}) {
  const server = resources.add(await serveGate({ transport, port: 0, ...options }));
  const connect = async () => resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
  return { server, connect };
}

/** Sends `token` on a fresh connection and returns everything the gate says before closing. */
async function knockRaw(
  connect: () => Promise<{ write(b: Uint8Array): Promise<void> } & Parameters<typeof readAll>[0]>,
  token: string,
) {
  const socket = await connect();
  await socket.write(bytes(token));
  return text(await readAll(socket));
}

describe(`gate server on ${RUNTIME}`, () => {
  test("welcomes the right token and then closes", async () => {
    const { connect } = await startGate();
    expect(await knockRaw(connect, "1")).toBe(WELCOME);
  });

  test("a binary token opens the gate byte for byte; the same bytes with a NUL or a byte missing do not", async () => {
    const token = "\u0000k\u00e9y\u0001";
    const { connect } = await startGate({ tokens: ["other", token] });
    const send = async (payload: Uint8Array) => {
      const socket = await connect();
      await socket.write(payload);
      return text(await readAll(socket));
    };
    expect(await send(bytes(token))).toBe(WELCOME);
    expect(await send(bytes(token + "\u0000"))).toBe(REFUSAL);
    expect(await send(bytes(token).subarray(1))).toBe(REFUSAL);
  });

  test("refuses a wrong token", async () => {
    const { connect } = await startGate();
    expect(await knockRaw(connect, "2")).toBe(REFUSAL);
    expect(await knockRaw(connect, "11")).toBe(REFUSAL);
    expect(await knockRaw(connect, " 1")).toBe(REFUSAL);
  });

  test("accepts the token with one trailing \\n or \\r\\n (typed into nc), but not two", async () => {
    const { connect } = await startGate();
    expect(await knockRaw(connect, "1\n")).toBe(WELCOME);
    expect(await knockRaw(connect, "1\r\n")).toBe(WELCOME);
    expect(await knockRaw(connect, "1\n\n")).toBe(REFUSAL);
    expect(await knockRaw(connect, "1\r")).toBe(REFUSAL);
  });

  test("logs a time out and closes without a reply when no token arrives in time", async () => {
    const logger = recordingLogger();
    const { connect } = await startGate({ timeoutMs: 150, logger });
    const socket = await connect();
    expect(await readAll(socket)).toHaveLength(0);
    expect(await logger.waitForEvent("timeout")).toMatchObject({ event: "timeout" });
  });

  test("a shorter deadline set after a longer one ends first: a close linger before an earlier token wait", async () => {
    // Every deadline shares one timer (src/_timers.ts): the linger of a knock made after a silent
    // connection opened must not wait for that connection's token timeout.
    const logger = recordingLogger();
    const { connect } = await startGate({ timeoutMs: 3000, lingerMs: 200, logger });
    const silent = await connect();
    const knocker = await connect();
    await knocker.write(bytes("1"));
    expect(text(await readAll(knocker))).toBe(WELCOME); // our side stays open: the gate lingers, then closes
    await logger.waitForEvent("timeout", 15_000);
    const close = logger.events.findIndex((e) => e.event === "close");
    expect(logger.events[close]).toMatchObject({ event: "close", bytesIn: 1 });
    expect(close).toBeLessThan(logger.events.findIndex((e) => e.event === "timeout"));
    silent.close();
  });

  test("answers a late token with nothing once the timeout has passed", async () => {
    const { connect } = await startGate({ timeoutMs: 100 });
    const socket = await connect();
    await new Promise((r) => setTimeout(r, 300)); // deliberately past the gate's timeout
    await socket.write(bytes("1")).catch(() => {});
    expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
  });

  test("handles knockers independently: a silent connection does not delay others", async () => {
    const { connect } = await startGate({ timeoutMs: 10_000 });
    const silent = await Promise.all([connect(), connect(), connect()]);
    const started = Date.now();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => knockRaw(connect, i % 2 ? "1" : "no")));
    expect(replies.filter((r) => r === WELCOME)).toHaveLength(10);
    expect(replies.filter((r) => r === REFUSAL)).toHaveLength(10);
    expect(Date.now() - started).toBeLessThan(10_000); // none waited for the silent ones' timeout
    for (const socket of silent) socket.close();
  });

  test("accepts any of several tokens", async () => {
    const { connect } = await startGate({ tokens: ["alpha", "beta"] });
    expect(await knockRaw(connect, "alpha")).toBe(WELCOME);
    expect(await knockRaw(connect, "beta\n")).toBe(WELCOME);
    expect(await knockRaw(connect, "1")).toBe(REFUSAL);
  });

  test("only the first 1024 bytes are the token, as with the seed's recv(1024)", async () => {
    const long = "x".repeat(1024);
    const { connect } = await startGate({ tokens: [long] });
    expect(await knockRaw(connect, long)).toBe(WELCOME);
    expect(await knockRaw(connect, long + "y")).toBe(WELCOME);
    expect(await knockRaw(connect, long.slice(1))).toBe(REFUSAL);
  });

  test("serves on a unix socket", async () => {
    const path = tempSocketPath("gate");
    resources.add(await serveGate({ transport, path }));
    const result = await knockGate({ transport, path, delayMs: 0 });
    expect(result).toEqual({ welcomed: true, reply: WELCOME });
  });
});

describe(`clients on ${RUNTIME}`, () => {
  test("knockGate reports welcomed only for the welcome reply", async () => {
    const { server } = await startGate({ tokens: ["s3cret"] });
    const port = portOf(server);
    expect(await knockGate({ transport, hostname: "127.0.0.1", port, token: "s3cret", delayMs: 10 }))
      .toEqual({ welcomed: true, reply: WELCOME });
    expect(await knockGate({ transport, hostname: "127.0.0.1", port, token: "guess", delayMs: 0 }))
      .toEqual({ welcomed: false, reply: REFUSAL });
  });

  test("sendEcho returns one reply per message, including one the server answered in several frames", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const big = "z".repeat(200_000);
    const replies = await sendEcho({ transport, hostname: "localhost", port: portOf(server), messages: [big, "a"] });
    const first = text(replies[0]!);
    expect(first.startsWith("Echo=>")).toBe(true);
    expect(first.replaceAll("Echo=>", "") === big).toBe(true); // every byte came back, none left over
    expect(text(replies[1]!)).toBe("Echo=>a");
  });

  test("sendEcho defaults to the seed's message", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const [reply] = await sendEcho({ transport, port: portOf(server) });
    expect(text(reply!)).toBe("Echo=>Hello network world");
  });
});

describe("gate token helpers", () => {
  test("tokenFromChunk strips exactly one trailing newline", () => {
    expect(text(tokenFromChunk(bytes("abc\r\n")))).toBe("abc");
    expect(text(tokenFromChunk(bytes("abc\n\n")))).toBe("abc\n");
    expect(text(tokenFromChunk(bytes("\n")))).toBe("");
  });

  test("createTokenMatcher matches only exact tokens and rejects an empty token list", () => {
    const matches = createTokenMatcher(["one", "two"]);
    expect(matches(bytes("one"))).toBe(true);
    expect(matches(bytes("two"))).toBe(true);
    expect(matches(bytes("on"))).toBe(false);
    expect(matches(bytes("one "))).toBe(false);
    expect(() => createTokenMatcher([])).toThrow(/token/);
  });

  test("createTokenMatcher: equal, unequal, prefix, extension, trailing NUL, binary and length-limit cases", () => {
    const matches = createTokenMatcher(["s3cret", "\u0000\u00ff\n\u{1f511}", "x".repeat(1024)]);
    expect(matches(bytes("s3cret"))).toBe(true);
    expect(matches(bytes("s3creT"))).toBe(false);
    expect(matches(bytes("S3cret"))).toBe(false);
    expect(matches(bytes("s3cre"))).toBe(false); // a prefix
    expect(matches(bytes("s3crets"))).toBe(false); // an extension
    // Zero padding fills the slot: only the length compare tells these apart from the token.
    expect(matches(bytes("s3cret\u0000"))).toBe(false);
    expect(matches(Uint8Array.from([...bytes("s3cret"), 0, 0, 0, 0]))).toBe(false);
    expect(matches(new Uint8Array(0))).toBe(false);
    // A binary token (NUL, U+00FF, a newline, an emoji) matches its exact UTF-8 bytes only.
    expect(matches(bytes("\u0000\u00ff\n\u{1f511}"))).toBe(true);
    expect(matches(Uint8Array.from([0x00, 0xff, 0x0a]))).toBe(false); // U+00FF as one Latin-1 byte
    // The longest token (1024 bytes) matches; 1025 bytes whose first 1024 are that token do not.
    expect(matches(bytes("x".repeat(1024)))).toBe(true);
    expect(matches(bytes("x".repeat(1025)))).toBe(false);
    expect(matches(bytes("x".repeat(1023)))).toBe(false);
    expect(() => createTokenMatcher(["y".repeat(1025)])).toThrow(RangeError);
    expect(() => createTokenMatcher(["\u00e9".repeat(513)])).toThrow(/1026 bytes/); // 2 bytes each in UTF-8
    // An empty-token matcher is still exact: only the empty candidate.
    const empty = createTokenMatcher([""]);
    expect(empty(new Uint8Array(0))).toBe(true);
    expect(empty(new Uint8Array(1))).toBe(false);
  });

  test("the comparison reads every word of every token slot, wherever the candidate first differs", () => {
    // Counting arrays stand in for the typed arrays: the number of reads must not depend on
    // the candidate (same for a match, a miss at the first or last word, a shorter candidate).
    const slotWords = 256;
    const tokens = [bytes("alpha"), bytes("s3cret-token"), new Uint8Array(1024).fill(7)];
    const slots = new Int32Array(tokens.length * slotWords);
    tokens.forEach((t, i) => new Uint8Array(slots.buffer, i * 1024, 1024).set(t));
    const lengths = Int32Array.from(tokens, (t) => t.length);
    const counting = <T extends ArrayLike<number>>(array: T, counter: { reads: number }): T =>
      new Proxy(array, {
        get(target, key) {
          if (typeof key === "string" && /^\d+$/.test(key)) counter.reads++;
          return Reflect.get(target, key);
        },
      });
    const readsFor = (candidate: Uint8Array): { reads: number; matched: boolean } => {
      const words = new Int32Array(slotWords);
      new Uint8Array(words.buffer).set(candidate);
      const counter = { reads: 0 };
      const matched = matchesAnySlot(
        counting(slots, counter),
        counting(lengths, counter),
        slotWords,
        counting(words, counter),
        candidate.length,
      );
      return { reads: counter.reads, matched };
    };
    const lastWordDiffers = new Uint8Array(1024).fill(7);
    lastWordDiffers[1023] = 8;
    const firstByteDiffers = new Uint8Array(1024).fill(7);
    firstByteDiffers[0] = 0;
    const cases = [
      bytes("s3cret-token"), // matches the second token
      new Uint8Array(1024).fill(7), // matches the third, a full slot
      bytes("t3cret-token"), // differs at the first byte
      bytes("s3cret-tokeN"), // differs at the last byte
      lastWordDiffers,
      firstByteDiffers,
      bytes("s"), // a one-byte prefix
      new Uint8Array(0),
    ];
    const results = cases.map(readsFor);
    expect(results.map((r) => r.matched)).toEqual([true, true, false, false, false, false, false, false]);
    // Per token: its length, and its slot's words and the candidate's, all of them.
    const expected = tokens.length * (1 + 2 * slotWords);
    expect(results.map((r) => r.reads)).toEqual(cases.map(() => expected));
  });
});
