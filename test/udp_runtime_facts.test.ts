// The runtime facts the datagram adapters are built on (../shared/NOTES-wave2.md, UDP), each
// checked in a child process of the runtime concerned.

import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, runCommand } from "./_utils.ts";

const DENO = `${ROOT}node_modules/.bin/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;
const dir = mkdtempSync(join(tmpdir(), "echogate-udp-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

describe("UDP facts of the runtimes", () => {
  test("Deno.listenDatagram exists only with --unstable-net; Deno's node:dgram works without a flag", async () => {
    const path = script(
      "deno_facts.ts",
      `import dgram from "node:dgram";
const g = globalThis as unknown as { Deno: { listenDatagram?: unknown } };
const socket = dgram.createSocket("udp4");
socket.on("message", (m) => { console.log(typeof g.Deno.listenDatagram, String(m)); socket.close(); });
socket.bind(0, "127.0.0.1", () => socket.send("dgram ok", socket.address().port, "127.0.0.1"));
`,
    );
    const plain = await runCommand([DENO, "run", "-A", path]);
    expect(plain.stdout).toBe("undefined dgram ok\n");
    const flagged = await runCommand([DENO, "run", "-A", "--unstable-net", path]);
    expect(flagged.stdout).toBe("function dgram ok\n");
  });

  test("Bun: an ICMP port unreachable without an error handler ends the process; with one it does not", async () => {
    const source = (withHandler: boolean) =>
      `const g = globalThis as unknown as { Bun: { udpSocket(o: unknown): Promise<{ send(b: string, p: number, h: string): boolean; close(): void }> } };
const closed = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const port = (closed as unknown as { port: number }).port;
closed.close();
const socket = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data() {}${
        withHandler ? ", error(e: Error & { code?: string }) { console.log('handled', e.code); }" : ""
      } } });
socket.send("x", port, "127.0.0.1"); // nothing listens there: ICMP port unreachable
setTimeout(() => { console.log("alive"); socket.close(); }, 300);
`;
    const without = await runCommand([BUN, script("bun_no_handler.ts", source(false))]);
    expect(without.code).toBe(1);
    expect(without.stdout).not.toContain("alive");
    expect(without.stderr).toContain("ECONNREFUSED");
    const handled = await runCommand([BUN, script("bun_handler.ts", source(true))]);
    expect(handled.code).toBe(0);
    expect(handled.stdout).toBe("handled ECONNREFUSED\nalive\n");
  });

  test("Bun: an ICMP error is left pending for the next send(), which throws it unsent; it is reported from the error queue, and by a receive too", async () => {
    const path = script(
      "bun_icmp_pending.ts",
      `const g = globalThis as unknown as { Bun: { udpSocket(o: unknown): Promise<{ port: number; send(b: string, p: number, h: string): boolean; close(): void }> } };
const closed = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
const port = closed.port;
closed.close();
const seen: string[] = [];
const sink = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data(_s: unknown, b: Uint8Array) { seen.push(\`received \${new TextDecoder().decode(b)}\`); } } });
// deno-lint-ignore prefer-const
let socket: { port: number; send(b: string, p: number, h: string): boolean; close(): void };
socket = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data() { socket.send("x", port, "127.0.0.1"); }, error(e: Error & { code?: string; errqueue?: boolean }) { seen.push(\`error \${e.code}\${e.errqueue ? " errqueue" : ""}\`); } } });
const wait = () => new Promise((resolve) => setTimeout(resolve, 200));
// Nothing listens there: ICMP port unreachable, pending on the socket at once (loopback).
socket.send("x", port, "127.0.0.1");
try { socket.send("a", sink.port, "127.0.0.1"); seen.push("sent a"); } catch (e) { seen.push(\`send a threw \${(e as { code?: string }).code}\`); }
seen.push(\`sent a again: \${socket.send("a", sink.port, "127.0.0.1")}\`);
await wait();
// Each step's events, sorted: the two sockets' events may come in either order.
console.log(seen.splice(0).sort().join(", "));
// Answering a datagram to the closed port, as a server does: the receive loop meets it too.
sink.send("ping", socket.port, "127.0.0.1");
await wait();
console.log(seen.splice(0).sort().join(", "));
socket.close();
sink.close();
`,
    );
    const { stdout } = await runCommand([BUN, path]);
    expect(stdout.split("\n")).toEqual([
      "error ECONNREFUSED errqueue, received a, send a threw ECONNREFUSED, sent a again: true",
      "error ECONNREFUSED, error ECONNREFUSED errqueue",
      "",
    ]);
  });

  test("Bun: send() takes IP addresses only", async () => {
    const path = script(
      "bun_names.ts",
      `const g = globalThis as unknown as { Bun: { udpSocket(o: unknown): Promise<{ send(b: string, p: number, h: string): boolean; close(): void }> } };
const socket = await g.Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data() {}, error() {} } });
try { socket.send("x", 9, "localhost"); console.log("sent"); } catch (e) { console.log("threw", (e as Error).message); }
console.log("ip:", socket.send("x", 9, "127.0.0.1"));
socket.close();
`,
    );
    const { stdout } = await runCommand([BUN, path]);
    expect(stdout).toBe("threw Invalid address\nip: true\n");
  });
});
