// The clients' failures, through the CLI on this runtime: one line on stderr, exit 1, in the same
// words on Node, Deno and Bun, naming the address (refused, unknown host, missing unix socket, the
// TLS verdicts); a plain client that reaches a TLS server of any runtime is told so at once; HOST in
// the bracketed form servers print; and no SNI when connecting by address (RFC 6066).

import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { serveEcho } from "../src/mod.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import {
  type ChildServer,
  cleanup,
  cliCommand,
  hasIPv6,
  portOf,
  runCommand,
  RUNTIME,
  RUNTIMES,
  startCliServer,
  transport,
  waitFor,
} from "./_utils.ts";

const opensslMissing = !hasOpenssl();
const ipv6 = await hasIPv6();

/** Runs the CLI on this runtime; `ms` bounds how long it may take to exit. */
const cli = (args: string[], ms = 15_000) => runCommand([...cliCommand(RUNTIME), ...args], { ms });

/** Exit 1, nothing on stdout, and exactly one stderr line matching `expected`. */
function expectOneLine(result: { code: number; stdout: string; stderr: string }, expected: string | RegExp): void {
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  expect(lines, result.stderr).toHaveLength(1);
  if (typeof expected === "string") expect(lines[0]).toBe(expected);
  else expect(lines[0]).toMatch(expected);
  expect(result.stdout).toBe("");
  expect(result.code).toBe(1);
}

describe(`client connect errors on ${RUNTIME}`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());

  test("connection refused, an unknown host and a missing unix socket: one line, the same words everywhere", async () => {
    const listener = await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
      onSocket: (s) => s.close(),
      onError() {},
    });
    const port = (listener.addr as { port: number }).port;
    await listener.close(); // nothing listens there now
    const missing = join(tmpdir(), `echogate-missing-${process.pid}-${RUNTIME}`, "x.sock");
    const [refused, knockRefused, unknown, unix] = await Promise.all([
      cli(["echo", "send", "127.0.0.1", "--port", String(port)]),
      cli(["gate", "knock", "127.0.0.1", "--port", String(port), "--delay", "0"]),
      cli(["echo", "send", "nope.invalid", "--port", String(port)]),
      cli(["echo", "send", "--unix", missing]),
    ]);
    expectOneLine(refused, `echogate: connection refused by 127.0.0.1:${port}`);
    expectOneLine(knockRefused, `echogate: connection refused by 127.0.0.1:${port}`);
    expectOneLine(unknown, `echogate: cannot resolve host "nope.invalid"`);
    expectOneLine(unix, `echogate: no such unix socket: ${missing}`);
  });

  test.skipIf(!ipv6)("HOST may be [::1] or [::1]:PORT, the form servers print (bench: [::1])", async () => {
    const server = resources.add(await serveEcho({ transport, hostname: "::1", port: 0 }));
    const port = portOf(server);
    const [bare, withPort, bench] = await Promise.all([
      cli(["echo", "send", "[::1]", "a", "--port", String(port)]),
      cli(["echo", "send", `[::1]:${port}`, "b"]),
      cli(["bench", "[::1]", "--port", String(port), "--conns", "1", "--duration", "0.2"]),
    ]);
    expect(bench.code, bench.stderr).toBe(0);
    expect(bench.stdout).toContain(`Benchmarking [::1]:${port}:`);
    expect(bare.stderr).toBe("");
    expect(bare.stdout).toBe("Client received: 'Echo=>a'\n");
    expect(withPort.stderr).toBe("");
    expect(withPort.stdout).toBe("Client received: 'Echo=>b'\n");
  });
});

describe.skipIf(opensslMissing)(`client TLS errors on ${RUNTIME}`, () => {
  const pki = usePki();
  const resources = cleanup();
  afterEach(() => resources.run());

  test("a missing client certificate, an untrusted certificate, a wrong name: one line saying which", async () => {
    const mutual = resources.add(
      await serveEcho({ transport, port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.caCert } }),
    );
    const plain = resources.add(
      await serveEcho({ transport, port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } }),
    );
    const [noCert, knockNoCert, untrusted, misnamed] = await Promise.all([
      cli(["echo", "send", "localhost", "--port", String(portOf(mutual)), "--ca", pki.files.caCert]),
      // The knock writes after the server's verdict came: Bun's write then only says "closed".
      cli(["gate", "knock", "localhost", "--port", String(portOf(mutual)), "--ca", pki.files.caCert, "--delay", "0.3"]),
      cli(["echo", "send", "127.0.0.1", "--port", String(portOf(plain)), "--tls"]),
      cli([
        "echo",
        "send",
        "127.0.0.1",
        "--port",
        String(portOf(plain)),
        "--ca",
        pki.files.caCert,
        "--servername",
        "wrong.example",
      ]),
    ]);
    expectOneLine(noCert, "echogate: TLS: the server requires a client certificate");
    expectOneLine(knockNoCert, "echogate: TLS: the server requires a client certificate");
    expectOneLine(untrusted, "echogate: TLS: the server's certificate is not trusted (unknown issuer)");
    expectOneLine(misnamed, `echogate: TLS: the server's certificate does not match "wrong.example"`);
  });

  test("no SNI when connecting by address (with or without --servername ADDRESS); a name is still sent", async () => {
    // The server runs on Node, whose connect event names the SNI it got.
    const server = resources.child(
      await startCliServer("node", [
        "echo",
        "serve",
        "--port",
        "0",
        "--json",
        "--tls-cert",
        pki.files.serverCert,
        "--tls-key",
        pki.files.serverKey,
      ]),
    );
    const port = String(server.port);
    const ca = ["--ca", pki.files.caCert];
    const cases: [string[], string | undefined][] = [
      [["127.0.0.1", "--port", port, ...ca], undefined],
      [["127.0.0.1", "--port", port, ...ca, "--servername", "127.0.0.1"], undefined],
      [["127.0.0.1", "--port", port, "--insecure"], undefined],
      [
        ["127.0.0.1", "--port", port, ...ca, "--tls-cert", pki.files.clientCert, "--tls-key", pki.files.clientKey],
        undefined,
      ],
      [["localhost", "--port", port, ...ca], "localhost"],
    ];
    let seen = 0;
    for (const [args, servername] of cases) {
      const result = await cli(["echo", "send", ...args]);
      expect(result.stdout, result.stderr).toBe("Client received: 'Echo=>Hello network world'\n");
      expect(result.stderr).not.toMatch(/RFC 6066|DeprecationWarning/);
      const connects = await waitFor(
        () => {
          const lines = server.stdout().split("\n").filter((line) => line.includes('"connect"'));
          return lines.length > seen ? lines : undefined;
        },
        5000,
        "the connect event",
      );
      const event = JSON.parse(connects[seen]!);
      seen = connects.length;
      expect(event.tls.servername, args.join(" ")).toBe(servername);
    }
  });
});

describe.skipIf(opensslMissing)(`a plain ${RUNTIME} client against each runtime's TLS server`, () => {
  const pki = usePki();
  const servers: Partial<Record<(typeof RUNTIMES)[number], ChildServer>> = {};
  beforeAll(async () => {
    await Promise.all(RUNTIMES.map(async (runtime) => {
      servers[runtime] = await startCliServer(runtime, [
        "echo",
        "serve",
        "--port",
        "0",
        "--tls-cert",
        pki.files.serverCert,
        "--tls-key",
        pki.files.serverKey,
      ]);
    }));
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((server) => server?.stop()));
  });

  test("echo send and gate knock exit 1 at once with one line: the server speaks TLS, use --tls", async () => {
    // --timeout 10 and a process deadline well under it: the answer comes from the server's reply,
    // never from waiting out the timeout.
    // The knock's default token `1` is shorter than a TLS record header, which Bun's TLS server
    // (BoringSSL) waits for: the adapter answers it (docs/tls.md), also when it comes a second late.
    const runs = RUNTIMES.flatMap((server) => {
      const port = String(servers[server]!.port);
      const knock = (delay: string) =>
        cli(["gate", "knock", "127.0.0.1", "--port", port, "--delay", delay, "--timeout", "10"], 8000);
      return [
        { server, run: cli(["echo", "send", "127.0.0.1", "--port", port, "--timeout", "10"], 8000) },
        { server, run: knock("0") },
        { server, run: knock("1") },
      ];
    });
    for (const { server, run } of runs) {
      const result = await run;
      expect(result.stderr, `against ${server}`).toBe(
        `echogate: the server at 127.0.0.1:${servers[server]!.port} speaks TLS: use --tls\n`,
      );
      expectOneLine(result, /speaks TLS: use --tls$/);
    }
  });

  test("bench exits 1 with the same line instead of counting mismatches, in each mode", async () => {
    const bench = (server: (typeof RUNTIMES)[number], mode: string[]) => {
      const port = String(servers[server]!.port);
      const args = ["bench", "127.0.0.1", "--port", port, "--conns", "2", "--duration", "5", "--timeout", "10"];
      return { server, mode, run: cli([...args, ...mode], 8000) };
    };
    const runs = [
      ...RUNTIMES.map((server) => bench(server, [])), // pingpong
      bench("node", ["--mode", "stream"]),
      bench("node", ["--mode", "connect", "--knock", "1"]),
      bench("bun", ["--mode", "connect", "--knock", "1"]), // shorter than a TLS record header
    ];
    for (const { server, mode, run } of runs) {
      const result = await run;
      const what = `against ${server} ${mode.join(" ")}`;
      expect(result.stderr, what).toBe(
        `echogate: the server at 127.0.0.1:${servers[server]!.port} speaks TLS: use --tls\n`,
      );
      expect(result.stdout, what).not.toMatch(/mismatches/);
      expect(result.code, what).toBe(1);
    }
  });
});
