import { describe, expect, test } from "vitest";
import {
  createForwardHandler,
  createLogger,
  encodeProxyHeader,
  type LogEvent,
  serveEcho,
  serveGate,
  type ServeGateOptions,
  type StreamSocket,
} from "../src/mod.ts";
import { createEchoHandler } from "../src/echo/stream.ts";
import { DEFAULT_MAX_PENDING_PER_SOURCE, REFUSAL, WELCOME } from "../src/gate/mod.ts";
import { PenaltyBox } from "../src/gate/penalties.ts";
import { PendingPerSource } from "../src/gate/_pending_sources.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import { waitFor } from "./_wait.ts";
import { bytes, concat, portOf, readAll, readAtLeast, RUNTIME, text, transport } from "./_net.ts";
import { cliCommand, runCommand, startCliServer } from "./_child.ts";
import { recordingLogger, useCleanup } from "./_utils.ts";

const resources = useCleanup();

/** A fake clock for the penalty table, in ms. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

describe("PenaltyBox (OpenSSH PerSourcePenalties semantics)", () => {
  test("a source is refused once its penalty exceeds 15 s, until the penalty has decayed", () => {
    const time = clock();
    const box = new PenaltyBox({ exempt: [], now: time.now });
    for (let i = 0; i < 3; i++) box.penalize("192.0.2.1", "authfail");
    expect(box.isBlocked("192.0.2.1")).toBe(false); // 15 s: not more than the minimum
    expect(box.penalize("192.0.2.1", "authfail")).toBe(20);
    expect(box.isBlocked("192.0.2.1")).toBe(true);
    time.advance(19.9);
    expect(box.isBlocked("192.0.2.1")).toBe(true);
    time.advance(0.2);
    expect(box.isBlocked("192.0.2.1")).toBe(false);
    expect(box.size.ipv4).toBe(0); // expired entries are dropped
  });

  test("no token in time costs 10 s, leaving without a byte 1 s, and penalties cap at 600 s", () => {
    const time = clock();
    const box = new PenaltyBox({ exempt: [], now: time.now });
    expect(box.penalize("192.0.2.2", "grace-exceeded")).toBe(10);
    expect(box.penalize("192.0.2.3", "noauth")).toBe(1);
    expect(box.isBlocked("192.0.2.2")).toBe(false);
    expect(box.penalize("192.0.2.2", "grace-exceeded")).toBe(20);
    expect(box.isBlocked("192.0.2.2")).toBe(true);
    let accrued = 0;
    for (let i = 0; i < 200; i++) accrued = box.penalize("192.0.2.4", "authfail");
    expect(accrued).toBe(600);
  });

  test("penalties decay in real time between offences", () => {
    const time = clock();
    const box = new PenaltyBox({ exempt: [], now: time.now });
    box.penalize("192.0.2.5", "authfail");
    box.penalize("192.0.2.5", "authfail");
    time.advance(8); // 10 s accrued, 8 s of it gone
    expect(box.penalize("192.0.2.5", "authfail")).toBe(7);
    expect(box.isBlocked("192.0.2.5")).toBe(false);
  });

  test("IPv4 counts per address, IPv6 per /64, IPv4-mapped IPv6 as IPv4", () => {
    const box = new PenaltyBox({ exempt: [] });
    for (let i = 0; i < 4; i++) box.penalize(`2001:db8:1:2::${i + 1}`, "authfail");
    expect(box.isBlocked("2001:db8:1:2:ffff::9")).toBe(true); // same /64
    expect(box.isBlocked("2001:db8:1:3::1")).toBe(false); // another /64
    for (let i = 0; i < 4; i++) box.penalize("::ffff:198.51.100.7", "authfail");
    expect(box.isBlocked("198.51.100.7")).toBe(true);
    expect(box.isBlocked("198.51.100.8")).toBe(false);
    expect(box.size).toEqual({ ipv4: 1, ipv6: 1 });
  });

  test("loopback is exempt by default; custom exemptions take CIDR blocks", () => {
    const byDefault = new PenaltyBox();
    for (let i = 0; i < 10; i++) byDefault.penalize("127.0.0.9", "authfail");
    for (let i = 0; i < 10; i++) byDefault.penalize("::1", "authfail");
    expect(byDefault.isBlocked("127.0.0.9") || byDefault.isBlocked("::1")).toBe(false);
    const custom = new PenaltyBox({ exempt: ["10.0.0.0/8", "2001:db8::/32"] });
    for (let i = 0; i < 10; i++) {
      custom.penalize("10.1.2.3", "authfail");
      custom.penalize("2001:db8:5::1", "authfail");
      custom.penalize("127.0.0.1", "authfail");
    }
    expect(custom.isBlocked("10.1.2.3")).toBe(false);
    expect(custom.isBlocked("2001:db8:5::1")).toBe(false);
    expect(custom.isBlocked("127.0.0.1")).toBe(true);
  });

  test("the table holds at most 65,536 sources per family, evicting the oldest and reporting it", () => {
    const overflows: string[] = [];
    const box = new PenaltyBox({ exempt: [], onOverflow: (family) => overflows.push(family) });
    box.penalize("10.0.0.1", "authfail");
    for (let i = 0; i < 4; i++) box.penalize("10.0.0.2", "authfail"); // blocked, and recently penalised
    for (let i = 0; i < 65_536; i++) box.penalize(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "noauth");
    expect(box.size.ipv4).toBe(65_536);
    expect(overflows.length).toBe(2);
    expect(overflows[0]).toBe("ipv4");
    const box2 = new PenaltyBox({ exempt: [], maxSources: 2 });
    for (let i = 0; i < 4; i++) box2.penalize("10.0.0.3", "authfail");
    box2.penalize("10.0.0.4", "noauth");
    box2.penalize("10.0.0.5", "noauth"); // evicts 10.0.0.3, the oldest
    expect(box2.isBlocked("10.0.0.3")).toBe(false);
  });
});

async function startGate(options: Partial<ServeGateOptions> = {}) {
  const logger = recordingLogger();
  const server = resources.add(await serveGate({ transport, port: 0, logger, ...options }));
  const connect = async () => resources.add(await transport.connect({ hostname: "127.0.0.1", port: portOf(server) }));
  const knock = async (token: string) => {
    const socket = await connect();
    await socket.write(bytes(token)).catch(() => {});
    return text(await readAll(socket).catch(() => new Uint8Array()));
  };
  return { server, logger, connect, knock, port: portOf(server) };
}

const refusals = (events: LogEvent[]) =>
  events.filter((e) => e.event === "refused") as Extract<LogEvent, { event: "refused" }>[];
const count = (events: LogEvent[], name: string) => events.filter((e) => e.event === name).length;

/** Knocks `count` times with a wrong token from 127.0.0.2 (a Node child binds the source address). */
function floodFrom127002(port: number, count: number): Promise<string[]> {
  return knocksFrom("127.0.0.2", port, "wrong", count);
}

/** Knocks `count` times, one after another, from `source` (a Node child binds the source address). */
async function knocksFrom(source: string, port: number, token: string, count: number): Promise<string[]> {
  const script = `
    const net = require("node:net");
    const knock = () => new Promise((resolve) => {
      const s = net.connect({ port: ${port}, host: "127.0.0.1", localAddress: "${source}" }, () => s.write("${token}"));
      let reply = "";
      s.on("data", (d) => (reply += d));
      s.on("close", () => resolve(reply || "(closed)"));
      s.on("error", () => {});
    });
    (async () => { const out = []; for (let i = 0; i < ${count}; i++) out.push(await knock()); console.log(JSON.stringify(out)); })();
  `;
  const result = await runCommand(["node", "-e", script], { ms: 60_000 });
  return JSON.parse(result.stdout);
}

describe(`gate hardening on ${RUNTIME}`, () => {
  test("a full penalty table logs one overflow line per interval; the rest are counted and reported at close", async () => {
    const { server, logger, port } = await startGate({ penalties: { exempt: [], maxSources: 1 } });
    // Each new source evicts the one before it: three overflows, from 127.0.0.3, .4 and .5.
    for (const source of ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]) {
      expect(await knocksFrom(source, port, "wrong", 1)).toEqual([REFUSAL]);
    }
    const overflows = () => logger.events.filter((e) => e.event === "penalty-overflow");
    expect(overflows()).toEqual([{ event: "penalty-overflow", family: "ipv4" }]);
    await server.close();
    // The closing line is the third overflow, and counts the second it left out.
    expect(overflows()).toEqual([
      { event: "penalty-overflow", family: "ipv4" },
      { event: "penalty-overflow", family: "ipv4", more: 1 },
    ]);
  });

  test("wrong tokens get a source refused at accept, with a log line, while other sources are served", async () => {
    const { logger, knock, port } = await startGate({ penalties: { exempt: [] } });
    const replies = await floodFrom127002(port, 8);
    expect(replies.slice(0, 4)).toEqual(Array(4).fill(REFUSAL)); // 4 x 5 s = 20 s > 15 s
    expect(replies.slice(4)).toEqual(Array(4).fill("(closed)")); // refused at accept: no reply at all
    expect(logger.events).toContainEqual({
      event: "refused",
      remote: expect.stringMatching(/^127\.0\.0\.2:/),
      reason: "penalised",
    });
    expect(logger.events.filter((e) => e.event === "penalty")).toHaveLength(4);
    expect(await knock("1")).toBe(WELCOME); // 127.0.0.1 is a different source
  });

  test("about 200 connects of a penalised source are logged in a few lines that count them all", async () => {
    const { server, logger, port } = await startGate({ penalties: { exempt: [] } });
    const replies = await knocksFrom("127.0.0.2", port, "wrong", 204);
    expect(replies.slice(0, 4)).toEqual(Array(4).fill(REFUSAL)); // 4 x 5 s = 20 s > 15 s
    expect(replies.slice(4)).toEqual(Array(200).fill("(closed)"));
    await server.close(); // reports what the throttle still counts
    const lines = refusals(logger.events);
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(4); // the first at once, then at most one per 10 s
    expect(lines.every((e) => e.reason === "penalised" && e.remote.startsWith("127.0.0.2:"))).toBe(true);
    expect(lines.reduce((sum, e) => sum + 1 + (e.more ?? 0), 0)).toBe(200);
    const human: string[] = [];
    createLogger({ writeOut: (line) => human.push(line), writeErr: (line) => human.push(line) }).log(lines.at(-1)!);
    expect(human[0]).toMatch(/^Refused 127\.0\.0\.2:\d+: penalised \(\d+ more since the last report\)$/);
  });

  test("a flood of failed knocks does not affect a good client", async () => {
    const { knock, port } = await startGate({ penalties: { exempt: [] } });
    const flood = floodFrom127002(port, 60);
    const good: string[] = [];
    for (let i = 0; i < 10; i++) good.push(await knock("1"));
    await flood;
    expect(good).toEqual(Array(10).fill(WELCOME));
  });

  test("loopback is exempt by default, and penalties can be turned off", async () => {
    const byDefault = await startGate();
    for (let i = 0; i < 6; i++) expect(await byDefault.knock("no")).toBe(REFUSAL);
    expect(await byDefault.knock("1")).toBe(WELCOME);
    const off = await startGate({ penalties: false });
    const replies = await floodFrom127002(off.port, 6);
    expect(replies).toEqual(Array(6).fill(REFUSAL));
  });

  test("silence and leaving without a byte are penalised too", async () => {
    const { logger, connect } = await startGate({ penalties: { exempt: [] }, timeoutMs: 100 });
    const silent = await connect();
    await readAll(silent);
    const leaver = await connect();
    leaver.close();
    await waitFor(
      () => (logger.events.filter((e) => e.event === "penalty").length === 2 ? true : undefined),
      5000,
      "two penalties",
    );
    const kinds = logger.events.flatMap((e) => (e.event === "penalty" ? [e.kind] : [])).sort();
    expect(kinds).toEqual(["grace-exceeded", "noauth"]);
    expect(logger.events.find((e) => e.event === "timeout")).toMatchObject({ durationMs: expect.any(Number) });
  });

  test("--max-pending refuses connections beyond N waiting for a token, and accepts again below N", async () => {
    const { logger, connect, knock } = await startGate({ maxPending: 2 });
    const first = await connect();
    const second = await connect();
    await waitFor(
      () => (logger.events.filter((e) => e.event === "connect").length === 2 ? true : undefined),
      5000,
      "two connects",
    );
    const third = await connect();
    expect(await readAll(third)).toHaveLength(0);
    expect(await logger.waitForEvent("refused")).toMatchObject({ reason: "2 connections waiting for a token" });
    await first.write(bytes("1"));
    expect(text(await readAll(first))).toBe(WELCOME);
    expect(await knock("1")).toBe(WELCOME);
    second.close();
  });

  test("--then echo keeps a welcomed connection open as an echo session", async () => {
    const { connect } = await startGate({ handoff: createEchoHandler({ mode: "line" }) });
    const socket = await connect();
    await socket.write(bytes("1\n"));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    await socket.write(bytes("hello\nworld\n"));
    expect(text(await readAtLeast(socket, 24))).toBe("Echo=>hello\nEcho=>world\n");
    await socket.closeWrite();
    expect(await readAll(socket)).toHaveLength(0);
  });

  test("--then HOST:PORT forwards a welcomed connection both ways, with half-close", async () => {
    const upstream = resources.add(await serveEcho({ transport, port: 0, mode: "raw" }));
    const { connect, knock } = await startGate({
      handoff: createForwardHandler({ transport, upstream: { hostname: "127.0.0.1", port: portOf(upstream) } }),
    });
    expect(await knock("2")).toBe(REFUSAL); // refused knocks are never forwarded
    const socket = await connect();
    await socket.write(bytes("1"));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    const data = new Uint8Array(512 * 1024).map((_, i) => (i * 31) & 0xff);
    const echoed = readAll(socket, 20_000);
    for (let i = 0; i < data.length; i += 64 * 1024) await socket.write(data.subarray(i, i + 64 * 1024));
    await socket.closeWrite(); // the upstream sees end of input, finishes, and its FIN comes back
    const received = await echoed;
    expect(received.length).toBe(data.length);
    expect(Buffer.compare(received, data)).toBe(0);
  });

  test("the CLI warns about a command-line or default token without printing it", async () => {
    const fromFlag = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token", "hunter2"]),
    );
    await waitFor(() => (fromFlag.stderr().includes("warning") ? true : undefined), 5000, "a warning");
    expect(fromFlag.stderr()).toMatch(/command line/);
    expect(fromFlag.stderr() + fromFlag.stdout()).not.toContain("hunter2");
    const byDefault = resources.child(await startCliServer(RUNTIME, ["gate", "serve", "--port", "0"]));
    await waitFor(() => (byDefault.stderr().includes("default token") ? true : undefined), 5000, "a warning");
    const fromEnv = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--then", "echo", "--json"], {
        ECHOGATE_TOKEN: "s3cret",
      }),
    );
    expect(fromEnv.stderr()).toBe("");
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: fromEnv.port }));
    await socket.write(bytes("s3cret\r\n"));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    await socket.write(bytes("hi"));
    expect(text(await readAtLeast(socket, 8))).toBe("Echo=>hi");
    socket.close();
    await waitFor(() => (fromEnv.stdout().includes('"event":"knock"') ? true : undefined), 5000, "a knock event");
    const knockEvent = fromEnv.stdout().split("\n").map((l) => (l ? JSON.parse(l) : {})).find((e) =>
      e.event === "knock"
    );
    expect(knockEvent).toMatchObject({
      welcomed: true,
      durationMs: expect.any(Number),
      remote: expect.stringMatching(/^127\.0\.0\.1:/),
    });
    expect(fromEnv.stdout()).not.toContain("s3cret");
  });
});

describe("PendingPerSource", () => {
  test("counts per IPv4 address and IPv6 /64, and forgets a source once none of its connections waits", () => {
    const pending = new PendingPerSource(2);
    const keys = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9"].map((address) => pending.add(address));
    expect(pending.isFull("2001:db8:1:2::3")).toBe(true); // the same /64
    expect(pending.isFull("2001:db8:1:3::1")).toBe(false);
    const v4 = pending.add("::ffff:192.0.2.7");
    expect(pending.isFull("192.0.2.7")).toBe(false);
    pending.add("192.0.2.7");
    expect(pending.isFull("192.0.2.7")).toBe(true);
    expect(pending.add("not an address")).toBeUndefined();
    for (const key of [...keys, v4, v4]) pending.release(key);
    expect(pending.sources).toBe(0);
  });
});

describe(`gate: connections waiting for a token, per source, on ${RUNTIME}`, () => {
  test(
    `a source with ${DEFAULT_MAX_PENDING_PER_SOURCE} (the default) waiting has its next ones closed at once, ` +
      "another source is welcomed, and a closed one frees its place",
    async () => {
      const { logger, connect, knock, port } = await startGate({ timeoutMs: 60_000 });
      const held: StreamSocket[] = [];
      for (let i = 0; i < DEFAULT_MAX_PENDING_PER_SOURCE; i++) held.push(await connect());
      await waitFor(
        () => (count(logger.events, "connect") === DEFAULT_MAX_PENDING_PER_SOURCE ? true : undefined),
        10_000,
        "the held connections to be accepted",
      );
      // Refused at accept: closed without a reply, long before the 60 s token timeout.
      for (let i = 0; i < 3; i++) expect(await readAll(await connect())).toHaveLength(0);
      expect(refusals(logger.events)[0]).toMatchObject({
        remote: expect.stringMatching(/^127\.0\.0\.1:/),
        reason: `${DEFAULT_MAX_PENDING_PER_SOURCE} connections from this source waiting for a token`,
      });
      // Loopback is penalty-exempt, not exempt from this limit; another source is still served.
      expect(await knocksFrom("127.0.0.2", port, "1", 1)).toEqual([WELCOME]);
      held[0]!.close();
      await waitFor(() => (count(logger.events, "close") >= 2 ? true : undefined), 10_000, "the held one to close");
      expect(await knock("1")).toBe(WELCOME);
    },
    60_000,
  );

  test("behind a PROXY listener the client the header names counts (per /64), never the proxy", async () => {
    const { logger, connect } = await startGate({ proxyProtocol: {}, maxPendingPerSource: 2, timeoutMs: 60_000 });
    const header = (hostname: string) =>
      encodeProxyHeader({
        version: 2,
        source: { transport: "tcp", hostname, port: 40000 },
        destination: { transport: "tcp", hostname: "2001:db8::80", port: 8001 },
      });
    const waiting = async (header: Uint8Array) => {
      const socket = await connect();
      await socket.write(header);
      return socket;
    };
    // Two clients of one /64 wait, and three health checks (LOCAL: the proxy's own), all from 127.0.0.1.
    await waiting(header("2001:db8:1:2::1"));
    await waiting(header("2001:db8:1:2::2"));
    for (let i = 0; i < 3; i++) await waiting(encodeProxyHeader({ version: 2, local: true }));
    await waitFor(() => (count(logger.events, "connect") === 5 ? true : undefined), 10_000, "five connects");
    const third = await waiting(header("2001:db8:1:2::3"));
    expect(await readAll(third)).toHaveLength(0);
    expect(refusals(logger.events)[0]).toMatchObject({
      remote: "[2001:db8:1:2::3]:40000",
      proxy: expect.stringMatching(/^127\.0\.0\.1:/),
      reason: "2 connections from this source waiting for a token",
    });
    // Another /64 behind the same proxy knocks and is welcomed.
    const other = await connect();
    await other.write(concat([header("2001:db8:1:3::1"), bytes("1")]));
    expect(text(await readAll(other))).toBe(WELCOME);
  });

  const opensslMissing = !hasOpenssl();
  describe.skipIf(opensslMissing)("over TLS", () => {
    const pki = usePki();
    test("a connection counts once its handshake is done", async () => {
      const { logger, port } = await startGate({
        tls: { cert: pki.serverCert, key: pki.serverKey },
        maxPendingPerSource: 1,
        timeoutMs: 60_000,
      });
      const connect = async () =>
        resources.add(await transport.connect({ hostname: "127.0.0.1", port }, { tls: { ca: pki.caCert } }));
      await connect();
      await waitFor(() => (count(logger.events, "connect") === 1 ? true : undefined), 10_000, "the first connect");
      const second = await connect().catch(() => undefined);
      if (second) expect(await readAll(second).catch(() => new Uint8Array())).toHaveLength(0);
      expect(await logger.waitForEvent("refused")).toMatchObject({
        reason: "1 connections from this source waiting for a token",
      });
    });
  });

  test(
    "--max-pending-per-source: the CLI limits each source, and refuses a value that is not a positive integer",
    async () => {
      const server = resources.child(
        await startCliServer(RUNTIME, [
          "gate",
          "serve",
          "--port",
          "0",
          "--token",
          "s3cret",
          "--timeout",
          "60",
          "--max-pending-per-source",
          "2",
          "--json",
        ]),
      );
      const dial = async () => resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port }));
      await dial();
      await dial();
      await waitFor(
        () => (server.stdout().split('"event":"connect"').length === 3 ? true : undefined),
        10_000,
        "two connects",
      );
      expect(await readAll(await dial())).toHaveLength(0);
      await waitFor(
        () => (server.stdout().includes('"reason":"2 connections from this source waiting for a token"')
          ? true
          : undefined),
        5000,
        "the refusal",
      );
      for (const value of ["0", "-1", "many"]) {
        const result = await runCommand([...cliCommand(RUNTIME), "gate", "serve", "--max-pending-per-source", value]);
        expect(result.code).toBe(2);
        expect(result.stderr.split("\n")[0]).toBe(
          `echogate: Invalid value for "--max-pending-per-source": "${value}" is not a positive integer or "none"`,
        );
      }
    },
    60_000,
  );
});
