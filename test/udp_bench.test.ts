// `echogate bench --udp` and runDatagramBench: round trips verified byte for byte, loss,
// reordering and duplicates counted, --rate pacing, and a rate-limited server showing as loss.

import { describe, expect, test } from "vitest";
import { type DatagramSocket, runDatagramBench, serveDatagramEcho } from "../src/mod.ts";
import { RUNTIME, transport } from "./_net.ts";
import { argv, runEchogate } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

/** A hand-made echo server that answers through `answer` (which may send 0, 1 or more datagrams). */
async function customServer(answer: (socket: DatagramSocket, b: Uint8Array, host: string, port: number) => void) {
  const socket: DatagramSocket = resources.add(
    await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, {
      onMessage: (b, host, port) => answer(socket, b, host, port),
      onError() {},
    }),
  );
  return socket.addr.transport === "udp" ? socket.addr.port : 0;
}

const udpPort = (server: { addr: { transport: string; port?: number } }) =>
  server.addr.transport === "udp" ? server.addr.port! : 0;
/** runDatagramBench against 127.0.0.1:`port` on the runtime under test. */
const benchLocal = (
  port: number,
  options: Omit<Parameters<typeof runDatagramBench>[0], "transport" | "hostname" | "port">,
) => runDatagramBench({ transport, hostname: "127.0.0.1", port, ...options });

const withPrefix = (b: Uint8Array) => new Uint8Array([..."Echo=>"].map((c) => c.charCodeAt(0)).concat([...b]));

describe(`bench --udp on ${RUNTIME}`, () => {
  test("against an unlimited server: every datagram echoed and verified, nothing lost", async () => {
    const server = resources.add(await serveDatagramEcho({ transport, port: 0, limits: false }));
    const report = await benchLocal(udpPort(server), { conns: 4, durationMs: 400 });
    expect(report).toMatchObject({ transport: "udp", mismatches: 0, duplicates: 0, lost: 0, errors: 0 });
    expect(report.operations).toBeGreaterThan(50);
    expect(report.operations).toBe(report.sent);
    // The server also answered the datagrams in flight at the stop (one per socket, not counted).
    expect(server.stats.answered - report.operations).toBeGreaterThanOrEqual(0);
    expect(server.stats.answered - report.operations).toBeLessThanOrEqual(4);
    expect(report.latencyMs.p50).toBeGreaterThan(0);
  });

  test("a server's rate limit shows as loss, and the CLI still exits 0", async () => {
    const server = resources.add(await serveDatagramEcho({ transport, port: 0, limits: { rate: 5, burst: 5 } }));
    const port = String(udpPort(server));
    const { code, stdout } = await runEchogate(
      argv`bench --udp 127.0.0.1 --port ${port} --conns 2 --duration 1 --timeout 0.05 --json`,
    );
    const report = JSON.parse(stdout);
    expect(code).toBe(0);
    expect(report.lost).toBeGreaterThan(0);
    expect(report.lossRate).toBeGreaterThan(0);
    expect(report.operations).toBeGreaterThanOrEqual(5);
    expect(report.operations).toBeLessThanOrEqual(11); // 5 at once, 5/s for about a second
    expect(report.mismatches).toBe(0);
    expect(report.lost + report.operations + report.reordered).toBe(report.sent);
  });

  test("a wrong byte is a mismatch, and the CLI exits 1 saying which", async () => {
    const port = await customServer((socket, b, host, port) => {
      const reply = withPrefix(b);
      if (reply.at(-1) === 0) reply[reply.length - 1] = 1; // corrupt some of them
      else reply[reply.length - 1] = reply.at(-1)! ^ 0x40;
      socket.send(reply, host, port);
    });
    const { code, stderr } = await runEchogate(
      argv`bench --udp 127.0.0.1 --port ${port} --conns 1 --duration 0.3 --timeout 0.05`,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/first mismatch: the echo of datagram 1 differs at byte 63/);
  });

  test("a second echo of one datagram is a duplicate", async () => {
    const port = await customServer((socket, b, host, port) => {
      socket.send(withPrefix(b), host, port);
      socket.send(withPrefix(b), host, port);
    });
    const report = await benchLocal(port, { conns: 1, durationMs: 300 });
    expect(report.mismatches).toBe(0);
    expect(report.operations).toBeGreaterThan(5);
    // Every echo but possibly the last one's second copy (after the stop) is counted.
    expect(report.duplicates).toBeGreaterThanOrEqual(report.operations - 1);
    expect(report.duplicates).toBeLessThanOrEqual(report.operations);
  });

  test("an echo after its timeout is reordered, not lost", async () => {
    // Every third datagram is answered 120 ms late, past the 40 ms timeout.
    let n = 0;
    const port = await customServer((socket, b, host, port) => {
      const reply = withPrefix(b);
      if (++n % 3 === 0) setTimeout(() => socket.send(reply, host, port), 120);
      else socket.send(reply, host, port);
    });
    const report = await benchLocal(port, { conns: 1, durationMs: 600, timeoutMs: 40 });
    expect(report.reordered).toBeGreaterThan(0);
    expect(report.mismatches).toBe(0);
    expect(report.duplicates).toBe(0);
    // The late ones still out at the end may count as lost; every other one arrived.
    expect(report.lost).toBeLessThanOrEqual(2);
    expect(report.operations + report.reordered + report.lost).toBe(report.sent);
  });

  test("--rate caps the datagrams sent", async () => {
    const server = resources.add(await serveDatagramEcho({ transport, port: 0, limits: false }));
    const report = await benchLocal(udpPort(server), { conns: 4, rate: 50, durationMs: 1000 });
    expect(report.rateLimitPerS).toBe(50);
    expect(report.sent).toBeGreaterThanOrEqual(40);
    expect(report.sent).toBeLessThanOrEqual(55);
    expect(report.lost).toBe(0);
  });
});
