// `--workers`: a worker's messages to its supervisor travel on a channel of their own, which no
// byte a peer sends can reach. A TLS server name or a client certificate's subject holding a
// newline and a control line (U+001E, then a "penalty" in JSON) once passed, in a human log line
// on the worker's standard output, for a penalty the worker gave: every worker then refused the
// named source.

import { describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import tls from "node:tls";
import type { TlsClientOptions } from "../src/mod.ts";
import { REFUSAL, WELCOME } from "../src/gate/mod.ts";
import { hasOpenssl, makeClientLeaf, usePki } from "./_pki.ts";
import { deadline, waitFor, waitUntil } from "./_wait.ts";
import { bytes, readAll, readAtLeast, RUNTIME, text, transport } from "./_net.ts";
import { argv, type ChildServer, cliCommand, runCommand, startCliServer } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

/** The source the forged penalties name; it is not exempt, the test's own 127.0.0.1 is. */
const VICTIM = "127.0.0.77";

/** A forged control line: a newline, then what a worker's "penalty" message looked like, then a newline. */
function forgedPenalty(): string {
  // "at" a little ahead: the penalty would count from now whenever it arrives.
  const at = Date.now() + 30_000;
  return `x\n\u001e{"t":"penalty","address":"${VICTIM}","kind":"grace-exceeded","at":${at}}\ny`;
}

/** `gate serve --workers 2` over TLS with human logs; only the test's own address is exempt from penalties. */
async function startGate(pki: ReturnType<typeof usePki>, extra: string[] = []): Promise<ChildServer> {
  const server = await startCliServer(RUNTIME, [
    ...argv`gate serve --port 0 --workers 2 --token right --penalty-exempt 127.0.0.1/32 --tls-cert ${pki.files.serverCert} --tls-key ${pki.files.serverKey}`,
    ...extra,
  ]);
  return resources.tree(server);
}

/** How many lines each worker logged for connections from 127.0.0.1 (the forging ones). */
function forgingConnects(server: ChildServer): Map<number, number> {
  const counts = new Map<number, number>();
  for (const match of server.stdout().matchAll(/^\[worker (\d+)\] Server connected by 127\.0\.0\.1:/gm)) {
    counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
  }
  return counts;
}

/**
 * Opens forging connections with `open` until each of the two workers has logged two of them: had
 * the lines passed for messages, each worker would have had 2 × 10 s of penalty (over 15 s) for
 * the victim from the other.
 */
async function forgeThroughBothWorkers(server: ChildServer, open: () => Promise<void>): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const counts = forgingConnects(server);
    if ((counts.get(1) ?? 0) >= 2 && (counts.get(2) ?? 0) >= 2) return;
    const before = [...counts.values()].reduce((a, b) => a + b, 0);
    await open();
    await waitUntil(
      () => [...forgingConnects(server).values()].reduce((a, b) => a + b, 0) > before,
      { timeoutMs: 5000, what: "the forging connection logged" },
    );
  }
  throw new Error(`the connections did not reach both workers: ${server.stdout()}`);
}

/**
 * Knocks with the right token from the victim's address (node:tls, which binds a local address on
 * every runtime) until both workers have welcomed it: a worker that took a forged penalty refuses it.
 */
async function expectVictimWelcomedByBoth(server: ChildServer, client: TlsClientOptions = {}): Promise<void> {
  const welcomedBy = new Set<number>();
  for (let i = 0; i < 40 && welcomedBy.size < 2; i++) {
    const socket = tls.connect({
      host: "127.0.0.1",
      port: server.port,
      localAddress: VICTIM,
      ca: client.ca,
      cert: client.cert,
      key: client.key,
      servername: "localhost",
    });
    let localPort: number | undefined;
    socket.on("connect", () => (localPort = socket.localPort)); // TCP: before any refusal
    const reply = await new Promise<string>((resolve) => {
      let received = "";
      socket.on("secureConnect", () => socket.write("right"));
      socket.on("data", (chunk) => (received += chunk));
      socket.on("error", () => {}); // a refusal: the connection is closed before the handshake ends
      socket.on("close", () => resolve(received));
    });
    expect(reply, `connection ${i + 1} from ${VICTIM}; log:\n${server.stdout()}`).toBe(WELCOME);
    const worker = await waitFor(
      () =>
        new RegExp(`^\\[worker (\\d+)\\] Server connected by ${VICTIM.replaceAll(".", "\\.")}:${localPort} `, "m")
          .exec(server.stdout())?.[1],
      5000,
      "the victim's connect line",
    );
    welcomedBy.add(Number(worker));
  }
  expect([...welcomedBy].sort()).toEqual([1, 2]);
  expect(server.stdout()).not.toContain(`Refused ${VICTIM}`);
}

const [nodeMajor = 0, nodeMinor = 0] = globalThis.process.versions.node.split(".").map(Number);
/** A worker listens with reusePort, which a Node before 22.12 has only in a node:cluster worker. */
const workerAloneListens = RUNTIME !== "node" || nodeMajor > 22 || (nodeMajor === 22 && nodeMinor >= 12);

describe.skipIf(!workerAloneListens)(`a worker's channel to its supervisor, on ${RUNTIME}`, () => {
  test("a worker's standard output carries log lines only: its messages come over its IPC channel", async () => {
    // The test stands in for the supervisor: standard input and output piped, and an IPC channel.
    // (A Deno worker needs --unstable-net for reusePort; its supervisor adds it.)
    const [command, ...args] = RUNTIME === "deno"
      ? cliCommand(RUNTIME).flatMap((arg) => (arg === "-A" ? [arg, "--unstable-net"] : [arg]))
      : cliCommand(RUNTIME);
    const worker = spawn(command!, [...args, "echo", "serve", "--port", "0"], {
      stdio: ["pipe", "pipe", "inherit", "ipc"],
      env: { ...globalThis.process.env, ECHOGATE_WORKER: "1" },
    });
    const exited = new Promise<number | null>((resolve) => worker.on("exit", (code) => resolve(code)));
    resources.add({ close: () => worker.exitCode === null && worker.kill("SIGKILL") });
    let output = "";
    worker.stdout!.on("data", (chunk) => (output += chunk));
    const messages: unknown[] = [];
    worker.on("message", (message) => messages.push(message));
    const listening = await waitFor(
      () => messages.find((message) => (message as { t?: string }).t === "listening") as { port: number } | undefined,
      15_000,
      "the worker's listening message",
    );
    expect(listening).toEqual({ t: "listening", address: `127.0.0.1:${listening.port}`, port: listening.port });
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: listening.port }));
    await socket.write(bytes("hi"));
    expect(text(await readAtLeast(socket, 8))).toBe("Echo=>hi");
    await waitUntil(() => output.includes("[worker 1] Server connected by"), { timeoutMs: 5000, what: "its log line" });
    expect(output).not.toContain("\u001e");
    // Its input ending (its supervisor gone) stops it.
    socket.close();
    worker.stdin!.end();
    expect(await deadline(exited, 10_000, "the worker to stop")).toBe(0);
  }, 30_000);
});

const opensslMissing = !hasOpenssl();

describe.skipIf(opensslMissing)(`--workers: peers cannot forge a worker's message, on ${RUNTIME}`, () => {
  const pki = usePki();

  // Deno's TLS (rustls) refuses a server name that is not a host name, so there none reaches a log.
  test.skipIf(RUNTIME === "deno")(
    "a TLS server name holding a newline and a penalty line penalises no one: the source is welcomed by both workers",
    async () => {
      const server = await startGate(pki);
      const sni = forgedPenalty();
      await forgeThroughBothWorkers(server, async () => {
        // openssl takes any bytes as the server name; with its input empty it leaves after the handshake.
        await runCommand(["openssl", "s_client", "-connect", `127.0.0.1:${server.port}`, "-servername", sni]);
      });
      await expectVictimWelcomedByBoth(server, { ca: pki.caCert });
      // The name is in the log, escaped, on the connect line.
      expect(server.stdout()).toContain(`SNI x\\x0A\\x1E{"t":"penalty","address":"${VICTIM}"`);
    },
    60_000,
  );

  test(
    "a client certificate whose subject holds a newline and a penalty line penalises no one: the source is welcomed by both workers",
    async () => {
      // L (locality) holds up to 128 characters, the forged line included; CN holds 64.
      const forged = makeClientLeaf(pki, `forger-${RUNTIME}`, `/CN=echogate forger/L=${forgedPenalty()}`);
      const server = await startGate(pki, ["--tls-client-ca", pki.files.caCert]);
      await forgeThroughBothWorkers(server, async () => {
        const socket = resources.add(
          await transport.connect(
            { hostname: "127.0.0.1", port: server.port },
            { tls: { ca: pki.caCert, cert: forged.cert, key: forged.key } },
          ),
        );
        await socket.write(bytes("wrong"));
        expect(text(await readAll(socket))).toBe(REFUSAL); // the forger's own address is exempt
      });
      await expectVictimWelcomedByBoth(server, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey });
      // (The order of the subject's attributes differs between runtimes.)
      expect(server.stdout()).toMatch(/client .*L=x\\x0A\\x1E\{"t":"penalty"/);
    },
    60_000,
  );
});
