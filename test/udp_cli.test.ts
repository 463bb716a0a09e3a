// `echo serve --udp` and `echo send --udp`: this runtime's client against every runtime's CLI
// server (this file runs once per runtime: the three runs cover the 3x3 matrix), and the CLI
// client's output, exit codes and flags.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { sendEcho, serveDatagramEcho } from "../src/mod.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { bytes, RUNTIME, RUNTIMES, text, transport } from "./_net.ts";
import { argv, type ChildServer, cliCommand, ROOT, runCommand, runEchogate, startCliServer } from "./_child.ts";
import { cleanup } from "./_utils.ts";

for (const serverRuntime of RUNTIMES) {
  describe(`${RUNTIME} UDP client against a ${serverRuntime} UDP server`, () => {
    let server: ChildServer;
    beforeAll(async () => {
      server = await startCliServer(serverRuntime, ["echo", "serve", "--udp", "--port", "0"]);
    });
    afterAll(async () => {
      await server?.stop();
    });

    test("each datagram comes back behind Echo=>, and the peer is logged", async () => {
      expect(server.stdout()).toMatch(/^echo server listening on 127\.0\.0\.1:\d+ \(udp\)$/m);
      const replies = await sendEcho({
        transport,
        udp: true,
        hostname: "127.0.0.1",
        port: server.port,
        messages: ["hi", "über ✓"],
      });
      expect(replies.map(text)).toEqual(["Echo=>hi", "Echo=>über ✓"]);
      await waitUntil(
        () => /^Datagram from 127\.0\.0\.1:\d+$/m.test(server.stdout()),
        { timeoutMs: 5000, what: "the Datagram from line" },
      );
    });
  });
}

describe(`${RUNTIME} UDP client against Deno with --unstable-net (Deno.listenDatagram)`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());
  const deno = [`${ROOT}node_modules/.bin/deno`, "run", "-A", "--unstable-net", `${ROOT}src/cli.ts`];
  const start = async (args: string[]) => resources.child(await startDeno(args));
  async function startDeno(args: string[]): Promise<ChildServer> {
    // startCliServer runs the plain command; this one adds the flag.
    const { startChild } = await import("./_utils.ts");
    const child = startChild([...deno, "echo", "serve", "--udp", "--port", "0", ...args]);
    const address = await waitFor(() => /listening on (\S+)/.exec(child.stdout())?.[1], 15_000, "deno to listen");
    return { ...child, address, port: Number(/:(\d+)$/.exec(address)![1]) };
  }

  test("echoes, refuses the server's own port, rate-limits and caps the size", async () => {
    const server = await start(["--udp-rate", "2", "--max-datagram", "8"]);
    const replies = await sendEcho({
      transport,
      udp: true,
      hostname: "127.0.0.1",
      port: server.port,
      messages: ["hi"],
    });
    expect(replies.map(text)).toEqual(["Echo=>hi"]);
    const received: string[] = [];
    const probe = async (hostname: string, port: number) =>
      resources.add(
        await transport.bindDatagram!({ hostname, port }, {
          onMessage: (b) => void received.push(text(b)),
          onError() {},
        }),
      );
    // From the server's own port on another loopback address: never answered.
    const twin = await probe("127.0.0.2", server.port);
    twin.send(bytes("loop?"), "127.0.0.1", server.port);
    // Too big: never answered.
    const other = await probe("127.0.0.3", 0);
    other.send(bytes("123456789"), "127.0.0.1", server.port);
    // A burst of 10 from one source: 4 at once (2/s, bursts of 4), maybe one more refilled.
    for (let i = 0; i < 10; i++) other.send(bytes(`r${i}`), "127.0.0.1", server.port);
    await waitUntil(() => received.length >= 4, { timeoutMs: 5000, what: "the burst's answers" });
    // No more than 5 may come: an absence, so a window to watch (a late answer fails, never passes).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.filter((r) => r.startsWith("Echo=>r")).length).toBeGreaterThanOrEqual(4);
    expect(received.filter((r) => r.startsWith("Echo=>r")).length).toBeLessThanOrEqual(5);
    expect(received.filter((r) => !r.startsWith("Echo=>r"))).toEqual([]);
    // The first drop is reported at once (the rest within 10 s): the twin's, sent first.
    await waitUntil(
      () => /dropped 1 from refused source ports/.test(server.stdout()),
      { timeoutMs: 5000, what: "the drop report" },
    );
  });
  test("answers many binary datagrams byte-exact, small and big (received datagrams are cut from slabs)", async () => {
    const server = await start(["--no-udp-limits"]);
    const received: Uint8Array[] = [];
    const client = resources.add(
      await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, {
        onMessage: (b) => void received.push(b.slice()),
        onError() {},
      }),
    );
    // 40 × 700 bytes fill more than one 16 KiB slab; 1400 bytes take the own-copy path.
    const sizes = [...Array.from({ length: 40 }, () => 700), 1, 1400, 1024, 1025];
    const sent = sizes.map((size, i) => Uint8Array.from({ length: size }, (_, j) => (i * 31 + j * 7) & 0xff));
    for (const datagram of sent) {
      client.send(datagram, "127.0.0.1", server.port);
      await waitUntil(() => received.length === sent.indexOf(datagram) + 1, { timeoutMs: 5000, what: "each echo" });
    }
    const prefix = bytes("Echo=>");
    expect(received.map((r) => [...r])).toEqual(sent.map((d) => [...prefix, ...d]));
  });
});

describe(`echogate echo send --udp on ${RUNTIME}`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());

  test("prints the seed's Client received line per message and exits 0", async () => {
    const server = resources.add(await serveDatagramEcho({ transport, port: 0 }));
    const { code, stdout } = await runCommand([
      ...cliCommand(RUNTIME),
      "echo",
      "send",
      "--udp",
      "127.0.0.1",
      "Hello",
      "network world",
      "--port",
      String(server.addr.transport === "udp" ? server.addr.port : 0),
    ]);
    expect(stdout).toBe("Client received: 'Echo=>Hello'\nClient received: 'Echo=>network world'\n");
    expect(code).toBe(0);
  });

  test("exits 1 with one line when no reply ever came", async () => {
    // A bound socket that never answers: the port is surely not some other server's.
    const silent = resources.add(
      await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, { onMessage() {}, onError() {} }),
    );
    const port = silent.addr.transport === "udp" ? silent.addr.port : 0;
    const { code, stdout, stderr } = await runEchogate(
      argv`echo send --udp 127.0.0.1 --port ${port} --timeout 0.2 --retries 1`,
    );
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe("echogate: No reply to message 1 after 2 tries of 0.2 s each\n");
  });

  test("--json logs the listening and datagram events; --udp-rate and --max-datagram are taken", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, [
        "echo",
        "serve",
        "--udp",
        "--port",
        "0",
        "--json",
        "--udp-rate",
        "50",
        "--max-datagram",
        "4",
      ]),
    );
    const listening = JSON.parse(server.stdout().split("\n")[0]!);
    expect(listening).toMatchObject({ event: "listening", protocol: "echo", transport: "udp" });
    const replies = await sendEcho({
      transport,
      udp: true,
      hostname: "127.0.0.1",
      port: server.port,
      messages: ["abcd"],
    });
    expect(replies.map(text)).toEqual(["Echo=>abcd"]);
    await expect(
      sendEcho({
        transport,
        udp: true,
        hostname: "127.0.0.1",
        port: server.port,
        messages: ["abcde"],
        timeoutMs: 200,
        retries: 0,
      }),
    ).rejects.toThrow(/No reply/);
    const events = await waitFor(
      () => {
        const lines = server.stdout().trim().split("\n").map((line) => JSON.parse(line));
        return lines.some((e) => e.event === "datagram-drops") ? lines : undefined;
      },
      5000,
      "a drop report",
    );
    expect(events.find((e) => e.event === "datagram")).toMatchObject({
      remote: expect.stringMatching(/^127\.0\.0\.1:/),
    });
    expect(events.find((e) => e.event === "datagram-drops")).toMatchObject({ tooBig: 1 });
  });

  test("a UDP port in use is an error that says so", async () => {
    const taken = resources.add(
      await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, { onMessage() {}, onError() {} }),
    );
    const port = taken.addr.transport === "udp" ? taken.addr.port : 0;
    const { code, stderr } = await runEchogate(argv`echo serve --udp --port ${port}`);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^echogate: .*in use\n$/);
  });

  test("a --prefix over the amplification bound exits 2 with --udp, unless --no-udp-limits", async () => {
    const long = "x".repeat(1400);
    const refused = await runEchogate(argv`echo serve --udp --port 0 --prefix ${long}`);
    expect(refused.code).toBe(2);
    expect(refused.stderr.split("\n")[0]).toMatch(/^echogate: .*1400 bytes.*at most 56 .*--no-udp-limits$/);
    // The bound itself is allowed, and --no-udp-limits lifts it (a lab).
    for (const [prefix, extra] of [["y".repeat(56), []], [long, ["--no-udp-limits"]]] as const) {
      const server = resources.child(
        await startCliServer(RUNTIME, ["echo", "serve", "--udp", "--port", "0", "--prefix", prefix, ...extra]),
      );
      const [reply] = await sendEcho({
        transport,
        udp: true,
        hostname: "127.0.0.1",
        port: server.port,
        messages: ["!"],
      });
      expect(text(reply!)).toBe(`${prefix}!`);
    }
  });

  test("peers that leave before their answer (ICMP port unreachable) cost another peer nothing, and are counted, not logged each", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--udp", "--port", "0", "--no-udp-limits"]),
    );
    // Synchronous sockets: each leaving peer closes its socket right after sending, so its answer
    // meets a closed port (ICMP port unreachable) unless the server was quicker (about 1 in 10 on
    // 2 cores); the live peer's datagram follows at once, and it waits for each answer (5 s at
    // most) before sending the next: no retries.
    const script = `
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
live = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
live.bind(("127.0.0.1", 0))
live.settimeout(5)
for i in range(n):
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(("127.0.0.%d" % (2 + i), 0))
    gone.sendto(b"gone", ("127.0.0.1", port))
    gone.close()
    live.sendto(b"live %d" % i, ("127.0.0.1", port))
    try:
        answer = live.recv(2048)
    except socket.timeout:
        print("no answer to", i)
        break
    if answer != b"Echo=>live %d" % i:
        print("wrong answer", answer)
        break
else:
    print("all answered")
`;
    const client = await runCommand(["python3", "-c", script, String(server.port), "50"], { ms: 60_000 });
    expect(client.stdout).toBe("all answered\n");
    // SIGTERM: the server closes and logs what it had not reported yet.
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.stderr()).not.toMatch(/ECONNREFUSED|refused/i);
    // Bun's socket sees the ICMP errors (Node's and Deno's unconnected ones do not): counted in the report.
    if (RUNTIME === "bun") expect(server.stdout()).toMatch(/UDP since the last report: .*\d+ ICMP port unreachable/);
  });

  test("flags that do not fit --udp are usage errors", async () => {
    for (
      const args of [
        ["echo", "serve", "--udp", "--unix", "/tmp/x.sock"],
        ["echo", "serve", "--udp", "--mode", "line"],
        ["echo", "serve", "--udp-rate", "5"],
        ["echo", "serve", "--udp", "--no-udp-limits", "--udp-budget", "5"],
        ["echo", "send", "--retries", "2"],
        ["echo", "send", "--udp", "--retries", "-1"],
        ["echo", "serve", "--udp", "--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        ["echo", "send", "--udp", "--tls"],
        ["bench", "--udp", "--tls"],
      ]
    ) {
      const { code, stderr } = await runEchogate(args);
      expect({ args, code }).toEqual({ args, code: 2 });
      expect(stderr.split("\n")[0]).toMatch(/^echogate: /);
    }
  });
});
