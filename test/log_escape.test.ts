// Text a peer chose never reaches a log raw: a TLS server name, a client certificate's subject and
// the bytes of a refused PROXY header. In human lines a newline cannot forge a line
// ("Server connected by 6.6.6.6:1337") nor ESC reach the terminal: controls are written `\xHH`, as
// nginx does. In --json lines DEL, C1 controls and U+2028/U+2029 are escaped too (JSON.stringify
// leaves them raw).

import { describe, expect, test } from "vitest";
import { hasOpenssl, makeClientLeaf, usePki } from "./_pki.ts";
import { waitFor, waitUntil } from "./_wait.ts";
import { bytes, concat, readAll, readAtLeast, RUNTIME, text, transport } from "./_net.ts";
import { type ChildServer, runCommand, startCliServer } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

/** A forged log line, a terminal escape, a C1 control (NEL), U+2028 and a bidirectional override. */
const HOSTILE = "x\nServer connected by 6.6.6.6:1337 \u001b[31mred\u0085\u2028\u202e";
/** What the logs must not hold raw: controls other than the lines' own newlines, DEL, C1, U+2028/U+2029, bidi. */
// deno-lint-ignore no-control-regex
const RAW_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/;

async function startServer(args: string[]): Promise<ChildServer> {
  return resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", ...args]));
}

/** The first line of `server`'s standard output that holds `marker`, once it is there. */
function lineWith(server: ChildServer, marker: string): Promise<string> {
  return waitFor(
    () => server.stdout().split("\n").find((line) => line.includes(marker)),
    5000,
    `a line with ${marker}`,
  );
}

/** Checks a human log: the hostile text is on one line, escaped, and forged no line of its own. */
function expectHumanEscaped(server: ChildServer, line: string): void {
  expect(line).toContain("x\\x0AServer connected by 6.6.6.6:1337 \\x1B[31mred");
  expect(line).toContain("\\x85");
  expect(server.stdout()).not.toMatch(/^Server connected by 6\.6\.6\.6/m);
  expect(server.stdout()).not.toMatch(RAW_UNSAFE);
}

/** Checks a JSON log: nothing unsafe raw, C1 written `\u0085`, and the line still parses. */
function expectJsonEscaped(server: ChildServer, line: string): unknown {
  expect(server.stdout()).not.toMatch(RAW_UNSAFE);
  expect(line).toContain("\\u0085");
  return JSON.parse(line);
}

const opensslMissing = !hasOpenssl();

describe.skipIf(opensslMissing)(`peer text in the logs on ${RUNTIME}`, () => {
  const pki = usePki();
  const serverPair = () => ["--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey];

  // Deno's TLS (rustls) refuses a server name that is not a host name: none reaches its logs.
  test.skipIf(RUNTIME === "deno")("a TLS server name (SNI) is escaped, in human and in JSON lines", async () => {
    const human = await startServer(serverPair());
    const json = await startServer(["--json", ...serverPair()]);
    for (const server of [human, json]) {
      // openssl sends any bytes as the server name; with its input empty it leaves after the handshake.
      await runCommand(["openssl", "s_client", "-connect", `127.0.0.1:${server.port}`, "-servername", HOSTILE]);
    }
    const line = await lineWith(human, "SNI ");
    expect(line).toMatch(/^Server connected by 127\.0\.0\.1:\d+ \(TLSv1\.3, SNI x\\x0AServer connected by 6\.6\.6\.6/);
    expectHumanEscaped(human, line);
    const event = expectJsonEscaped(json, await lineWith(json, '"event":"connect"')) as {
      tls: { servername: string };
    };
    // Node reports the name's bytes one character each (Latin-1), Bun decodes them as UTF-8.
    expect(event.tls.servername).toContain("x\nServer connected by 6.6.6.6:1337 \u001b[31mred");
  }, 30_000);

  test("a client certificate's subject is escaped, in human and in JSON lines", async () => {
    const leaf = makeClientLeaf(pki, `hostile-${RUNTIME}`, `/CN=${HOSTILE}`);
    const flags = [...serverPair(), "--tls-client-ca", pki.files.caCert];
    const human = await startServer(flags);
    const json = await startServer(["--json", ...flags]);
    for (const server of [human, json]) {
      const socket = resources.add(
        await transport.connect(
          { hostname: "127.0.0.1", port: server.port },
          { tls: { ca: pki.caCert, cert: leaf.cert, key: leaf.key } },
        ),
      );
      await socket.write(bytes("hi"));
      expect(text(await readAtLeast(socket, 8))).toBe("Echo=>hi");
    }
    const line = await lineWith(human, "client CN=");
    expect(line).toMatch(/^Server connected by 127\.0\.0\.1:\d+ \(TLS.*client CN=x\\x0AServer connected by 6\.6\.6\.6/);
    expectHumanEscaped(human, line);
    expect(line).toContain("\\u2028\\u202E)");
    const event = expectJsonEscaped(json, await lineWith(json, '"event":"connect"')) as {
      tls: { peerSubject: string };
    };
    expect(event.tls.peerSubject).toBe(`CN=${HOSTILE}`);
  }, 30_000);
});

describe(`a refused PROXY header in the logs on ${RUNTIME}`, () => {
  test("the byte of the header quoted in the reason is escaped, in human and in JSON lines", async () => {
    const human = await startServer(["--proxy-protocol"]);
    const json = await startServer(["--proxy-protocol", "--json"]);
    // The reason quotes the field up to the byte that cannot belong to an IPv4 address.
    const headers = [
      concat([bytes("PROXY TCP4 1"), new Uint8Array([0x1b])]),
      concat([bytes("PROXY TCP4 1"), new Uint8Array([0x85])]),
    ];
    for (const server of [human, json]) {
      for (const header of headers) {
        const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port }));
        await socket.write(header);
        expect(await readAll(socket).catch(() => new Uint8Array())).toHaveLength(0);
      }
    }
    await waitUntil(() => human.stdout().match(/Refused/g)?.length === 2, { timeoutMs: 5000, what: "two refusals" });
    expect(human.stdout()).toContain('bad PROXY header: v1: "1\\x1B" is not an IPv4 address');
    expect(human.stdout()).toContain('bad PROXY header: v1: "1\\x85" is not an IPv4 address');
    expect(human.stdout()).not.toMatch(RAW_UNSAFE);
    await waitUntil(() => json.stdout().match(/"refused"/g)?.length === 2, { timeoutMs: 5000, what: "two refusals" });
    expect(json.stdout()).not.toMatch(RAW_UNSAFE);
    expect(json.stdout()).toContain('v1: \\"1\\u001b\\" is not an IPv4 address');
    expect(json.stdout()).toContain('v1: \\"1\\u0085\\" is not an IPv4 address');
  }, 30_000);
});
