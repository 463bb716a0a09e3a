// --tls-self-signed (a throwaway certificate made in memory, its fingerprint printed) and
// --tls-fingerprint (a client that pins it): the certificate as openssl reads it, the clients and
// servers, workers, SIGHUP. And `echo send HOST -`: messages from standard input.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { certificateFingerprint, createSelfSignedTls, sendEcho, serveEcho, TlsFingerprintError } from "../src/mod.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { hasOpenssl } from "./_pki.ts";
import { deadline, waitUntil } from "./_wait.ts";
import { portOf, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { argv, type ChildServer, cliCommand, runCommand, runEchogate, startCliServer } from "./_child.ts";
import { cleanup } from "./_utils.ts";

const opensslMissing = !hasOpenssl();
if (opensslMissing) console.log("skipping the openssl checks of the self-signed certificate (CI installs openssl)");

const FINGERPRINT = /SHA256 Fingerprint=((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/;
/** A fingerprint that is not `fingerprint`: its first byte changed. */
const other = (fingerprint: string) => (fingerprint.startsWith("00") ? "01" : "00") + fingerprint.slice(2);
const cli = (args: string[]) => runEchogate(args);
/** Runs the CLI with `input` on its standard input (through sh: the test helpers give children no stdin). */
const cliWithInput = (input: string, args: string[]) => {
  const quote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;
  return runCommand([
    "sh",
    "-c",
    `printf %s ${quote(input)} | ${[...cliCommand(RUNTIME), ...args].map(quote).join(" ")}`,
  ]);
};

describe(`--tls-self-signed and --tls-fingerprint on ${RUNTIME}`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());
  const dir = mkdtempSync(join(tmpdir(), "echogate-self-signed-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function selfSignedServer(args: string[]): Promise<ChildServer & { fingerprint: string }> {
    const server = resources.child(await startCliServer(RUNTIME, [...args, "--port", "0", "--tls-self-signed"]));
    const fingerprint = FINGERPRINT.exec(server.stdout())?.[1] ?? /"fingerprint":"([^"]+)"/.exec(server.stdout())?.[1];
    expect(fingerprint, server.stdout()).toBeDefined();
    return { ...server, fingerprint: fingerprint! };
  }

  test("a client pinning the printed fingerprint gets its echo; a wrong one exits 1 saying so, sending nothing", async () => {
    const server = await selfSignedServer(["echo", "serve"]);
    expect(server.stdout().match(new RegExp(FINGERPRINT, "g"))).toHaveLength(1);
    const port = String(server.port);
    const good = await cli(argv`echo send 127.0.0.1 hi --port ${port} --tls-fingerprint ${server.fingerprint}`);
    expect(good, good.stderr).toMatchObject({ code: 0, stdout: "Client received: 'Echo=>hi'\n" });
    // As openssl prints it, lower case and all.
    const copied = `sha256 Fingerprint=${server.fingerprint.toLowerCase()}`;
    const again = await cli(["echo", "send", "localhost", "hi", "--port", port, "--tls-fingerprint", copied]);
    expect(again, again.stderr).toMatchObject({ code: 0, stdout: "Client received: 'Echo=>hi'\n" });

    const wrong = other(server.fingerprint);
    const bad = await cli(["echo", "send", "127.0.0.1", "hi", "--port", port, "--tls-fingerprint", wrong]);
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toBe(
      `echogate: TLS: the server's certificate fingerprint is ${server.fingerprint}, expected ${wrong}\n`,
    );
  });

  test.skipIf(opensslMissing)(
    "openssl reads the served certificate: its SANs, its fingerprint, its own signature",
    async () => {
      const server = await selfSignedServer(["echo", "serve"]);
      const served = execFileSync("openssl", ["s_client", "-connect", `127.0.0.1:${server.port}`, "-showcerts"], {
        input: "",
        stdio: ["pipe", "pipe", "ignore"],
      }).toString();
      const cert = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----\n/.exec(served)?.[0];
      expect(cert, served).toBeDefined();
      const file = join(dir, "served.crt");
      writeFileSync(file, cert!);
      const openssl = (args: string[]) =>
        execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] }).toString();
      const textForm = openssl(["x509", "-in", file, "-noout", "-text"]);
      expect(textForm).toMatch(/Version: 3 \(0x2\)/);
      expect(textForm).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
      expect(textForm).toMatch(/NIST CURVE: P-256/);
      expect(textForm).toMatch(/Subject: CN ?= ?echogate self-signed/);
      const sans = /Subject Alternative Name:\s*\n\s*(.*)\n/.exec(textForm)?.[1]?.split(", ").sort();
      expect(sans).toEqual(["DNS:localhost", "IP Address:0:0:0:0:0:0:0:1", "IP Address:127.0.0.1"]);
      expect(textForm).toMatch(/CA:FALSE/);
      expect(textForm).toMatch(/TLS Web Server Authentication/);
      expect(openssl(["x509", "-in", file, "-noout", "-fingerprint", "-sha256"]).trim().toUpperCase())
        .toBe(`SHA256 FINGERPRINT=${server.fingerprint}`);
      expect(openssl(["verify", "-purpose", "sslserver", "-CAfile", file, file]).trim()).toBe(`${file}: OK`);
    },
  );

  test("the library: a made certificate serves TLS, and the pinned client gets through or a TlsFingerprintError", async () => {
    const made = await createSelfSignedTls({ hosts: ["gate.example"] });
    expect(await certificateFingerprint(made.cert)).toBe(made.fingerprint);
    const server = resources.add(await serveEcho({ transport, port: 0, tls: { cert: made.cert, key: made.key } }));
    const port = portOf(server);
    const replies = await sendEcho({
      transport,
      hostname: "127.0.0.1",
      port,
      messages: ["pinned"],
      tls: { fingerprint: made.fingerprint.toLowerCase() },
    });
    expect(replies.map(text)).toEqual(["Echo=>pinned"]);
    const refused = await sendEcho({
      transport,
      hostname: "127.0.0.1",
      port,
      messages: ["pinned"],
      tls: { fingerprint: other(made.fingerprint) },
    }).then(() => undefined, (error: unknown) => error);
    expect(refused).toBeInstanceOf(TlsFingerprintError);
    expect((refused as TlsFingerprintError).actual).toBe(made.fingerprint);
  });

  test("SIGHUP keeps the certificate (and the server): the same fingerprint still gets through", async () => {
    const server = await selfSignedServer(["echo", "serve"]);
    globalThis.process.kill(server.process.pid!, "SIGHUP");
    const args = ["echo", "send", "127.0.0.1", "hi", "--port", String(server.port)];
    const after = await cli([...args, "--tls-fingerprint", server.fingerprint]);
    expect(after, after.stderr).toMatchObject({ code: 0, stdout: "Client received: 'Echo=>hi'\n" });
    expect(server.process.exitCode).toBeNull();
    expect(server.stdout().match(new RegExp(FINGERPRINT, "g"))).toHaveLength(1);
  });

  test("the gate too: gate knock pins the gate's certificate", async () => {
    const server = await selfSignedServer(["gate", "serve", "--json"]);
    const knock = await cli(
      argv`gate knock 127.0.0.1 --port ${server.port} --delay 0 --tls-fingerprint ${server.fingerprint}`,
    );
    expect(knock, knock.stderr).toMatchObject({ code: 0 });
    expect(knock.stdout).toContain(WELCOME);
    expect(JSON.parse(server.stdout().split("\n")[0]!)).toMatchObject({
      event: "tls-self-signed",
      fingerprint: server.fingerprint,
    });
  });

  test("with --workers every worker serves the supervisor's one certificate", async () => {
    const server = await selfSignedServer(["echo", "serve", "--workers", "2"]);
    expect(server.stdout().match(new RegExp(FINGERPRINT, "g"))).toHaveLength(1);
    // "listening" comes once every worker listens; the kernel (or node:cluster) spreads these over both.
    const tls = { fingerprint: server.fingerprint };
    for (let i = 0; i < 6; i++) {
      const [reply] = await sendEcho({ transport, hostname: "127.0.0.1", port: server.port, messages: [`w${i}`], tls });
      expect(text(reply!)).toBe(`Echo=>w${i}`);
    }
  });

  test("bad input: one line and exit 2", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["echo", "serve", "--port", "0", "--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
        /^echogate: Option "--tls-self-signed" does not go with --tls-cert\/--tls-key/,
      ],
      [
        ["echo", "send", "--port", "1", "--tls-fingerprint", "AB:CD"],
        /^echogate: Invalid value for "--tls-fingerprint": "AB:CD" is not a SHA-256 fingerprint/,
      ],
      [
        ["echo", "send", "--port", "1", "--tls-fingerprint", "00".repeat(32), "--insecure"],
        /^echogate: Option "--insecure" does not go with --tls-fingerprint/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(message);
    }
  });
});

describe(`echo send - (messages from standard input) on ${RUNTIME}`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());

  test("three lines piped in give three replies, each as it came, and exit 0 at end of input", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const result = await cliWithInput(
      "one\ntwo\r\n\nthree",
      argv`echo send 127.0.0.1 - --port ${portOf(server)}`,
    );
    expect(result, result.stderr).toMatchObject({
      code: 0,
      stdout: "Client received: 'Echo=>one'\nClient received: 'Echo=>two'\nClient received: 'Echo=>three'\n",
    });
  });

  test("interactive: each reply is printed before the next line is typed", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const command = [...cliCommand(RUNTIME), "echo", "send", "127.0.0.1", "-", "--port", String(portOf(server))];
    const child = spawn(command[0]!, command.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    try {
      child.stdin.write("first\n");
      await waitUntil(() => out.includes("'Echo=>first'"), { timeoutMs: 15_000, what: `the first reply (${err})` });
      child.stdin.write("second\n");
      await waitUntil(() => out.includes("'Echo=>second'"), { timeoutMs: 15_000, what: `the second reply (${err})` });
      child.stdin.end();
      expect(await deadline(exited, 15_000, "the client to exit"), err).toBe(0);
      expect(out).toBe("Client received: 'Echo=>first'\nClient received: 'Echo=>second'\n");
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("over a unix socket, and over TLS pinned to a self-signed certificate", async () => {
    const path = tempSocketPath("stdin");
    const unix = await serveEcho({ transport, path });
    const viaUnix = await cliWithInput("a\nb\nc\n", ["echo", "send", "--unix", path, "-"]).finally(() => unix.close());
    expect(viaUnix, viaUnix.stderr).toMatchObject({
      code: 0,
      stdout: "Client received: 'Echo=>a'\nClient received: 'Echo=>b'\nClient received: 'Echo=>c'\n",
    });
    const made = await createSelfSignedTls();
    const server = resources.add(await serveEcho({ transport, port: 0, tls: { cert: made.cert, key: made.key } }));
    const args = argv`echo send 127.0.0.1 - --port ${portOf(server)} --tls-fingerprint ${made.fingerprint}`;
    const viaTls = await cliWithInput("x\ny\nz\n", args);
    expect(viaTls, viaTls.stderr).toMatchObject({
      code: 0,
      stdout: "Client received: 'Echo=>x'\nClient received: 'Echo=>y'\nClient received: 'Echo=>z'\n",
    });
  });

  test('"-" with other messages or with --udp: one line and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [
        ["echo", "send", "localhost", "a", "-", "--port", "1"],
        /^echogate: "-" \(messages from standard input\) must be the only message/,
      ],
      [
        ["echo", "send", "-", "--udp", "--port", "1"],
        /^echogate: "-" \(messages from standard input\) does not apply with --udp/,
      ],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(message);
    }
  });
});
