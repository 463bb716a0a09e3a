// PROXY protocol and TLS on one listener, as HAProxy in TCP mode (TLS passthrough) sends them: the
// header in clear text, then the client's TLS bytes. The header is read and checked as on plain
// TCP, then the handshake runs over the same connection from the bytes that followed it.

import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import {
  createForwardHandler,
  encodeProxyHeader,
  knockGate,
  type LogEvent,
  sendEcho,
  serveEcho,
  serveGate,
  type StreamSocket,
  type TlsServerOptions,
  type Transport,
} from "../src/mod.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { expectSighupReload, hasOpenssl, usePki } from "./_pki.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { bytes, concat, portOf, readAll, readAtLeast, RUNTIME, text, transport, watchingTransport } from "./_net.ts";
import { cliCommand, runCommand, startCliServer } from "./_child.ts";
import { cleanup, recordingLogger } from "./_utils.ts";

const opensslMissing = !hasOpenssl();
if (opensslMissing) console.log("skipping the PROXY + TLS tests: openssl is not installed (CI installs it)");

const CLIENT = { transport: "tcp" as const, hostname: "192.0.2.7", port: 40000 };
const SERVER = { transport: "tcp" as const, hostname: "198.51.100.1", port: 50007 };

const events = (logged: LogEvent[], name: string) => logged.filter((e) => e.event === name);

describe.skipIf(opensslMissing)(`PROXY protocol then TLS on ${RUNTIME}`, () => {
  const pki = usePki();
  const resources = cleanup();
  afterEach(() => resources.run());
  const serverTls = (more: Partial<TlsServerOptions> = {}): TlsServerOptions => ({
    cert: pki.serverCert,
    key: pki.serverKey,
    ...more,
  });
  const clientTls = () => ({ ca: pki.caCert, servername: "localhost" });

  async function echoServer(
    options: { trusted?: string[]; tls?: Partial<TlsServerOptions>; maxConns?: number; transport?: Transport } = {},
  ) {
    const logger = recordingLogger();
    const server = resources.add(
      await serveEcho({
        transport: options.transport ?? transport,
        port: 0,
        logger,
        maxConns: options.maxConns,
        proxyProtocol: { trusted: options.trusted },
        tls: serverTls(options.tls),
      }),
    );
    return { server, logger, port: portOf(server) };
  }

  const dial = async (port: number): Promise<StreamSocket> =>
    resources.add(await transport.connect({ hostname: "127.0.0.1", port }));

  test.each([[1 as const], [2 as const]])(
    "a TLS client behind a v%s header: byte-exact echoes, the header's client logged with the session",
    async (version) => {
      const { logger, port } = await echoServer({ tls: { alpn: ["echo"] } });
      const big = "0123456789".repeat(400); // one TLS record, so one chunk and one answer
      const replies: string[] = [];
      await sendEcho({
        transport,
        hostname: "127.0.0.1",
        port,
        tls: { ...clientTls(), alpn: ["echo"] },
        proxyHeader: { version, source: CLIENT },
        messages: ["hello", "ünïcode", big],
        onReply: (reply) => void replies.push(text(reply)),
      });
      expect(replies).toEqual(["Echo=>hello", "Echo=>ünïcode", `Echo=>${big}`]);
      const connect = await logger.waitForEvent("connect");
      expect(connect).toMatchObject({
        remote: "192.0.2.7:40000",
        proxy: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        tls: { alpn: "echo" },
      });
      expect(await logger.waitForEvent("close")).toMatchObject({ remote: "192.0.2.7:40000" });
    },
  );

  test("the header and the first TLS bytes in one write: nothing after the header is lost", async () => {
    const { logger, port } = await echoServer();
    // A relay that holds the client's ClientHello back and sends it to the server in the same
    // write as the header, as a proxy may.
    const relay = resources.add(
      await coalescingRelay(port, encodeProxyHeader({ version: 2, source: CLIENT, destination: SERVER })),
    );
    const replies: string[] = [];
    await sendEcho({
      transport,
      hostname: "127.0.0.1",
      port: relay.port,
      tls: clientTls(),
      messages: ["one", "two"],
      onReply: (reply) => void replies.push(text(reply)),
    });
    expect(replies).toEqual(["Echo=>one", "Echo=>two"]);
    expect(relay.firstWrite()).toBeGreaterThan(28 + 5); // header and a whole TLS record together
    expect(await logger.waitForEvent("connect")).toMatchObject({ remote: "192.0.2.7:40000" });
  });

  test("gate: a TLS knock behind a header is welcomed and judged as the header's client", async () => {
    const logger = recordingLogger();
    const gate = resources.add(
      await serveGate({
        transport,
        port: 0,
        logger,
        tokens: ["s3cret"],
        penalties: { exempt: [] },
        proxyProtocol: {},
        tls: serverTls(),
      }),
    );
    const knock = (token: string) =>
      knockGate({
        transport,
        hostname: "127.0.0.1",
        port: portOf(gate),
        token,
        delayMs: 0,
        tls: clientTls(),
        proxyHeader: { version: 1, source: CLIENT },
      });
    expect((await knock("s3cret")).welcomed).toBe(true);
    expect((await knock("wrong")).welcomed).toBe(false);
    const penalty = await logger.waitForEvent("penalty");
    expect(penalty).toMatchObject({ remote: "192.0.2.7:40000" });
    expect(events(logger.events, "knock")).toEqual([
      expect.objectContaining({ remote: "192.0.2.7:40000", welcomed: true }),
      expect.objectContaining({ remote: "192.0.2.7:40000", welcomed: false }),
    ]);
  });

  test("a gate forwarding over TLS with a header (--then tls:// --then-proxy-protocol): the upstream logs the client", async () => {
    const upstream = await echoServer();
    const gate = resources.add(
      await serveGate({
        transport,
        port: 0,
        tokens: ["t"],
        proxyProtocol: {},
        handoff: createForwardHandler({
          transport,
          upstream: { hostname: "127.0.0.1", port: upstream.port },
          tls: { ca: pki.caCert },
          proxyProtocol: 2,
        }),
      }),
    );
    const socket = await dial(portOf(gate));
    await socket.write(concat([encodeProxyHeader({ version: 1, source: CLIENT, destination: SERVER }), bytes("t")]));
    expect(text(await readAtLeast(socket, WELCOME.length))).toBe(WELCOME);
    await socket.write(bytes("behind two hops"));
    expect(text(await readAtLeast(socket, 21))).toBe("Echo=>behind two hops");
    expect(await upstream.logger.waitForEvent("connect")).toMatchObject({
      remote: "192.0.2.7:40000",
      proxy: expect.stringMatching(/^127\.0\.0\.1:/),
      tls: { version: expect.stringMatching(/^TLSv1/) },
    });
  });

  test("a client certificate is asked for and checked after the header (--tls-client-ca)", async () => {
    const { logger, port } = await echoServer({ tls: { clientCa: pki.caCert } });
    const send = (cert?: string, key?: string) =>
      sendEcho({
        transport,
        hostname: "127.0.0.1",
        port,
        tls: { ...clientTls(), ...(cert && { cert, key }) },
        proxyHeader: { version: 2, source: CLIENT },
        messages: ["hi"],
        timeoutMs: 3000,
      });
    await send(pki.clientCert, pki.clientKey);
    expect(await logger.waitForEvent("connect")).toMatchObject({
      remote: "192.0.2.7:40000",
      tls: { authorized: true, peerSubject: expect.stringContaining("CN=") },
    });
    await expect(send(pki.otherClientCert, pki.otherClientKey)).rejects.toThrow();
    const failed = await logger.waitForEvent("tls-handshake-failed");
    expect(failed).toMatchObject({ remote: "192.0.2.7:40000", proxy: expect.stringMatching(/^127\.0\.0\.1:/) });
    expect(events(logger.events, "connect")).toHaveLength(1);
  });

  test("a bad header is refused before any TLS: a TLS client with no header gets no handshake", async () => {
    const { logger, port } = await echoServer();
    await expect(
      sendEcho({ transport, hostname: "127.0.0.1", port, tls: clientTls(), messages: ["hi"], timeoutMs: 3000 }),
    ).rejects.toThrow();
    const refused = await logger.waitForEvent("refused");
    expect(refused).toMatchObject({ reason: expect.stringMatching(/^bad PROXY header/) });
    expect(events(logger.events, "tls-handshake-failed")).toEqual([]);
    expect(events(logger.events, "connect")).toEqual([]);
  });

  test("a stalled handshake after a good header is cut by the handshake timeout, logged as the client", async () => {
    const { logger, port } = await echoServer({ tls: { handshakeTimeoutMs: 1000 } });
    const socket = await dial(port);
    const started = Date.now();
    await socket.write(encodeProxyHeader({ version: 2, source: CLIENT, destination: SERVER }));
    expect(await readAll(socket, 8000)).toHaveLength(0); // closed by the server, nothing sent
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const failed = await logger.waitForEvent("tls-handshake-failed");
    expect(failed).toMatchObject({
      remote: "192.0.2.7:40000",
      proxy: expect.stringMatching(/^127\.0\.0\.1:/),
      reason: "timeout",
    });
  });

  test("a source outside the trusted proxies is refused at accept, with no handshake", async () => {
    const { logger, port } = await echoServer({ trusted: ["10.0.0.0/8"] });
    await expect(
      sendEcho({
        transport,
        hostname: "127.0.0.1",
        port,
        tls: clientTls(),
        proxyHeader: { version: 2, source: CLIENT },
        messages: ["hi"],
        timeoutMs: 3000,
      }),
    ).rejects.toThrow();
    const refused = await logger.waitForEvent("refused");
    expect(refused).toMatchObject({
      remote: expect.stringMatching(/^127\.0\.0\.1:/),
      reason: expect.stringContaining("not a trusted proxy"),
    });
    expect(events(logger.events, "tls-handshake-failed")).toEqual([]);
  });

  test("reloadTls: connections after the reload get the new certificate", async () => {
    const { server, port } = await echoServer();
    const trusts = (ca: string) =>
      sendEcho({
        transport,
        hostname: "127.0.0.1",
        port,
        tls: { ca, servername: "localhost" },
        proxyHeader: { version: 1, source: CLIENT },
        timeoutMs: 3000,
      }).then(() => true, () => false);
    expect(await trusts(pki.caCert)).toBe(true);
    await server.reloadTls!({ cert: pki.otherServerCert, key: pki.otherServerKey });
    expect(await trusts(pki.otherCaCert)).toBe(true);
    expect(await trusts(pki.caCert)).toBe(false);
  });

  test("maxConns counts handshakes under way; closing the server closes them", async () => {
    const watch = watchingHandshakes();
    const { logger, server, port } = await echoServer({ maxConns: 1, transport: watch.transport });
    const stalled = await dial(port);
    await stalled.write(encodeProxyHeader({ version: 2, source: CLIENT, destination: SERVER }));
    // Only once the server has read the header is the slot held by a handshake; before, closing
    // the server would close a connection with the header unread, which TCP answers with a reset.
    await waitUntil(() => watch.handshakesStarted() === 1, { what: "the stalled connection's handshake" });
    const second = await dial(port);
    await second.write(encodeProxyHeader({ version: 2, source: CLIENT, destination: SERVER }));
    expect(await readAll(second, 5000)).toHaveLength(0);
    expect(await logger.waitForEvent("refused")).toMatchObject({
      reason: "1 connections waiting for a PROXY header or TLS handshake",
    });
    expect(watch.handshakesStarted()).toBe(1); // the refused connection never reached a handshake
    await server.close();
    expect(await readAll(stalled, 5000)).toHaveLength(0);
    expect(events(logger.events, "tls-handshake-failed")).toEqual([]);
  });

  describe("the CLI", () => {
    const tlsFlags = () => ["--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey];

    test("echo serve --proxy-protocol --tls-cert: echo send --tls --proxy-header v2 --proxy-source", async () => {
      const human = resources.child(
        await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol", ...tlsFlags()]),
      );
      const json = resources.child(
        await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol", "--json", ...tlsFlags()]),
      );
      for (const [server, version] of [[human, "v2"], [json, "v1"]] as const) {
        const sent = await runCommand([
          ...cliCommand(RUNTIME),
          ...["echo", "send", "localhost", "hi", "--port", String(server.port), "--tls", "--ca", pki.files.caCert],
          ...["--proxy-header", version, "--proxy-source", "192.0.2.10:9"],
        ]);
        expect(sent.stderr).toBe("");
        expect(sent.stdout).toContain("Client received: 'Echo=>hi'");
      }
      await waitUntil(() => human.stdout().includes("Server connected by 192.0.2.10:9"), { what: "the line" });
      const line = await waitFor(() => json.stdout().split("\n").find((l) => l.includes('"connect"')), 5000, "event");
      expect(JSON.parse(line)).toMatchObject({
        remote: "192.0.2.10:9",
        proxy: expect.stringMatching(/^127\.0\.0\.1:/),
        tls: { version: expect.stringMatching(/^TLSv1\.[23]$/) },
      });
    });

    test("gate serve --proxy-protocol --tls-cert: gate knock --tls --proxy-header is welcomed as the header's client", async () => {
      const gate = resources.child(
        await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--proxy-protocol", "--json", ...tlsFlags()], {
          ECHOGATE_TOKEN: "t",
        }),
      );
      const knocked = await runCommand([
        ...cliCommand(RUNTIME),
        ...["gate", "knock", "localhost", "--port", String(gate.port), "--token", "t", "--delay", "0"],
        ...["--tls", "--ca", pki.files.caCert, "--proxy-header", "v2", "--proxy-source", "[2001:db8::9]:7"],
      ]);
      expect(knocked.code).toBe(0);
      await waitUntil(() => gate.stdout().includes('"remote":"[2001:db8::9]:7"'), { what: "the v6 client" });
    });

    test("bench --tls --proxy-header v2 loads a PROXY + TLS listener: every exchange echoed, each as the header's client", async () => {
      const server = resources.child(
        await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--proxy-protocol", "--json", ...tlsFlags()]),
      );
      for (const mode of ["pingpong", "connect"]) {
        const run = await runCommand([
          ...cliCommand(RUNTIME),
          ...["bench", "localhost", "--port", String(server.port), "--mode", mode, "--conns", "2", "--duration", "0.5"],
          ...["--tls", "--ca", pki.files.caCert, "--proxy-header", "v2", "--proxy-source", "192.0.2.10:9", "--json"],
        ]);
        expect(run.code, run.stderr).toBe(0);
        const report = JSON.parse(run.stdout);
        expect(report).toMatchObject({ mode, errors: 0, mismatches: 0 });
        expect(report.operations).toBeGreaterThan(0);
      }
      const connects = server.stdout().split("\n").filter((line) => line.includes('"event":"connect"'));
      expect(connects.length).toBeGreaterThan(2);
      for (const line of connects) expect(JSON.parse(line)).toMatchObject({ remote: "192.0.2.10:9", tls: {} });
      expect(server.stdout()).not.toContain('"event":"refused"');
    });

    test("SIGHUP re-reads the certificate of a PROXY + TLS listener", async () => {
      const cert = join(pki.dir, `proxy-live-${RUNTIME}.crt`);
      const key = join(pki.dir, `proxy-live-${RUNTIME}.key`);
      copyFileSync(pki.files.serverCert, cert);
      copyFileSync(pki.files.serverKey, key);
      const server = resources.child(
        await startCliServer(RUNTIME, [
          ...["echo", "serve", "--port", "0", "--proxy-protocol", "--tls-cert", cert, "--tls-key", key],
        ]),
      );
      const trusts = (ca: string) =>
        sendEcho({
          transport,
          hostname: "127.0.0.1",
          port: server.port,
          tls: { ca, servername: "localhost" },
          proxyHeader: { version: 2, source: CLIENT },
          timeoutMs: 3000,
        }).then(() => true, () => false);
      await expectSighupReload(server, { cert, key }, pki, trusts);
    });

    test("--workers 2: each worker reads the header, then serves TLS", async () => {
      const server = resources.child(
        await startCliServer(RUNTIME, [
          ...["echo", "serve", "--port", "0", "--workers", "2", "--proxy-protocol", ...tlsFlags()],
        ]),
      );
      for (let i = 0; i < 4; i++) {
        const replies: string[] = [];
        await sendEcho({
          transport,
          hostname: "127.0.0.1",
          port: server.port,
          tls: clientTls(),
          proxyHeader: { version: 2, source: { ...CLIENT, port: 41000 + i } },
          messages: [`m${i}`],
          onReply: (reply) => void replies.push(text(reply)),
        });
        expect(replies).toEqual([`Echo=>m${i}`]);
      }
      await waitUntil(() => server.stdout().includes("Server connected by 192.0.2.7:41003"), { what: "line" });
    });
  });
});

/**
 * A TCP relay in front of `port` that reads the client's first TLS record whole, then opens the
 * upstream connection and writes `header` and that record in one write; then copies both ways.
 */
async function coalescingRelay(port: number, header: Uint8Array) {
  let first = 0;
  const open = new Set<StreamSocket>();
  const pipe = async (from: StreamSocket, to: StreamSocket) => {
    try {
      for (let chunk = await from.read(); chunk !== null; chunk = await from.read()) await to.write(chunk);
      await to.closeWrite();
    } catch {
      to.close();
    }
  };
  const listener = await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
    onSocket(client) {
      open.add(client);
      void (async () => {
        let held: Uint8Array = new Uint8Array(0);
        // A TLS record: 5 bytes of header, the last two its length.
        while (held.length < 5 || held.length < 5 + ((held[3]! << 8) | held[4]!)) {
          const chunk = await client.read();
          if (chunk === null) return client.close();
          held = concat([held, chunk]);
        }
        const upstream = await transport.connect({ hostname: "127.0.0.1", port });
        open.add(upstream);
        const together = concat([header, held]);
        first = together.length;
        await upstream.write(together);
        await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
      })().catch(() => client.close());
    },
    onError() {},
  });
  return {
    port: (listener.addr as { port: number }).port,
    firstWrite: () => first,
    async close() {
      await listener.close();
      for (const socket of open) socket.close();
    },
  };
}

/**
 * The adapter's transport, with a count of the handshakes its server started: the server calls
 * `startTls` on a deferred connection once it has read that connection's PROXY header.
 */
function watchingHandshakes(): { transport: Transport; handshakesStarted: () => number } {
  let started = 0;
  return {
    handshakesStarted: () => started,
    transport: watchingTransport((socket) => {
      const startTls = socket.startTls?.bind(socket);
      if (startTls) socket.startTls = (buffered) => (started++, startTls(buffered));
    }),
  };
}
