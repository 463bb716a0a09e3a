// Receiving PROXY protocol headers on a real listener (the library's proxyProtocol option, and
// the CLI's --proxy-protocol): the client's address everywhere, the bytes after the header kept,
// and every bad header refused with a reason, without harm to other connections.

import { describe, expect, test } from "vitest";
import {
  createForwardHandler,
  encodeProxyHeader,
  type LogEvent,
  sendEcho,
  serveEcho,
  serveGate,
  type StreamSocket,
} from "../src/mod.ts";
import { REFUSAL, WELCOME } from "../src/gate/mod.ts";
import { V2_MAX_LENGTH, V2_SIGNATURE } from "../src/proxy_protocol/header.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { bytes, concat, portOf, readAll, readAtLeast, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { argv, cliCommand, runCommand, runEchogate, startCliServer } from "./_child.ts";
import { recordingLogger, useCleanup } from "./_utils.ts";

const resources = useCleanup();

const CLIENT = { transport: "tcp" as const, hostname: "192.0.2.7", port: 40000 };
const OTHER = { transport: "tcp" as const, hostname: "192.0.2.8", port: 40001 };
const SERVER = { transport: "tcp" as const, hostname: "198.51.100.1", port: 8001 };
const v1 = (source = CLIENT) => encodeProxyHeader({ version: 1, source, destination: SERVER });
const v2 = (source = CLIENT) => encodeProxyHeader({ version: 2, source, destination: SERVER, crc32c: true });

async function echoServer(options: { trusted?: string[]; timeoutMs?: number; maxConns?: number } = {}) {
  const logger = recordingLogger();
  const server = resources.add(
    await serveEcho({
      transport,
      port: 0,
      logger,
      maxConns: options.maxConns,
      proxyProtocol: { trusted: options.trusted, timeoutMs: options.timeoutMs },
    }),
  );
  return { server, logger, port: portOf(server) };
}

async function dial(port: number): Promise<StreamSocket> {
  return resources.add(await transport.connect({ hostname: "127.0.0.1", port }));
}

const refusals = (events: LogEvent[]) =>
  events.filter((e) => e.event === "refused") as Extract<LogEvent, { event: "refused" }>[];

describe("proxyProtocol: the client the header names", () => {
  test.each([["v1", v1], ["v2", v2]])(
    "%s: header and payload in one chunk: echoed, logged as the client",
    async (_, header) => {
      const { logger, port } = await echoServer();
      const socket = await dial(port);
      await socket.write(concat([header(), bytes("hello")]));
      expect(text(await readAtLeast(socket, 11))).toBe("Echo=>hello");
      const connect = await logger.waitForEvent("connect");
      expect(connect).toMatchObject({ remote: "192.0.2.7:40000", proxy: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      await socket.closeWrite();
      await readAll(socket);
      expect(await logger.waitForEvent("close")).toMatchObject({ remote: "192.0.2.7:40000", bytesIn: 5 });
    },
  );

  test("a v2 header written one byte at a time, then the payload: nothing lost or leaked", async () => {
    const { logger, port } = await echoServer();
    const socket = await dial(port);
    const header = encodeProxyHeader({
      version: 2,
      source: { transport: "tcp", hostname: "2001:db8::7", port: 5 },
      destination: SERVER,
      tlvs: [{ type: 0x02, value: bytes("example.com") }],
    });
    for (const byte of header) {
      await socket.write(new Uint8Array([byte]));
      await new Promise((resolve) => setTimeout(resolve, 1)); // apart, so each byte is a chunk: under test
    }
    await socket.write(bytes("after"));
    expect(text(await readAtLeast(socket, 11))).toBe("Echo=>after");
    expect(await logger.waitForEvent("connect")).toMatchObject({ remote: "[2001:db8::7]:5" });
  });

  test("v2 LOCAL and v1 UNKNOWN use the real endpoints", async () => {
    const { logger, port } = await echoServer();
    for (const header of [encodeProxyHeader({ version: 2, local: true }), encodeProxyHeader({ version: 1 })]) {
      const socket = await dial(port);
      await socket.write(concat([header, bytes("x")]));
      expect(text(await readAtLeast(socket, 7))).toBe("Echo=>x");
      socket.close();
    }
    await waitUntil(
      () => logger.events.filter((e) => e.event === "connect").length === 2,
      { timeoutMs: 5000, what: "2 connects" },
    );
    for (const event of logger.events.filter((e) => e.event === "connect")) {
      expect(event).toMatchObject({ remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    }
  });

  test("the library clients send a header themselves (proxyHeader)", async () => {
    const { logger, port } = await echoServer();
    const replies = await sendEcho({
      transport,
      port,
      hostname: "127.0.0.1",
      messages: ["hi"],
      proxyHeader: { version: 2, source: CLIENT },
    });
    expect(text(replies[0]!)).toBe("Echo=>hi");
    expect(await logger.waitForEvent("connect")).toMatchObject({ remote: "192.0.2.7:40000" });
  });

  test("on a unix socket listener the peer is trusted and the header names the client", async () => {
    const logger = recordingLogger();
    const path = tempSocketPath("proxy");
    resources.add(await serveEcho({ transport, path, logger, proxyProtocol: { trusted: ["10.0.0.0/8"] } }));
    const socket = resources.add(await transport.connect({ path }));
    await socket.write(concat([v1(), bytes("unix")]));
    expect(text(await readAtLeast(socket, 10))).toBe("Echo=>unix");
    expect(await logger.waitForEvent("connect")).toMatchObject({ remote: "192.0.2.7:40000" });
  });

  test("maxConns counts and logs the client, after its header", async () => {
    const { logger, port } = await echoServer({ maxConns: 1 });
    const first = await dial(port);
    await first.write(concat([v1(), bytes("a")]));
    await readAtLeast(first, 7);
    const second = await dial(port);
    await second.write(v1(OTHER));
    expect((await readAll(second)).length).toBe(0);
    expect(refusals(logger.events)[0]).toMatchObject({
      remote: "192.0.2.8:40001",
      reason: "1 connections open",
      proxy: expect.any(String),
    });
  });
});

describe("proxyProtocol: bad peers are refused, with the reason, and harm no one else", () => {
  async function refusedWith(
    port: number,
    logger: ReturnType<typeof recordingLogger>,
    send: (s: StreamSocket) => Promise<void>,
  ) {
    const socket = await dial(port);
    await send(socket).catch(() => {});
    expect((await readAll(socket).catch(() => new Uint8Array(0))).length).toBe(0); // no reply, closed
    return await waitFor(() => refusals(logger.events).at(-1), 8000, "a refusal");
  }

  test("an untrusted peer is refused at accept", async () => {
    const { logger, port } = await echoServer({ trusted: ["10.0.0.0/8"] });
    const refused = await refusedWith(port, logger, (s) => s.write(concat([v1(), bytes("x")])));
    expect(refused.reason).toContain("not a trusted proxy");
    expect(refused.remote).toMatch(/^127\.0\.0\.1:/);
  });

  test.each([
    ["no header at all", bytes("GET / HTTP/1.0\r\n\r\n"), "not a PROXY protocol header"],
    ["a v1 line past 107 bytes", bytes(`PROXY UNKNOWN ${"x".repeat(300)}`), "no CRLF within 107 bytes"],
    ["a malformed v1 address", bytes("PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n"), "not an IPv4 address"],
    [
      "a v2 header announcing more than the cap",
      new Uint8Array([...V2_SIGNATURE, 0x21, 0x11, 0xff, 0xff, ...new Uint8Array(2000)]),
      `at most ${16 + V2_MAX_LENGTH}`,
    ],
    [
      "a v2 header with a wrong CRC32C",
      (() => {
        const h = v2();
        h[h.length - 1]! ^= 1;
        return h;
      })(),
      "CRC32C mismatch",
    ],
  ])("%s", async (_, payload, reason) => {
    const { logger, port } = await echoServer();
    const refused = await refusedWith(port, logger, (s) => s.write(payload));
    expect(refused.reason).toContain(reason);
    // Others still served.
    const good = await dial(port);
    await good.write(concat([v1(), bytes("ok")]));
    expect(text(await readAtLeast(good, 8))).toBe("Echo=>ok");
  });

  test("a truncated header (the peer closes mid-header)", async () => {
    const { logger, port } = await echoServer();
    const refused = await refusedWith(port, logger, async (s) => {
      await s.write(v2().subarray(0, 20));
      await s.closeWrite();
    });
    expect(refused.reason).toContain("closed before a complete PROXY header");
  });

  test("a slow header is refused at the timeout while other connections are served", async () => {
    const { logger, port } = await echoServer({ timeoutMs: 600 });
    const slow = await dial(port);
    await slow.write(bytes("PROXY TCP4 192.0."));
    const good = await dial(port);
    await good.write(concat([v1(OTHER), bytes("fast")]));
    expect(text(await readAtLeast(good, 10))).toBe("Echo=>fast");
    expect(refusals(logger.events)).toEqual([]);
    expect((await readAll(slow)).length).toBe(0);
    expect(refusals(logger.events)[0]?.reason).toContain("no complete PROXY header within 0.6 s");
  });

  test("each slow header is refused at its own deadline, however many wait (one timer serves them all)", async () => {
    const { logger, port } = await echoServer({ timeoutMs: 600 });
    const first = await dial(port);
    await first.write(bytes("PROXY "));
    const firstAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 300)); // deadlines 300 ms apart: the behaviour under test
    const second = await dial(port);
    await second.write(bytes("PROXY "));
    const secondAt = Date.now();
    expect((await readAll(first)).length).toBe(0);
    // The first one's deadline has passed, the second one's not yet: it is still open.
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(600 - 20);
    expect(refusals(logger.events)).toHaveLength(1);
    expect((await readAll(second)).length).toBe(0);
    expect(Date.now() - secondAt).toBeGreaterThanOrEqual(600 - 20);
    expect(refusals(logger.events).map((e) => e.reason)).toEqual([
      "no complete PROXY header within 0.6 s",
      "no complete PROXY header within 0.6 s",
    ]);
  });

  test("a header completed while older and newer ones still wait: served, and the others still refused at their deadlines", async () => {
    const { logger, port } = await echoServer({ timeoutMs: 800 });
    const [first, middle, last] = [await dial(port), await dial(port), await dial(port)];
    for (const socket of [first, middle, last]) await socket.write(bytes("PROXY "));
    const started = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 100)); // completed while the others wait: under test
    // The middle one of three reads in the listener's list finishes its header (v1, split).
    await middle.write(bytes("TCP4 192.0.2.7 198.51.100.1 40000 8001\r\nhi"));
    expect(text(await readAtLeast(middle, 8))).toBe("Echo=>hi");
    expect(refusals(logger.events)).toEqual([]);
    expect((await readAll(first)).length).toBe(0);
    expect((await readAll(last)).length).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800 - 20);
    expect(refusals(logger.events).map((e) => e.reason)).toEqual([
      "no complete PROXY header within 0.8 s",
      "no complete PROXY header within 0.8 s",
    ]);
    // The served one stays open and answers.
    await middle.write(bytes("again"));
    expect(text(await readAtLeast(middle, 11))).toBe("Echo=>again");
  });

  test("closing the server closes connections still sending their header", async () => {
    const { server, port } = await echoServer();
    const socket = await dial(port);
    await socket.write(bytes("PROXY "));
    // A moment for the server to take it into its header reads (which nothing reports); closed
    // sooner, the connection still ends with nothing read.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await server.close();
    expect((await readAll(socket, 3000)).length).toBe(0);
  });
});

describe("proxyProtocol on the gate: penalties per client, never for the proxy", () => {
  async function gateServer() {
    const logger = recordingLogger();
    const server = resources.add(
      await serveGate({ transport, port: 0, logger, tokens: ["s3cret"], penalties: { exempt: [] }, proxyProtocol: {} }),
    );
    return { logger, port: portOf(server) };
  }
  async function knock(port: number, header: Uint8Array, token: string): Promise<string> {
    const socket = await dial(port);
    await socket.write(concat([header, bytes(token)]));
    return text(await readAll(socket));
  }

  test("wrong tokens penalise the client the header names; another client behind the same proxy is welcome", async () => {
    const { logger, port } = await gateServer();
    for (let i = 0; i < 4; i++) expect(await knock(port, v1(), "wrong")).toBe(REFUSAL);
    expect(await knock(port, v2(), "s3cret")).toBe(""); // 20 s accrued: refused at once
    expect(refusals(logger.events).at(-1)).toMatchObject({ remote: "192.0.2.7:40000", reason: "penalised" });
    expect(await knock(port, v2(OTHER), "s3cret")).toBe(WELCOME);
    const penalties = logger.events.filter((e) => e.event === "penalty");
    expect(penalties.every((e) => e.event === "penalty" && e.remote === "192.0.2.7:40000")).toBe(true);
  });

  test("a token sent after the header, in a write of its own, is read; a header alone times out", async () => {
    const logger = recordingLogger();
    const server = resources.add(
      await serveGate({ transport, port: 0, logger, tokens: ["s3cret"], timeoutMs: 300, proxyProtocol: {} }),
    );
    const late = await dial(portOf(server));
    await late.write(v2());
    await logger.waitForEvent("connect"); // the header is in: the gate now waits for the token
    await late.write(bytes("s3cret"));
    expect(text(await readAll(late))).toBe(WELCOME);
    const silent = await dial(portOf(server));
    await silent.write(v2(OTHER));
    expect(text(await readAll(silent))).toBe("");
    expect(await logger.waitForEvent("timeout")).toMatchObject({ remote: "192.0.2.8:40001" });
    expect(logger.events.find((e) => e.event === "penalty")).toMatchObject({
      remote: "192.0.2.8:40001",
      kind: "grace-exceeded",
    });
  });

  test("LOCAL, UNKNOWN and headers naming the proxy itself (health checks) accrue nothing", async () => {
    const { logger, port } = await gateServer();
    const self = await dial(port);
    const own = self.localAddr; // the "proxy" here is this test, on 127.0.0.1
    self.close();
    const selfHeader = encodeProxyHeader({
      version: 1,
      source: { ...own, transport: "tcp" } as never,
      destination: SERVER,
    });
    for (let i = 0; i < 5; i++) {
      expect(await knock(port, encodeProxyHeader({ version: 2, local: true }), "wrong")).toBe(REFUSAL);
      expect(await knock(port, encodeProxyHeader({ version: 1 }), "wrong")).toBe(REFUSAL);
      expect(await knock(port, selfHeader, "wrong")).toBe(REFUSAL);
    }
    expect(logger.events.filter((e) => e.event === "penalty")).toEqual([]);
    expect(await knock(port, encodeProxyHeader({ version: 2, local: true }), "s3cret")).toBe(WELCOME);
  });

  /** A gate that reads a PROXY header, then forwards to 127.0.0.1:`port`, passing the client on in a header. */
  const relayingGate = async (port: number, proxyProtocol: 1 | 2) =>
    resources.add(
      await serveGate({
        transport,
        port: 0,
        tokens: ["s3cret"],
        proxyProtocol: {},
        handoff: createForwardHandler({ transport, upstream: { hostname: "127.0.0.1", port }, proxyProtocol }),
      }),
    );

  test("--then with a PROXY header: the upstream sees the client, through a chain of two gates", async () => {
    const upstream = await echoServer();
    const second = await relayingGate(upstream.port, 1);
    const first = await relayingGate(portOf(second), 2);
    const socket = await dial(portOf(first));
    await socket.write(concat([v1(), bytes("s3cret")]));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    // The second gate reads the first's v2 header, then the token from the same stream.
    await socket.write(bytes("s3cret"));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    await socket.write(bytes("through"));
    expect(text(await readAtLeast(socket, 13))).toBe("Echo=>through");
    expect(await upstream.logger.waitForEvent("connect")).toMatchObject({ remote: "192.0.2.7:40000" });
  });
});

describe("the CLI's --proxy-protocol flags", () => {
  test("echo serve --proxy-protocol logs the seed's line with the client, and --json adds the proxy", async () => {
    const human = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol"]));
    const json = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol", "--json"]),
    );
    for (const server of [human, json]) {
      const socket = await dial(server.port);
      await socket.write(concat([v2(), bytes("hey")]));
      expect(text(await readAtLeast(socket, 9))).toBe("Echo=>hey");
      socket.close();
    }
    await waitUntil(
      () => human.stdout().includes("Server connected by 192.0.2.7:40000"),
      { timeoutMs: 5000, what: "the connect line" },
    );
    const line = await waitFor(
      () => json.stdout().split("\n").find((l) => l.includes('"connect"')),
      5000,
      "a connect event",
    );
    expect(JSON.parse(line)).toMatchObject({
      remote: "192.0.2.7:40000",
      proxy: expect.stringMatching(/^127\.0\.0\.1:/),
    });
  });

  test("echo send and gate knock --proxy-header name --proxy-source to a --proxy-protocol server", async () => {
    const echo = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol", "--json"]),
    );
    const sent = await runEchogate(
      argv`echo send 127.0.0.1 hi --port ${echo.port} --proxy-header v1 --proxy-source 192.0.2.9:1234`,
    );
    expect(sent.stdout).toContain("Client received: 'Echo=>hi'");
    await waitUntil(() => echo.stdout().includes('"remote":"192.0.2.9:1234"'), {
      timeoutMs: 5000,
      what: "the client's address",
    });
    const gate = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--proxy-protocol", "--json"], {
        ECHOGATE_TOKEN: "t",
      }),
    );
    const knocked = await runEchogate(
      argv`gate knock 127.0.0.1 --port ${gate.port} --token t --delay 0 --proxy-header v2 --proxy-source [2001:db8::9]:7`,
    );
    expect(knocked.code).toBe(0);
    expect(knocked.stdout).toContain(WELCOME);
    await waitUntil(() => gate.stdout().includes('"remote":"[2001:db8::9]:7"'), {
      timeoutMs: 5000,
      what: "the v6 client",
    });
  });

  test("gate serve --then HOST:PORT --then-proxy-protocol v1: the upstream logs the client behind the gate", async () => {
    const upstream = await echoServer();
    const gate = resources.child(
      await startCliServer(
        RUNTIME,
        argv`gate serve --port 0 --proxy-protocol --then 127.0.0.1:${upstream.port} --then-proxy-protocol v1`,
        { ECHOGATE_TOKEN: "t" },
      ),
    );
    const socket = await dial(gate.port);
    await socket.write(concat([v2(), bytes("t")]));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    await socket.write(bytes("relayed"));
    expect(text(await readAtLeast(socket, 13))).toBe("Echo=>relayed");
    expect(await upstream.logger.waitForEvent("connect")).toMatchObject({ remote: "192.0.2.7:40000" });
  });

  test("bench --proxy-header v2 loads a --proxy-protocol gate without errors, and the gate sees --proxy-source", async () => {
    const gate = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--proxy-protocol", "--json"]),
    );
    const args = argv`bench 127.0.0.1 --port ${gate.port} --mode connect --knock 1 --conns 2`;
    const flags = ["--duration", "0.5", "--proxy-header", "v2", "--proxy-source", "192.0.2.10:9", "--json"];
    const result = await runCommand([...cliCommand(RUNTIME), ...args, ...flags], { ms: 30_000 });
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!);
    expect(report).toMatchObject({ errors: 0, mismatches: 0 });
    expect(report.operations).toBeGreaterThan(0);
    await waitUntil(() => gate.stdout().includes('"remote":"192.0.2.10:9"'), {
      timeoutMs: 5000,
      what: "the named source",
    });
    expect(gate.stdout()).not.toContain('"event":"refused"');
  });

  test.each([
    [["echo", "serve", "--proxy-from", "127.0.0.0/8"], '"--proxy-from" applies only with "--proxy-protocol"'],
    [["echo", "serve", "--proxy-protocol", "--proxy-timeout", "2"], "at least 3 seconds"],
    [["gate", "serve", "--proxy-protocol", "--proxy-from", "10.0.0.0/33"], "is not a CIDR block"],
    [["gate", "serve", "--then-proxy-protocol", "v2"], '"--then-proxy-protocol" applies only with "--then HOST:PORT"'],
    [["echo", "send", "--proxy-header", "v3"], "is not one of v1, v2"],
    [["gate", "knock", "--proxy-header", "v1", "--proxy-source", "example.com:80"], "is not IP:PORT"],
  ])("bad flags: %j", async (args, message) => {
    const result = await runEchogate(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toContain("    at ");
  });
});
