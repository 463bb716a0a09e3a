import { describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { AddrInUseError, type EchoOptions, serveEcho } from "../src/mod.ts";
import { waitUntil } from "./_wait.ts";
import { bytes, hasIPv6, portOf, readAll, readAtLeast, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { recordingLogger, useCleanup } from "./_utils.ts";

const resources = useCleanup();
const ipv6 = await hasIPv6(); // no IPv6 loopback on some machines: the test says it is skipped

async function startEcho(
  options: EchoOptions & { maxConns?: number; logger?: ReturnType<typeof recordingLogger> } = {},
) {
  const server = resources.add(await serveEcho({ transport, port: 0, ...options }));
  const connect = async () => resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
  return { server, connect };
}

describe(`echo server on ${RUNTIME}`, () => {
  test("chunk mode answers a message with prefix + message in a single read", async () => {
    const { connect } = await startEcho();
    const socket = await connect();
    await socket.write(bytes("Hello network world"));
    expect(text((await socket.read())!)).toBe("Echo=>Hello network world");
  });

  test("chunk mode answers each of several messages in turn, then closes after the peer does", async () => {
    const { connect } = await startEcho();
    const socket = await connect();
    for (const message of ["one", "two two", "three\n"]) {
      await socket.write(bytes(message));
      expect(text(await readAtLeast(socket, 6 + message.length))).toBe(`Echo=>${message}`);
    }
    await socket.closeWrite();
    expect(await socket.read()).toBeNull();
  });

  test("chunk mode uses a custom prefix, and an empty prefix echoes bare", async () => {
    const custom = await startEcho({ prefix: "> " });
    const a = await custom.connect();
    await a.write(bytes("x"));
    expect(text(await readAtLeast(a, 3))).toBe("> x");
    const bare = await startEcho({ prefix: "" });
    const b = await bare.connect();
    await b.write(bytes("y"));
    expect(text(await readAtLeast(b, 1))).toBe("y");
  });

  test("line mode answers each newline-terminated line, whatever the chunking, and the tail at end of input", async () => {
    const { connect } = await startEcho({ mode: "line" });
    const socket = await connect();
    await socket.write(bytes("a\nb"));
    expect(text(await readAtLeast(socket, 8))).toBe("Echo=>a\n");
    await socket.write(bytes("b\ncc\n\nta"));
    await socket.write(bytes("il"));
    await socket.closeWrite();
    expect(text(await readAll(socket))).toBe("Echo=>bb\nEcho=>cc\nEcho=>\nEcho=>tail");
  });

  test("line mode closes a connection whose line exceeds --max-line and keeps serving others", async () => {
    const logger = recordingLogger();
    const { connect } = await startEcho({ mode: "line", maxLine: 1024, logger });
    const bad = await connect();
    const good = await connect();
    await bad.write(new Uint8Array(4096).fill(0x61));
    await readAll(bad).catch(() => {}); // closed (FIN or reset) without an answer
    expect(await logger.waitForEvent("line-too-long")).toMatchObject({ maxLine: 1024 });
    await good.write(bytes("still here\n"));
    expect(text(await readAtLeast(good, 17))).toBe("Echo=>still here\n");
  });

  test("raw mode returns 1 MiB of binary data byte for byte", async () => {
    const { connect } = await startEcho({ mode: "raw" });
    const socket = await connect();
    const data = new Uint8Array(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const received = readAll(socket, 20_000);
    for (let offset = 0; offset < data.length; offset += 64 * 1024) {
      await socket.write(data.subarray(offset, offset + 64 * 1024));
    }
    await socket.closeWrite();
    const echoed = await received;
    expect(echoed.length).toBe(data.length);
    expect(Buffer.compare(echoed, data)).toBe(0);
  });

  test("a half-closed client still gets every answer before the server closes", async () => {
    const { connect } = await startEcho({ mode: "line" });
    const socket = await connect();
    await socket.write(bytes("first\nsecond\n"));
    await socket.closeWrite();
    expect(text(await readAll(socket))).toBe("Echo=>first\nEcho=>second\n");
  });

  test("logs a connect event with the peer's address and a close event with byte counts", async () => {
    const logger = recordingLogger();
    const { connect } = await startEcho({ logger });
    const socket = await connect();
    await socket.write(bytes("abc"));
    await readAtLeast(socket, 9);
    await socket.closeWrite();
    await readAll(socket);
    const local = socket.localAddr.transport === "tcp" ? socket.localAddr.port : -1;
    expect(await logger.waitForEvent("connect")).toEqual({ event: "connect", remote: `127.0.0.1:${local}` });
    expect(await logger.waitForEvent("close")).toMatchObject({ bytesIn: 3, bytesOut: 9 });
  });

  test("idle timeout closes a connection that sends nothing", async () => {
    const logger = recordingLogger();
    const { connect } = await startEcho({ idleTimeoutMs: 200, logger });
    const socket = await connect();
    expect(await readAll(socket, 5000)).toHaveLength(0);
    expect(await logger.waitForEvent("idle-timeout")).toMatchObject({ idleMs: 200 });
  });

  test("max-conns closes connection N+1 at once and accepts again below N", async () => {
    const logger = recordingLogger();
    const { connect, server } = await startEcho({ maxConns: 1, logger });
    const first = await connect();
    await first.write(bytes("1"));
    await readAtLeast(first, 7);
    const second = await connect();
    expect(await readAll(second).catch(() => new Uint8Array())).toHaveLength(0);
    expect(await logger.waitForEvent("refused")).toMatchObject({ event: "refused" });
    await first.closeWrite();
    await readAll(first);
    await waitUntil(() => server.connections === 0, { what: "the first connection to close" });
    const third = await connect();
    await third.write(bytes("3"));
    expect(text(await readAtLeast(third, 7))).toBe("Echo=>3");
  });

  test.skipIf(!ipv6)("listens and answers on IPv6 ::1", async () => {
    const server = resources.add(await serveEcho({ transport, hostname: "::1", port: 0 }));
    expect(server.url).toMatch(/^\[::1\]:\d+$/);
    const socket = resources.add(await transport.connect({ hostname: "::1", port: portOf(server) }));
    await socket.write(bytes("v6"));
    expect(text(await readAtLeast(socket, 8))).toBe("Echo=>v6");
  });

  test("listens and answers on a unix socket, replacing a stale socket file", async () => {
    const path = tempSocketPath("echo");
    // A socket file nothing listens on, as a killed server leaves it (a regular file is refused: unix_paths.test.ts).
    execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
    const server = resources.add(await serveEcho({ transport, path }));
    expect(server.url).toBe(`unix:${path}`);
    const socket = resources.add(await transport.connect({ path }));
    await socket.write(bytes("unix"));
    expect(text(await readAtLeast(socket, 10))).toBe("Echo=>unix");
    await expect(serveEcho({ transport, path })).rejects.toThrow(/in use/);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });

  test("a taken port is an AddrInUseError whose message says in use", async () => {
    const { server } = await startEcho();
    const error = await serveEcho({ transport, port: portOf(server) }).catch((e) => e);
    expect(error).toBeInstanceOf(AddrInUseError);
    expect(error.message).toContain("in use");
  });
});
