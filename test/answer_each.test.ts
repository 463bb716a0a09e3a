// The StreamSocket.answerEach contract (through answerAll), on this runtime's adapter over real
// loopback sockets, and answerQueued (the Node and Bun implementation) against any write-queue
// behaviour.

import { afterEach, describe, expect, test } from "vitest";
import fc from "fast-check";
import { serveEcho, serveGate, type StreamSocket, type Transport } from "../src/mod.ts";
import { createEchoHandler } from "../src/echo/stream.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { answerAll } from "../src/answer.ts";
import { answerQueued } from "../src/answer_queued.ts";
import { ReadQueue } from "../src/read_queue.ts";
import {
  bytes,
  cleanup,
  concat,
  deadline,
  portOf,
  readAll,
  readAtLeast,
  RUNTIME,
  text,
  transport,
  waitForStall,
  waitUntil,
  watchingTransport,
} from "./_utils.ts";

const resources = cleanup();
afterEach(() => resources.run());

/** A listener whose accepted sockets go to `onSocket`, and a connected client. */
async function pair(onSocket: (socket: StreamSocket) => void): Promise<StreamSocket> {
  const listener = resources.add(
    await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
      onSocket: (socket) => onSocket(resources.add(socket)),
      onError: () => {},
    }),
  );
  const port = listener.addr.transport === "tcp" ? listener.addr.port : 0;
  return resources.add(await transport.connect({ hostname: "127.0.0.1", port }));
}

type Answer = (chunk: Uint8Array) => Uint8Array | null | undefined;

/** Runs answerEach (through answerAll) on the next accepted socket; resolves with it and the answering promise. */
function answering(answer: Answer): {
  accepted: Promise<{ socket: StreamSocket; done: Promise<void> }>;
  onSocket: (socket: StreamSocket) => void;
} {
  let resolve!: (value: { socket: StreamSocket; done: Promise<void> }) => void;
  const accepted = new Promise<{ socket: StreamSocket; done: Promise<void> }>((r) => (resolve = r));
  return {
    accepted,
    onSocket(socket) {
      expect(typeof socket.answerEach).toBe("function");
      const done = answerAll(socket, answer);
      done.catch(() => {}); // inspected by the test
      resolve({ socket, done });
    },
  };
}

const upper = (chunk: Uint8Array) => bytes(text(chunk).toUpperCase());

describe(`StreamSocket.answerEach on ${RUNTIME}`, () => {
  test("answers every chunk in order and resolves when the peer finishes sending", async () => {
    const server = answering(upper);
    const client = await pair(server.onSocket);
    for (const word of ["abc", "def", "ghi"]) {
      await client.write(bytes(word));
      expect(text(await readAtLeast(client, 3))).toBe(word.toUpperCase());
    }
    await client.closeWrite();
    const { socket, done } = await server.accepted;
    await deadline(done, 5000, "answerEach to resolve at end of input");
    await socket.closeWrite();
    expect(await readAll(client)).toHaveLength(0);
  });

  test("an answer of null stops it, leaves later input to read(), and writes nothing for that chunk", async () => {
    const server = answering((chunk) => (text(chunk) === "stop" ? null : upper(chunk)));
    const client = await pair(server.onSocket);
    await client.write(bytes("go"));
    expect(text(await readAtLeast(client, 2))).toBe("GO");
    await client.write(bytes("stop"));
    const { socket, done } = await server.accepted;
    await deadline(done, 5000, "answerEach to resolve after null");
    await client.write(bytes("after"));
    expect(text(await readAtLeast(socket, 5))).toBe("after");
    await socket.closeWrite();
    expect(text(await readAll(client))).toBe(""); // "stop" was not answered
  });

  test("an answer of undefined writes nothing and reading goes on", async () => {
    const seen: string[] = [];
    const server = answering((chunk) => {
      seen.push(text(chunk));
      return text(chunk) === "quiet" ? undefined : upper(chunk);
    });
    const client = await pair(server.onSocket);
    await client.write(bytes("quiet"));
    await waitUntil(() => seen.length > 0, { timeoutMs: 5000, what: "the server to take the chunk" });
    await client.write(bytes("loud"));
    expect(text(await readAtLeast(client, 4))).toBe("LOUD");
    expect(seen).toEqual(["quiet", "loud"]);
  });

  test("answered is called once each answer is written, before the next chunk is answered", async () => {
    const steps: string[] = [];
    const client = await pair((socket) =>
      socket.answerEach!({
        answer: (chunk) => (steps.push(`answer ${text(chunk)}`), text(chunk) === "-" ? undefined : upper(chunk)),
        answered: () => void steps.push("answered"),
        ended: () => {},
      })
    );
    for (const word of ["ab", "-", "cd"]) {
      await client.write(bytes(word));
      if (word === "-") await waitUntil(() => steps.length >= 3, { timeoutMs: 5000, what: "the server to take it" });
      else expect(text(await readAtLeast(client, 2))).toBe(word.toUpperCase());
    }
    await waitUntil(() => steps.length >= 5, { timeoutMs: 5000, what: "the last answer to be written" });
    expect(steps).toEqual(["answer ab", "answered", "answer -", "answer cd", "answered"]); // none for no answer
  });

  test("rejects with the error an answer throws", async () => {
    const server = answering(() => {
      throw new Error("answer failed");
    });
    const client = await pair(server.onSocket);
    await client.write(bytes("x"));
    const { done } = await server.accepted;
    await expect(deadline(done, 5000, "answerEach to reject")).rejects.toThrow("answer failed");
  });

  test("a chunk returned as its own answer comes back intact, 4 MiB over many reads", async () => {
    const server = answering((chunk) => chunk);
    const client = await pair(server.onSocket);
    const sent = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7 + (i >> 11)) & 0xff);
    const writing = (async () => {
      for (let offset = 0; offset < sent.length; offset += 50_000) {
        await client.write(sent.subarray(offset, offset + 50_000));
      }
    })();
    const received = await readAtLeast(client, sent.length, 30_000);
    await writing;
    expect(received.length).toBe(sent.length);
    expect(received.findIndex((byte, i) => byte !== sent[i])).toBe(-1);
  });

  test("a peer that does not read stalls the answering, which resumes once it reads", async () => {
    let answered = 0;
    const server = answering((chunk) => {
      answered += chunk.length;
      return chunk;
    });
    const client = await pair(server.onSocket);
    const total = 64 * 1024 * 1024;
    let written = 0;
    const block = new Uint8Array(64 * 1024).fill(0x61);
    const writing = (async () => {
      while (written < total) {
        await client.write(block);
        written += block.length;
      }
    })();
    await waitUntil(() => answered > 0, { timeoutMs: 60_000, what: "the first answer" });
    await waitForStall(() => answered, 500, { timeoutMs: 60_000, what: "answering to stall for 500 ms" });
    expect(answered).toBeLessThan(total / 2);
    const received = await readAtLeast(client, total, 60_000);
    await writing;
    expect(received.length).toBe(total);
    expect(answered).toBe(total);
  }, 90_000);
});

describe(`StreamSocket.answerEach with a reply prefix on ${RUNTIME}`, () => {
  // Deno's adapter reads every chunk behind a copy of the prefix (one buffer per connection);
  // Node's and Bun's push their own chunks and ignore replyPrefix.
  const frames = RUNTIME === "deno";

  test(`${frames ? "passes" : "may pass"} prefix + chunk as one view, right as the read buffer grows and shrinks`, async () => {
    const prefix = bytes("P=>");
    let framedCalls = 0;
    let calls = 0;
    let resolveDone!: (error?: unknown) => void;
    const done = new Promise<unknown>((resolve) => (resolveDone = resolve));
    const client = await pair((socket) =>
      socket.answerEach!({
        replyPrefix: prefix,
        answer(chunk, framed) {
          calls++;
          if (framed === undefined) return concat([prefix, chunk]);
          framedCalls++;
          expect(framed.buffer).toBe(chunk.buffer);
          expect(framed.length).toBe(prefix.length + chunk.length);
          expect(text(framed.subarray(0, prefix.length))).toBe("P=>");
          expect(framed.byteOffset + prefix.length).toBe(chunk.byteOffset);
          return framed;
        },
        ended: resolveDone,
      })
    );
    // 1 MiB in large writes grows the read buffer to its ceiling; small exchanges then shrink it.
    const sent = new Uint8Array(1024 * 1024).map((_, i) => (i * 7 + (i >> 11)) & 0xff);
    const writing = (async () => {
      for (let offset = 0; offset < sent.length; offset += 64 * 1024) {
        await client.write(sent.subarray(offset, offset + 64 * 1024));
      }
    })();
    // Every reply is "P=>" + a piece of what was sent (the payload never holds "P=" or "=>").
    let received = new Uint8Array(0);
    let payload = new Uint8Array(0);
    while (payload.length < sent.length) {
      received = concat([received, await readAtLeast(client, 1, 30_000)]);
      payload = withoutPrefixes(received);
    }
    await writing;
    expect(payload.length).toBe(sent.length);
    expect(payload.findIndex((byte, i) => byte !== sent[i])).toBe(-1);
    for (const word of ["one", "two", "three", "four", "five", "six"]) {
      await client.write(bytes(word));
      expect(text(await readAtLeast(client, 3 + word.length))).toBe(`P=>${word}`);
    }
    await client.closeWrite();
    expect(await deadline(done, 5000, "answering to end")).toBeUndefined();
    if (frames) expect(framedCalls).toBe(calls);
    else expect(framedCalls).toBe(0);
  });
});

/** `bytes` with every "P=>" taken out, and a prefix cut short at the end (the payload does not end in 0x50). */
function withoutPrefixes(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x3d && bytes[i + 2] === 0x3e) i += 2;
    else if (bytes[i] === 0x50 && (i + 1 === bytes.length || (i + 2 === bytes.length && bytes[i + 1] === 0x3d))) break;
    else out.push(bytes[i]!);
  }
  return new Uint8Array(out);
}

describe(`servers on ${RUNTIME} and answerEach`, () => {
  /** A transport whose accepted sockets count their answerEach calls. */
  function spyingTransport(): { transport: Transport; calls: () => number } {
    let calls = 0;
    return {
      calls: () => calls,
      transport: watchingTransport((socket) => {
        const answerEach = socket.answerEach!.bind(socket);
        socket.answerEach = (responder) => (calls++, answerEach(responder));
      }),
    };
  }

  for (const mode of ["chunk", "raw", "line"] as const) {
    test(`echo's ${mode} mode ${mode === "line" ? "reads" : "answers through answerEach"}, and answers right`, async () => {
      const spy = spyingTransport();
      const server = resources.add(await serveEcho({ transport: spy.transport, port: 0, mode }));
      const client = resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
      await client.write(bytes("hi\n"));
      const expected = mode === "raw" ? "hi\n" : "Echo=>hi\n";
      expect(text(await readAtLeast(client, expected.length))).toBe(expected);
      expect(spy.calls()).toBe(mode === "line" ? 0 : 1);
    });
  }
});

describe(`the gate on ${RUNTIME} and answerEach`, () => {
  for (const handoff of [false, true]) {
    test(`a knock ${handoff ? "with a handoff reads" : "answers through answerEach"}, and answers right`, async () => {
      let calls = 0;
      const spying = watchingTransport((socket) => {
        const answerEach = socket.answerEach!.bind(socket);
        socket.answerEach = (responder) => (calls++, answerEach(responder));
      });
      const server = resources.add(
        await serveGate({
          transport: spying,
          port: 0,
          // Line mode reads: any answerEach call then is the knock's.
          ...(handoff && { handoff: createEchoHandler({ mode: "line" }) }),
        }),
      );
      const client = resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
      await client.write(bytes("1"));
      expect(text(await readAtLeast(client, WELCOME.length))).toBe(WELCOME);
      if (!handoff) expect(await readAll(client)).toHaveLength(0); // and the server's FIN
      expect(calls).toBe(handoff ? 0 : 1);
    });
  }
});

describe(`echo replies on ${RUNTIME}`, () => {
  // Deno's adapter answers from its read buffer, the prefix in front (see replyPrefix above).
  const fromReadBuffer = RUNTIME === "deno";
  test(
    `are ${
      fromReadBuffer
        ? "answered from the read buffer, nothing allocated per reply"
        : "cut from the transport's allocate"
    }, and stay right across slabs and for large chunks`,
    async () => {
      const sizes: number[] = [];
      const allocating: Transport = {
        ...transport,
        allocate(size) {
          sizes.push(size);
          // Dirty, as uninitialized memory may be: a reply byte left unwritten would show.
          return (transport.allocate?.(size) ?? new Uint8Array(size)).fill(0x5a);
        },
      };
      const server = resources.add(await serveEcho({ transport: allocating, port: 0 }));
      const client = resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
      // Enough small replies to fill several slabs, then one too large for any slab.
      for (let i = 0; i < 40; i++) {
        const message = `message ${i} `.repeat(30);
        await client.write(bytes(message));
        expect(text(await readAtLeast(client, 6 + message.length))).toBe(`Echo=>${message}`);
      }
      // A chunk too large for a slab (the runtime may read it in parts: each part is answered).
      const large = "x".repeat(3000);
      await client.write(bytes(large));
      let received = "";
      while (received.replaceAll("Echo=>", "").length < large.length) {
        const chunk = await readAtLeast(client, 1);
        expect(chunk.length).toBeGreaterThan(0); // not closed early
        received += text(chunk);
      }
      expect(received).toMatch(/^(Echo=>x+)+$/);
      expect(received.replaceAll("Echo=>", "")).toBe(large);
      if (fromReadBuffer) expect(sizes).toEqual([]);
      else expect(sizes.filter((size) => size === 8192).length).toBeGreaterThan(1);
    },
  );
});

describe("answerQueued", () => {
  test("answers every chunk once, in order, and takes none while a write waits for drain", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        async (chunks, drainsAfter) => {
          const written: Uint8Array[] = [];
          let call = 0;
          let waitingForDrain = false;
          let overlap = false;
          const writer = {
            writeNow(reply: Uint8Array) {
              if (waitingForDrain) overlap = true;
              written.push(reply);
              waitingForDrain = drainsAfter[call++ % drainsAfter.length]!;
              return !waitingForDrain;
            },
            onDrain(callback: () => void) {
              // A drain a turn later, as a socket's comes: the interleaving is what is under test.
              setTimeout(() => {
                waitingForDrain = false;
                callback();
              }, 0);
            },
          };
          const queue = new ReadQueue({ pause() {}, resume() {} });
          let endings = 0;
          const done = new Promise<void>((resolve, reject) => {
            answerQueued(queue, writer, {
              answer: (chunk) => chunk.map((byte) => byte ^ 0xff),
              ended: (error) => (endings++, error === undefined ? resolve() : reject(error)),
            });
          });
          for (const chunk of chunks) {
            queue.push(chunk);
            // A turn between some chunks (no time passes): more interleavings, the behaviour under test.
            if (chunk[0]! % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
          }
          queue.end();
          await done;
          expect(endings).toBe(1);
          expect(overlap).toBe(false);
          expect(concat(written)).toEqual(concat(chunks).map((byte) => byte ^ 0xff));
        },
      ),
      { numRuns: 100 },
    );
  });

  test("reports the source's error, once, after the queued chunks are answered", () => {
    const queue = new ReadQueue({ pause() {}, resume() {} });
    const written: string[] = [];
    queue.push(bytes("a"));
    queue.end(new Error("reset"));
    const writer = { writeNow: (reply: Uint8Array) => (written.push(text(reply)), true), onDrain() {} };
    const endings: unknown[] = [];
    answerQueued(queue, writer, { answer: upper, ended: (error) => endings.push(error) });
    expect(written).toEqual(["A"]);
    expect(endings).toHaveLength(1);
    expect((endings[0] as Error).message).toBe("reset");
  });
});
