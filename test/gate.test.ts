import { afterEach, describe, expect, test } from "vitest";
import {
  createTokenMatcher,
  knockGate,
  REFUSAL,
  sendEcho,
  serveEcho,
  serveGate,
  type ServeGateOptions,
  tokenFromChunk,
  WELCOME,
} from "../src/mod.ts";
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
});
