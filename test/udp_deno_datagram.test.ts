// The Deno.listenDatagram adapter (adapters/_deno_datagram.ts) on real sockets: Deno.listenDatagram
// exists only under --unstable-net, so each case runs in a child `deno run -A --unstable-net`.

import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, runCommand } from "./_utils.ts";

const DENO = `${ROOT}node_modules/.bin/deno`;
const dir = mkdtempSync(join(tmpdir(), "echogate-deno-datagram-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// What every case's script starts with: bind() on Deno.listenDatagram, a deadline-bound wait.
const PRELUDE = `import { bindDenoDatagram, type ListenDatagram } from "${ROOT}adapters/_deno_datagram.ts";
import type { DatagramHandlers, DatagramSocket } from "${ROOT}src/mod.ts";
const listen = (Deno as unknown as { listenDatagram: ListenDatagram }).listenDatagram;
const bind = (handlers: DatagramHandlers) =>
  bindDenoDatagram(listen, { hostname: "127.0.0.1", port: 0 }, handlers, Deno.errors.AddrInUse);
const portOf = (socket: DatagramSocket) => (socket.addr as { port: number }).port;
const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
async function until(done: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
`;

/** Runs `body` (after the prelude) under `deno run -A --unstable-net` and returns what it printed as JSON. */
async function inDeno(name: string, body: string): Promise<unknown> {
  const path = join(dir, `${name}.ts`);
  writeFileSync(path, PRELUDE + body);
  const result = await runCommand([DENO, "run", "-A", "--unstable-net", path]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout);
}

describe("Deno.listenDatagram adapter", () => {
  test("handlers that copy what they keep (lent) get a view into the receive buffer; others keep theirs", async () => {
    const result = await inDeno(
      "lent",
      `const firstSeenLater: Record<string, string> = {};
for (const lent of [false, true]) {
  const got: Uint8Array[] = [];
  const server = await bind({ lent, onMessage: (b) => void got.push(b), onError() {} });
  const client = await bind({ onMessage() {}, onError() {} });
  client.send(encode("first"), "127.0.0.1", portOf(server));
  await until(() => got.length === 1, "the first datagram");
  client.send(encode("later"), "127.0.0.1", portOf(server));
  await until(() => got.length === 2, "the second datagram");
  firstSeenLater[lent ? "lent" : "kept"] = decode(got[0]!);
  await server.close();
  await client.close();
}
console.log(JSON.stringify(firstSeenLater));
`,
    );
    // Kept: the first datagram's bytes are its own. Lent: the next receive wrote over them.
    expect(result).toEqual({ kept: "first", lent: "later" });
  });

  test("a lent datagram lands right behind the handlers' reply prefix, and the echo answers with that one view", async () => {
    const result = await inDeno(
      "reply_prefix",
      `import { serveDatagramEcho, type Transport } from "${ROOT}src/mod.ts";
// What the adapter hands over: the framed view, and whether it shares the datagram's buffer.
const framedSeen: string[] = [];
const sharesBuffer: boolean[] = [];
const adapter = await bind({
  lent: true,
  replyPrefix: encode("Echo=>"),
  onMessage(b, _hostname, _port, framed) {
    framedSeen.push(framed === undefined ? "none" : decode(framed));
    sharesBuffer.push(framed?.buffer === b.buffer && framed.byteOffset + 6 === b.byteOffset);
  },
  onError() {},
});
// The echo core on this adapter: is each answer a view of the buffer the datagram came in?
let receivedIn: ArrayBufferLike | undefined;
const sameBuffer: boolean[] = [];
const transport = {
  runtime: "deno",
  bindDatagram: async (endpoint, handlers) => {
    const socket = await bindDenoDatagram(listen, endpoint, {
      ...handlers,
      onMessage(b, hostname, port, framed) {
        receivedIn = b.buffer;
        handlers.onMessage(b, hostname, port, framed);
      },
    }, Deno.errors.AddrInUse);
    const send = socket.send.bind(socket);
    socket.send = (bytes, hostname, port) => (sameBuffer.push(bytes.buffer === receivedIn), send(bytes, hostname, port));
    return socket;
  },
} as Transport;
const echo = await serveDatagramEcho({ transport, port: 0, limits: false });
const echoes: string[] = [];
const client = await bind({ onMessage: (b) => void echoes.push(decode(b)), onError() {} });
for (const [i, message] of ["one", "two", ""].entries()) {
  client.send(encode(message), "127.0.0.1", portOf(adapter));
  client.send(encode(message), "127.0.0.1", (echo.addr as { port: number }).port);
  await until(() => framedSeen.length > i && echoes.length > i, "the datagram and its echo");
}
for (const s of [adapter, client, echo]) await s.close();
console.log(JSON.stringify({ framedSeen, sharesBuffer, echoes, sameBuffer }));
`,
    );
    expect(result).toEqual({
      framedSeen: ["Echo=>one", "Echo=>two", "Echo=>"],
      sharesBuffer: [true, true, true],
      echoes: ["Echo=>one", "Echo=>two", "Echo=>"],
      sameBuffer: [true, true, true],
    });
  });

  test("a failed send, the answer's or a later one's, is reported with its peer; a throwing handler stops nothing", async () => {
    const result = await inDeno(
      "send_errors",
      `const errors: string[] = [];
const echoes: string[] = [];
let server: DatagramSocket | undefined;
server = await bind({
  lent: true,
  onMessage(b, hostname, port) {
    // The answer (the first send during onMessage) goes to port 0, which Linux refuses (EINVAL);
    // a second send echoes to the sender.
    server!.send(b, hostname, 0);
    server!.send(b, hostname, port);
  },
  onError(error, hostname, port) {
    errors.push(\`\${(error as { code?: string }).code} \${hostname}:\${port}\`);
    throw new Error("a handler's own bug");
  },
});
const client = await bind({ onMessage: (b) => void echoes.push(decode(b)), onError() {} });
for (const [i, message] of ["a", "b", "c"].entries()) {
  client.send(encode(message), "127.0.0.1", portOf(server));
  await until(() => echoes.length === i + 1 && errors.length === i + 1, "an echo and an error");
}
// A send outside onMessage fails the same way, reported the same way.
server.send(encode("x"), "127.0.0.1", 0);
await until(() => errors.length === 4, "the fourth error");
client.send(encode("d"), "127.0.0.1", portOf(server));
await until(() => echoes.length === 4 && errors.length === 5, "an echo after all that");
await server.close();
await client.close();
console.log(JSON.stringify({ echoes: echoes.sort(), errors }));
`,
    );
    expect(result).toEqual({
      echoes: ["a", "b", "c", "d"],
      errors: Array(5).fill("EINVAL 127.0.0.1:0"),
    });
  });

  test("at most 1024 sends are in flight: past them send() refuses, and onDrain says when to go on", async () => {
    const result = await inDeno(
      "in_flight",
      `let received = 0;
const sink = await bind({ onMessage: () => void received++, onError() {} });
const socket = await bind({ onMessage() {}, onError() {} });
let taken = 0;
for (let i = 0; i < 1500; i++) if (socket.send(encode("x"), "127.0.0.1", portOf(sink))) taken++;
let failedTaken = 0;
const failing = await bind({ onMessage() {}, onError() {} });
for (let i = 0; i < 1500; i++) if (failing.send(encode("x"), "127.0.0.1", 0)) failedTaken++;
let timer: ReturnType<typeof setTimeout> | undefined;
const drained = await Promise.race([
  Promise.all([socket, failing].map((s) => new Promise<boolean>((resolve) => s.onDrain(() => resolve(true))))),
  new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 5000)),
]);
clearTimeout(timer);
const afterDrain = socket.send(encode("x"), "127.0.0.1", portOf(sink)) && failing.send(encode("x"), "127.0.0.1", 0);
for (const s of [sink, socket, failing]) await s.close();
console.log(JSON.stringify({ taken, failedTaken, drained, afterDrain }));
`,
    );
    // Failed sends are no longer in flight either: the socket sends again after them.
    expect(result).toEqual({ taken: 1024, failedTaken: 1024, drained: [true, true], afterDrain: true });
  });
});
