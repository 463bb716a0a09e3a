// The TLS server policy every runtime keeps (docs/tls.md): Mozilla's "intermediate" cipher suites
// in the server's order, no client-initiated renegotiation, and a refused client certificate at
// the gate penalised for its source. Driven by openssl s_client and the runtimes' own clients,
// against servers on node, bun and deno.

import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { knockGate, serveEcho, serveGate, type TlsServerOptions } from "../src/mod.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { portOf, readAll, RUNTIME, transport } from "./_net.ts";
import { runCommand } from "./_child.ts";
import { cleanup, recordingLogger } from "./_utils.ts";

const opensslMissing = !hasOpenssl();

// On Deno plain TLS runs on its node:tls by default and on Deno.listenTls with
// `stalledHandshakes: "hold"`: both are checked. Elsewhere "hold" changes nothing.
const STALLED_MODES: ("close" | "hold")[] = RUNTIME === "deno" ? ["close", "hold"] : ["close"];

/** The TLS 1.2 suite `openssl s_client` agreed on with the server when offering `ciphers`, or undefined. */
async function negotiatedCipher(port: number, ciphers: string): Promise<string | undefined> {
  const { stdout } = await runCommand(
    ["openssl", "s_client", "-tls1_2", "-cipher", ciphers, "-connect", `127.0.0.1:${port}`, "-servername", "localhost"],
    { ms: 10_000 },
  );
  const cipher = /Cipher is (\S+)/.exec(stdout)?.[1];
  return cipher === undefined || cipher === "(NONE)" ? undefined : cipher;
}

for (const stalledMode of STALLED_MODES) {
  describe.skipIf(opensslMissing)(
    `TLS server policy on ${RUNTIME}${stalledMode === "hold" ? " (Deno.listenTls)" : ""}`,
    () => {
      const pki = usePki();
      const resources = cleanup();
      afterEach(() => resources.run());

      const ecdsaTls = (): TlsServerOptions => ({
        cert: pki.serverCert,
        key: pki.serverKey,
        stalledHandshakes: stalledMode,
      });
      /** A self-signed RSA server certificate (the test PKI is EC), for the RSA suites. */
      const rsaTls = (): TlsServerOptions => {
        const [cert, key] = [join(pki.dir, "rsa.crt"), join(pki.dir, "rsa.key")];
        execFileSync("openssl", [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          key,
          "-out",
          cert,
          "-days",
          "2",
          "-subj",
          "/CN=localhost",
          "-addext",
          "subjectAltName=DNS:localhost,IP:127.0.0.1",
          "-addext",
          "basicConstraints=critical,CA:FALSE",
        ], { stdio: "ignore" });
        return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8"), stalledHandshakes: stalledMode };
      };

      test("TLS 1.2 offers Mozilla's intermediate suites only: no CBC, CCM, ARIA or static RSA", async () => {
        const ecdsa = resources.add(await serveEcho({ transport, port: 0, tls: ecdsaTls() }));
        const rsa = resources.add(await serveEcho({ transport, port: 0, tls: rsaTls() }));
        const offered = async (port: number, suites: string[]) =>
          Object.fromEntries(await Promise.all(suites.map(async (s) => [s, await negotiatedCipher(port, s)])));
        const refusedEcdsa = [
          "ECDHE-ECDSA-AES128-SHA",
          "ECDHE-ECDSA-AES256-SHA384",
          "ECDHE-ECDSA-AES128-CCM",
          "ECDHE-ECDSA-ARIA128-GCM-SHA256",
        ];
        const refusedRsa = ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"];
        expect(await offered(portOf(ecdsa), refusedEcdsa)).toEqual(
          Object.fromEntries(refusedEcdsa.map((s) => [s, undefined])),
        );
        expect(await offered(portOf(rsa), refusedRsa)).toEqual(
          Object.fromEntries(refusedRsa.map((s) => [s, undefined])),
        );
        // Every ECDHE suite of the profile is served (DHE needs DH parameters no runtime has by default).
        const servedEcdsa = [
          "ECDHE-ECDSA-AES128-GCM-SHA256",
          "ECDHE-ECDSA-AES256-GCM-SHA384",
          "ECDHE-ECDSA-CHACHA20-POLY1305",
        ];
        const servedRsa = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"];
        expect(await offered(portOf(ecdsa), servedEcdsa)).toEqual(Object.fromEntries(servedEcdsa.map((s) => [s, s])));
        expect(await offered(portOf(rsa), servedRsa)).toEqual(Object.fromEntries(servedRsa.map((s) => [s, s])));
      });

      test("the server's order of preference decides, not the client's", async () => {
        const server = resources.add(await serveEcho({ transport, port: 0, tls: ecdsaTls() }));
        const port = portOf(server);
        // Deno's rustls takes the client's first suite it supports, and neither Deno.listenTls nor
        // its node:tls has an option to change that (docs/tls.md).
        const expected = (clientFirst: string, serverFirst: string) => RUNTIME === "deno" ? clientFirst : serverFirst;
        expect(await negotiatedCipher(port, "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384")).toBe(
          expected("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-GCM-SHA384"),
        );
        expect(await negotiatedCipher(port, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")).toBe(
          expected("ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        );
      });

      test("a client's first TLS 1.2 renegotiation ends the connection", async () => {
        const server = resources.add(await serveEcho({ transport, port: 0, tls: ecdsaTls() }));
        // Not -quiet: s_client renegotiates on a line "R" only when its commands are on.
        const client: ChildProcessWithoutNullStreams = spawn(
          "openssl",
          ["s_client", "-tls1_2", "-connect", `127.0.0.1:${portOf(server)}`, "-servername", "localhost"],
          { stdio: ["pipe", "pipe", "pipe"] },
        );
        let out = "";
        let err = "";
        client.stdout.on("data", (chunk) => (out += chunk));
        client.stderr.on("data", (chunk) => (err += chunk));
        client.stdin.on("error", () => {}); // written after it left
        let closed = false;
        client.once("close", () => (closed = true));
        resources.add({ close: () => void client.kill("SIGKILL") });
        client.stdin.write("hi\n");
        await waitUntil(() => out.includes("Echo=>hi"), { timeoutMs: 10_000, what: "the first echo" });
        client.stdin.write("R\n");
        await waitUntil(() => err.includes("RENEGOTIATING"), { timeoutMs: 10_000, what: "s_client to renegotiate" });
        client.stdin.write("after\n");
        // Either the connection ends, or (renegotiation allowed) the next line comes back.
        const outcome = await waitFor(
          () => (out.includes("Echo=>after") ? "echoed" : closed ? "ended" : undefined),
          10_000,
          "the connection to end or to echo",
        );
        expect(outcome).toBe("ended");
      });
    },
  );
}

describe.skipIf(opensslMissing)(`mutual TLS at the gate on ${RUNTIME}`, () => {
  const pki = usePki();
  const resources = cleanup();
  afterEach(() => resources.run());

  test("a client certificate from another CA, or none, is logged with its source and penalised", async () => {
    const logger = recordingLogger();
    // Two failed handshakes (8 s each) put the source over the 15 s at which it is refused.
    const gate = resources.add(
      await serveGate({
        transport,
        port: 0,
        logger,
        tokens: ["t"],
        penalties: { exempt: [], noauthSeconds: 8 },
        tls: { cert: pki.serverCert, key: pki.serverKey, clientCa: pki.caCert },
      }),
    );
    const port = portOf(gate);
    const penalties = () => logger.events.filter((e) => e.event === "penalty");
    const tryWith = async (cert?: { cert: string; key: string }) => {
      // TLS 1.3 finishes the client's side before the server checks its certificate: the refusal
      // shows as a connect error or as the connection closing unanswered.
      const socket = await transport.connect({ hostname: "127.0.0.1", port }, { tls: { ca: pki.caCert, ...cert } })
        .catch(() => undefined);
      if (socket) await readAll(socket).catch(() => undefined).finally(() => socket.close());
    };
    // The other CA's certificate first: Node refused it after its handshake, when the address was gone.
    await tryWith({ cert: pki.otherClientCert, key: pki.otherClientKey });
    await waitUntil(() => penalties().length === 1, { timeoutMs: 5000, what: "the first penalty" });
    const failure = await logger.waitForEvent("tls-handshake-failed");
    expect(failure).toMatchObject({ remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/), reason: "failed" });
    await tryWith();
    await waitUntil(() => penalties().length === 2, { timeoutMs: 5000, what: "the second penalty" });
    expect(penalties()).toEqual([
      expect.objectContaining({ remote: expect.stringMatching(/^127\.0\.0\.1:/), kind: "noauth" }),
      expect.objectContaining({ remote: expect.stringMatching(/^127\.0\.0\.1:/), kind: "noauth" }),
    ]);
    // The source is now refused, even with a good certificate.
    const knock = await knockGate({
      transport,
      hostname: "127.0.0.1",
      port,
      token: "t",
      delayMs: 0,
      tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
    }).catch((error: Error) => ({ welcomed: false, reply: error.message }));
    expect(knock.reply).not.toBe(WELCOME);
    await waitFor(
      () => logger.events.find((e) => e.event === "refused" && e.reason === "penalised"),
      5000,
      "the refusal logged",
    );
  });
});
