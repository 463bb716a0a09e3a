// The TLS flags of the CLI: bad input, every client against every runtime's TLS server (3x3 over
// the three runs), SIGHUP reload, the gate forwarding over TLS, and foreign clients (openssl
// s_client, ncat --ssl).

import { execFileSync } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { sendEcho, serveEcho, type StreamSocket } from "../src/mod.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { expectSighupReload, hasOpenssl, usePki } from "./_pki.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { portOf, RUNTIME, RUNTIMES, text, transport } from "./_net.ts";
import { argv, type ChildServer, runCommand, runEchogate, startChild, startCliServer } from "./_child.ts";
import { fdCount } from "./_proc.ts";
import { cleanup } from "./_utils.ts";

const opensslMissing = !hasOpenssl();
if (opensslMissing) console.log("skipping the TLS CLI tests: openssl is not installed (CI installs it)");
function has(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const ncatMissing = !has("ncat");
if (ncatMissing) console.log("skipping the ncat --ssl test: ncat is not installed (CI installs it)");

describe.skipIf(opensslMissing)(`TLS CLI on ${RUNTIME}`, () => {
  const pki = usePki();
  const resources = cleanup();
  afterEach(() => resources.run());
  const cli = (args: string[]) => runEchogate(args);
  const serverFlags = () => ["--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey];

  test("bad TLS input is one line naming the flag and the file, exit 2", async () => {
    const f = pki.files;
    const cases: [string[], RegExp][] = [
      [["--tls-cert", f.serverCert], /^echogate: Option "--tls-cert" needs --tls-key\n/],
      [
        ["--tls-cert", f.serverCert, "--tls-key", `${pki.dir}/missing.key`],
        /"--tls-key": cannot read ".*missing\.key"/,
      ],
      [
        ["--tls-cert", f.serverCert, "--tls-key", f.clientKey],
        /"--tls-key": ".*client\.key" does not go with "--tls-cert" ".*server\.crt"/,
      ],
      [["--tls-cert", f.serverKey, "--tls-key", f.serverKey], /"--tls-cert": ".*server\.key" is not a PEM certificate/],
      [["--tls-cert", f.serverCert, "--tls-key", f.serverCert], /"--tls-key": ".*server\.crt" is not a PEM key/],
      [[...serverFlags(), "--tls-client-ca", `${pki.dir}/nope.crt`], /"--tls-client-ca": cannot read ".*nope\.crt"/],
    ];
    for (const [flags, message] of cases) {
      const { code, stderr } = await cli(["echo", "serve", "--port", "0", ...flags]);
      expect(code, stderr).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    const knock = await cli(["gate", "knock", "--port", "1", "--ca", `${pki.dir}/nope.crt`]);
    expect(knock.code).toBe(2);
    expect(knock.stderr).toMatch(/"--ca": cannot read/);
  });

  for (const serverRuntime of RUNTIMES) {
    describe(`${RUNTIME} clients against ${serverRuntime}'s TLS servers`, () => {
      let echo: ChildServer;
      let gate: ChildServer;
      let mutual: ChildServer;
      beforeAll(async () => {
        [echo, gate, mutual] = await Promise.all([
          startCliServer(serverRuntime, ["echo", "serve", "--port", "0", "--json", ...serverFlags()]),
          startCliServer(serverRuntime, ["gate", "serve", "--port", "0", "--token", "t0k", ...serverFlags()]),
          startCliServer(serverRuntime, [
            "gate",
            "serve",
            "--port",
            "0",
            "--token",
            "m",
            "--json",
            ...serverFlags(),
            "--tls-client-ca",
            pki.files.caCert,
          ]),
        ]);
      });
      afterAll(async () => {
        await Promise.all([echo?.stop(), gate?.stop(), mutual?.stop()]);
      });

      test("mutual TLS: a knock with a client certificate from the CA is welcomed; without one it is not", async () => {
        const knock = (extra: string[]) =>
          cli([
            ...argv`gate knock localhost --port ${mutual.port} --token m --delay 0 --ca ${pki.files.caCert}`,
            ...extra,
          ]);
        const welcomed = await knock(["--tls-cert", pki.files.clientCert, "--tls-key", pki.files.clientKey]);
        expect(welcomed.stdout, welcomed.stderr).toBe(`${WELCOME}\n`);
        expect(welcomed.code).toBe(0);
        const line = await waitFor(
          () => mutual.stdout().split("\n").find((l) => l.includes('"connect"')),
          5000,
          "the connect event",
        );
        expect(JSON.parse(line).tls.peerSubject).toContain("CN=echogate test client");
        const stranger = await knock(["--tls-cert", pki.files.otherClientCert, "--tls-key", pki.files.otherClientKey]);
        expect(stranger.code).not.toBe(0);
        expect(stranger.stdout).toBe("");
        const anonymous = await knock([]);
        expect(anonymous.code).not.toBe(0);
        expect(anonymous.stdout).toBe("");
      });

      test("echo send --tls --ca and gate knock --tls get their answers; the JSON connect event has a tls object", async () => {
        const send = await cli(argv`echo send localhost hi --port ${echo.port} --ca ${pki.files.caCert}`);
        expect(send.stderr).toBe("");
        expect(send.stdout).toBe("Client received: 'Echo=>hi'\n");
        const knock = await cli(
          argv`gate knock 127.0.0.1 --port ${gate.port} --token t0k --delay 0 --tls --ca ${pki.files.caCert}`,
        );
        expect(knock.stdout).toBe(`${WELCOME}\n`);
        expect(knock.code).toBe(0);
        const line = await waitFor(
          () => echo.stdout().split("\n").find((l) => l.includes('"connect"')),
          5000,
          "connect",
        );
        expect(JSON.parse(line).tls).toBeTypeOf("object");
      });

      test("without the CA the client refuses the server; --insecure goes through with a warning", async () => {
        const refused = await cli(["echo", "send", "127.0.0.1", "--port", String(echo.port), "--tls"]);
        expect(refused.code).not.toBe(0);
        expect(refused.stdout).toBe("");
        const named = (name: string) =>
          cli(argv`echo send 127.0.0.1 n --port ${echo.port} --ca ${pki.files.caCert} --servername ${name}`);
        expect((await named("localhost")).stdout).toBe("Client received: 'Echo=>n'\n");
        const misnamed = await named("wrong.example");
        expect(misnamed.code).not.toBe(0);
        expect(misnamed.stdout).toBe("");
        const insecure = await cli(["echo", "send", "127.0.0.1", "x", "--port", String(echo.port), "--insecure"]);
        expect(insecure.stdout).toBe("Client received: 'Echo=>x'\n");
        expect(insecure.stderr).toMatch(/warning: --insecure/);
      });
    });
  }

  test("SIGHUP re-reads the certificate: new connections get the new one; a bad file keeps the old", async () => {
    const cert = join(pki.dir, `live-${RUNTIME}.crt`);
    const key = join(pki.dir, `live-${RUNTIME}.key`);
    copyFileSync(pki.files.serverCert, cert);
    copyFileSync(pki.files.serverKey, key);
    const server = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--tls-cert", cert, "--tls-key", key]),
    );
    const trusts = (ca: string) =>
      sendEcho({ transport, hostname: "127.0.0.1", port: server.port, tls: { ca } }).then(() => true, () => false);
    await expectSighupReload(server, { cert, key }, pki, trusts);
  });

  test("gate serve --then tls://HOST:PORT --then-ca forwards welcomed connections over TLS", async () => {
    const upstream = resources.add(
      await serveEcho({ transport, port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } }),
    );
    const gate = resources.child(
      await startCliServer(
        RUNTIME,
        argv`gate serve --port 0 --token t --then tls://localhost:${portOf(upstream)} --then-ca ${pki.files.caCert}`,
      ),
    );
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: gate.port }));
    await socket.write(new TextEncoder().encode("t"));
    let got = "";
    while (!got.includes("Echo=>ping")) {
      const chunk = await socket.read();
      if (chunk === null) break;
      got += text(chunk);
      if (got === WELCOME) await socket.write(new TextEncoder().encode("ping"));
    }
    expect(got).toBe(`${WELCOME}Echo=>ping`);
  });

  /** A TLS echo server from the CLI and `count` connections that never start their handshake. */
  async function stalledHandshakes(flags: string[], count: number) {
    const server = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", ...flags]));
    const pid = server.process.pid!;
    const before = fdCount(pid);
    const stalled: StreamSocket[] = [];
    for (let i = 0; i < count; i++) {
      stalled.push(resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port })));
    }
    return { server, pid, before, stalled };
  }

  for (const mutual of [false, true]) {
    test(
      `300 connections stalled in the ${
        mutual ? "mutual-TLS " : ""
      }handshake are cut off: descriptors back to where they were, a healthy client served`,
      async () => {
        const { server, pid, before } = await stalledHandshakes([
          "--tls-handshake-timeout",
          "2",
          ...serverFlags(),
          ...(mutual ? ["--tls-client-ca", pki.files.caCert] : []),
        ], 300);
        const tls = mutual ? { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } : { ca: pki.caCert };
        const [reply] = await sendEcho({ transport, hostname: "127.0.0.1", port: server.port, tls });
        expect(text(reply!)).toBe("Echo=>Hello network world");
        await waitUntil(() => /TLS handshake timed out/.test(server.stdout()), {
          timeoutMs: 5000,
          what: "the timeout logged",
        });
        // One line for the burst (throttled), not 300.
        expect(server.stdout().match(/TLS handshake timed out/g)!.length).toBe(1);
        // The peers stay: the server itself must close them and free their descriptors.
        await waitUntil(() => fdCount(pid) <= before + 5, {
          timeoutMs: 10_000,
          what: `descriptors back near ${before}`,
        });
      },
    );
  }

  test.skipIf(RUNTIME !== "deno")(
    "--tls-stalled-handshakes hold on Deno: Deno.listenTls serves, and a stalled handshake's descriptor returns when its peer leaves",
    async () => {
      const { server, pid, before, stalled } = await stalledHandshakes(
        ["--json", "--tls-handshake-timeout", "1", "--tls-stalled-handshakes", "hold", ...serverFlags()],
        50,
      );
      const [reply] = await sendEcho({ transport, hostname: "localhost", port: server.port, tls: { ca: pki.caCert } });
      expect(text(reply!)).toBe("Echo=>Hello network world");
      await waitUntil(() => /"tls-handshake-failed"/.test(server.stdout()), {
        timeoutMs: 5000,
        what: "the timeout logged",
      });
      // Deno.listenTls: no protocol version in the connect event (Deno's node:tls names it).
      const connect = JSON.parse(server.stdout().split("\n").find((l) => l.includes('"connect"'))!);
      expect(connect.tls.version).toBeUndefined();
      // Held until the peers leave (docs/tls.md); then they are freed.
      expect(fdCount(pid)).toBeGreaterThanOrEqual(before + 50);
      for (const socket of stalled) socket.close();
      await waitUntil(() => fdCount(pid) <= before + 5, { timeoutMs: 10_000, what: `descriptors back near ${before}` });
    },
  );

  test("--tls-stalled-handshakes takes close or hold, and needs --tls-cert", async () => {
    const bad = await cli(["echo", "serve", "--port", "0", ...serverFlags(), "--tls-stalled-handshakes", "keep"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split("\n")[0]).toBe(
      `echogate: Invalid value for "--tls-stalled-handshakes": "keep" (use close or hold)`,
    );
    const alone = await cli(["echo", "serve", "--port", "0", "--tls-stalled-handshakes", "hold"]);
    expect(alone.code).toBe(2);
    expect(alone.stderr.split("\n")[0]).toBe(
      `echogate: Option "--tls-stalled-handshakes" needs --tls-cert and --tls-key`,
    );
  });

  test("openssl s_client talks to the TLS echo server", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--json", "--alpn", "echo,h2", ...serverFlags()]),
    );
    const child = startChild([
      "sh",
      "-c",
      `printf 'from openssl' | openssl s_client -quiet -connect 127.0.0.1:${server.port} -servername localhost ` +
      `-CAfile ${pki.files.caCert} -verify_return_error -alpn echo`,
    ]);
    resources.child(child);
    await waitUntil(() => /Echo=>from openssl/.test(child.stdout()), {
      timeoutMs: 10_000,
      what: "the echo via openssl",
    });
    // The session as the server logged it: ALPN agreed with openssl, and (where exposed) its SNI.
    // (Its output may reach us after openssl's echo: wait for the line rather than assume it.)
    const line = await waitFor(
      () => server.stdout().split("\n").find((l) => l.includes('"connect"')),
      5000,
      "the connect event",
    );
    const connect = JSON.parse(line);
    expect(connect.tls.alpn).toBe("echo");
    expect(connect.tls.servername).toBe("localhost");
  });

  test.skipIf(ncatMissing)("ncat --ssl talks to the TLS gate", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token", "n", ...serverFlags()]),
    );
    const { stdout } = await runCommand([
      "sh",
      "-c",
      `printf 'n' | ncat --ssl --ssl-verify --ssl-trustfile ${pki.files.caCert} localhost ${server.port}`,
    ]);
    expect(stdout).toBe(WELCOME);
  });
});
