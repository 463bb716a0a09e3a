// `--workers`: one supervisor, several worker processes on one port (node:cluster on Node,
// reusePort on Bun and Deno), shared penalties, restarts and graceful stops, and all of it over
// TLS (plain and mutual), with SIGHUP reloading the certificate in every worker.

import { describe, expect, test } from "vitest";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { StreamSocket, TlsClientOptions } from "../src/mod.ts";
import { WELCOME } from "../src/gate/mod.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import { deadline, waitFor, waitUntil } from "./_wait.ts";
import { bytes, readAll, readAtLeast, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { argv, type ChildServer, cliCommand, runCommand, runEchogate, startCliServer } from "./_child.ts";
import { alive, childPids, listeningPorts } from "./_proc.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

async function startWorkers(args: string[]): Promise<ChildServer> {
  const server = await startCliServer(RUNTIME, args);
  return resources.tree(server);
}

/** The pids of `server`'s two workers, once both are running. */
function twoWorkers(server: ChildServer): Promise<number[]> {
  return waitFor(
    () => {
      const pids = childPids(server.process.pid!);
      return pids.length === 2 ? pids : undefined;
    },
    5000,
    "two workers",
  );
}

/** SIGTERM to the supervisor: each held connection ends cleanly, the supervisor exits 0, no worker is left. */
async function expectGracefulStop(server: ChildServer, held: Iterable<StreamSocket>, workers: number[]) {
  globalThis.process.kill(server.process.pid!, "SIGTERM");
  for (const socket of held) {
    expect(await readAll(socket)).toHaveLength(0);
    socket.close();
  }
  expect(await deadline(server.exited, 15_000, "the supervisor to exit")).toBe(0);
  expect(workers.filter(alive)).toEqual([]);
}

function connect(port: number): Promise<StreamSocket> {
  return transport.connect({ hostname: "127.0.0.1", port });
}

/** A JSON event a worker or the supervisor logged. */
interface Event {
  event: string;
  worker?: number;
  remote?: string;
  ok?: boolean;
  [field: string]: unknown;
}

/** The `--json` events named `name` a supervisor has printed so far, in order (stdout, or stderr). */
function events(server: ChildServer, name: string, stream: "stdout" | "stderr" = "stdout"): Event[] {
  return server[stream]().split("\n").filter((line) => line.includes(`"event":"${name}"`)).map((line) =>
    JSON.parse(line) as Event
  );
}

/** `gate serve --port 0 --workers 2 --json --token right --penalty-exempt none`, then `extra`. */
/** `echo serve --port 0 --workers 2` and `flags`. */
function startEchoWorkers(...flags: string[]): Promise<ChildServer> {
  return startWorkers(["echo", "serve", "--port", "0", "--workers", "2", ...flags]);
}

function startGateWorkers(extra: string[] = []): Promise<ChildServer> {
  return startWorkers([...argv`gate serve --port 0 --workers 2 --penalty-exempt none --json --token right`, ...extra]);
}

/** The worker that logged the connection from 127.0.0.1:<port>: a `[worker N]` line or a JSON `connect` event. */
function workerOf(server: ChildServer, localPort: number): number | undefined {
  const match = new RegExp(`\\[worker (\\d+)\\] Server connected by 127\\.0\\.0\\.1:${localPort}[ \\n]`).exec(
    server.stdout(),
  );
  if (match) return Number(match[1]);
  return events(server, "connect").find((event) => event.remote === `127.0.0.1:${localPort}`)?.worker;
}

/**
 * Opens connections until each of `count` workers holds one (each echoes "hi" first); returns one
 * socket per worker. `open` makes each connection (default: plain TCP to the server's port).
 */
async function socketPerWorker(
  server: ChildServer,
  count: number,
  open: () => Promise<StreamSocket> = () => connect(server.port),
): Promise<Map<number, StreamSocket>> {
  const held = new Map<number, StreamSocket>();
  for (let i = 0; i < 60 && held.size < count; i++) {
    const socket = resources.add(await open());
    await socket.write(bytes("hi"));
    expect(text(await readAtLeast(socket, 8))).toBe("Echo=>hi");
    const port = socket.localAddr.transport === "tcp" ? socket.localAddr.port : 0;
    const worker = await waitFor(() => workerOf(server, port), 5000, "the connect line");
    if (held.has(worker)) socket.close();
    else held.set(worker, socket);
  }
  return held;
}

describe(`--workers on ${RUNTIME}`, () => {
  test(
    "echo serve --workers 2: one listening line, both workers answer on the one port, lines carry the worker",
    async () => {
      const server = await startEchoWorkers();
      expect(server.stdout()).toMatch(/^echo server listening on 127\.0\.0\.1:\d+ \(2 workers\)\n/);
      await waitUntil(() => childPids(server.process.pid!).length === 2, { what: "two workers" });
      const held = await socketPerWorker(server, 2);
      expect([...held.keys()].sort()).toEqual([1, 2]);
      expect(server.stdout().match(/listening/g)).toHaveLength(1);
    },
    30_000,
  );

  test(
    "each worker listens on the port itself with reusePort (Bun, Deno, Node 22.12+), else the cluster primary holds it (Node 20)",
    async () => {
      const server = await startEchoWorkers();
      const workers = await twoWorkers(server);
      const [major = 0, minor = 0] = globalThis.process.versions.node.split(".").map(Number);
      const nodeReusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
      const holders = [server.process.pid!, ...workers].filter((pid) => listeningPorts(pid).includes(server.port));
      expect(holders).toEqual(RUNTIME !== "node" || nodeReusePort ? workers : [server.process.pid!]);
    },
    30_000,
  );

  test(
    "SIGTERM drains every worker: each open connection gets a FIN, the supervisor exits 0, no worker is left",
    async () => {
      const server = await startEchoWorkers("--drain-timeout", "10");
      const held = await socketPerWorker(server, 2);
      const workers = childPids(server.process.pid!);
      expect(workers).toHaveLength(2);
      await expectGracefulStop(server, held.values(), workers);
      expect(server.stderr()).not.toMatch(/exited/);
    },
    30_000,
  );

  test("a worker that dies is logged and started again; the port keeps answering", async () => {
    const server = await startEchoWorkers();
    const before = await twoWorkers(server);
    globalThis.process.kill(before[0]!, "SIGKILL");
    await waitUntil(
      () => /Worker \d exited \(SIGKILL\): restarting in 100 ms/.test(server.stderr()),
      { timeoutMs: 5000, what: "the exit to be logged" },
    );
    const after = await waitFor(
      () => {
        const pids = childPids(server.process.pid!);
        return pids.length === 2 && !pids.includes(before[0]!) ? pids : undefined;
      },
      10_000,
      "the worker to be started again",
    );
    expect(after).toContain(before[1]);
    // Both slots serve again (the new process logs under the dead one's number).
    const held = await socketPerWorker(server, 2);
    expect(held.size).toBe(2);
    globalThis.process.kill(server.process.pid!, "SIGTERM");
    expect(await deadline(server.exited, 15_000, "the supervisor to exit")).toBe(0);
  }, 40_000);

  test("a second signal ends the supervisor and every worker at once", async () => {
    const server = await startEchoWorkers("--drain-timeout", "30");
    await socketPerWorker(server, 2); // open connections keep the drain waiting
    const workers = childPids(server.process.pid!);
    globalThis.process.kill(server.process.pid!, "SIGTERM");
    // The first signal is handled (both workers drain) before the second is sent.
    const line = "echogate: draining 2 connections for up to 30 s; SIGTERM again to stop now\n";
    await waitUntil(() => server.stderr().includes(line), { timeoutMs: 10_000, what: "the draining line" });
    globalThis.process.kill(server.process.pid!, "SIGINT");
    expect(await deadline(server.exited, 5000, "the supervisor to exit")).not.toBe(0);
    await waitUntil(() => !workers.some(alive), { what: "the workers to be gone" });
  }, 30_000);

  test("Ctrl-C with connections open in two workers: the supervisor says it drains them in one line", async () => {
    const server = await startEchoWorkers("--drain-timeout", "30");
    expect((await socketPerWorker(server, 2)).size).toBe(2);
    globalThis.process.kill(server.process.pid!, "SIGINT");
    const line = "echogate: draining 2 connections for up to 30 s; Ctrl-C again to stop now\n";
    await waitUntil(() => server.stderr().includes(line), { timeoutMs: 10_000, what: "the draining line" });
    globalThis.process.kill(server.process.pid!, "SIGINT");
    expect(await deadline(server.exited, 5000, "the supervisor to exit")).not.toBe(0);
    expect(server.stderr().match(/draining/g)).toHaveLength(1);
  }, 30_000);

  test("workers stop by themselves when their supervisor is killed", async () => {
    const server = await startEchoWorkers();
    const workers = await twoWorkers(server);
    globalThis.process.kill(server.process.pid!, "SIGKILL");
    await waitUntil(() => !workers.some(alive), { timeoutMs: 10_000, what: "the orphaned workers to exit" });
  }, 30_000);

  test(
    "gate serve --workers 2: wrong knocks count the same on every worker, and every worker refuses the source",
    async () => {
      const server = await startGateWorkers();
      const penalties = () => events(server, "penalty") as (Event & { accruedSeconds: number })[];
      // Four wrong knocks (5 s each; over 15 s is refused), a moment apart so each penalty has reached the other worker.
      for (let i = 0; i < 4; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("wrong"));
        expect(text(await readAll(socket))).toBe("please go out!");
        await waitUntil(() => penalties().length === i + 1, { what: `penalty ${i + 1}` });
        // Nothing reports a penalty's arrival at the other worker: a moment for it to travel.
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      // Each penalty counts all before it, whichever worker gave it: 5, 10, 15, 20 s (less a little decay).
      expect(penalties().map((p) => Math.round(p.accruedSeconds / 5))).toEqual([1, 2, 3, 4]);
      // Now both workers refuse the source (try until each has logged a refusal: each logs the
      // first of a burst at once, and only counts the rest).
      const refusedBy = () => new Set(events(server, "refused").map((event) => event.worker));
      for (let i = 0; i < 60 && refusedBy().size < 2; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("right")).catch(() => {});
        expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
      }
      await waitUntil(() => refusedBy().size === 2, { what: "a refusal from each worker" });
      expect([...refusedBy()].sort()).toEqual([1, 2]);
    },
    60_000,
  );

  test(
    "a worker started again after a death knows the penalties the others gave: it refuses the source too",
    async () => {
      const server = await startGateWorkers();
      for (let i = 0; i < 4; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("wrong"));
        expect(text(await readAll(socket))).toBe("please go out!");
        await waitUntil(() => events(server, "penalty").length === i + 1, { what: `penalty ${i + 1}` });
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      const [victim] = childPids(server.process.pid!);
      globalThis.process.kill(victim!, "SIGKILL");
      const death = await waitFor(
        () => events(server, "worker-exit", "stderr").find((event) => event.signal === "SIGKILL"),
        5000,
        "the death",
      );
      const dead = death.worker;
      await waitUntil(
        () => {
          const pids = childPids(server.process.pid!);
          return pids.length === 2 && !pids.includes(victim!);
        },
        { timeoutMs: 10_000, what: "the worker to be started again" },
      );
      // The right token now: only a worker that forgot the penalties would let it in.
      // Every connection is refused; the restarted worker logs the first it refuses at once.
      // Connections reach it once it listens (no line says when): keep knocking until then, to a deadline.
      const refusedByRestarted = () => events(server, "refused").some((event) => event.worker === dead);
      const knockUntil = Date.now() + 20_000;
      while (Date.now() < knockUntil && !refusedByRestarted()) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("right")).catch(() => {});
        expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
        socket.close();
      }
      await waitUntil(refusedByRestarted, { timeoutMs: 5000, what: "a refusal from the restarted worker" });
      expect(refusedByRestarted()).toBe(true);
    },
    60_000,
  );

  test("a port in use fails the supervisor with 'in use', leaving no worker", async () => {
    const other = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0"]));
    const result = await runEchogate(argv`echo serve --port ${other.port} --workers 2`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^echogate: .*in use/m);
  }, 30_000);

  test("--workers with --unix, or a bad count, is a usage error", async () => {
    const unix = await runCommand([
      ...cliCommand(RUNTIME),
      "echo",
      "serve",
      "--unix",
      tempSocketPath("w"),
      "--workers",
      "2",
    ]);
    expect(unix.code).toBe(2);
    expect(unix.stderr).toMatch(/^echogate: "--workers" needs a TCP port: a unix socket takes one listener/);
    const zero = await runCommand([...cliCommand(RUNTIME), "gate", "serve", "--port", "0", "--workers", "0"]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/^echogate: Invalid value for "--workers"/);
  }, 30_000);
});

const opensslMissing = !hasOpenssl();
if (opensslMissing) console.log("skipping the --workers TLS tests: openssl is not installed (CI installs it)");

describe.skipIf(opensslMissing)(`--workers over TLS on ${RUNTIME}`, () => {
  const pki = usePki();
  /** The flags of the test PKI's server certificate and key. */
  const serverPair = () => ["--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey];

  const connectTls = (port: number, tls: TlsClientOptions) =>
    transport.connect({ hostname: "127.0.0.1", port }, { tls });
  /** Whether a TLS connection trusting only `ca` is accepted, and by which worker (echoing "hi" first). */
  async function handshakeWith(server: ChildServer, ca: string): Promise<number | undefined> {
    let socket: StreamSocket;
    try {
      socket = await connectTls(server.port, { ca });
    } catch {
      return undefined; // the certificate served is not signed by `ca`
    }
    try {
      await socket.write(bytes("hi"));
      expect(text(await readAtLeast(socket, 8))).toBe("Echo=>hi");
      const port = socket.localAddr.transport === "tcp" ? socket.localAddr.port : 0;
      return await waitFor(() => workerOf(server, port), 5000, "the connect event");
    } finally {
      socket.close();
    }
  }
  /** The workers a client trusting only `ca` reaches, tried until both answered (each try must be accepted). */
  async function workersServing(server: ChildServer, ca: string): Promise<Set<number>> {
    const seenBy = new Set<number>();
    for (let i = 0; i < 40 && seenBy.size < 2; i++) {
      const worker = await handshakeWith(server, ca);
      expect(worker).toBeDefined();
      seenBy.add(worker!);
    }
    return seenBy;
  }
  /** Certificate and key files the test may replace (copies of the server pair). */
  function livePair(name: string): { cert: string; key: string; flags: string[] } {
    const cert = join(pki.dir, `${name}-${RUNTIME}.crt`);
    const key = join(pki.dir, `${name}-${RUNTIME}.key`);
    copyFileSync(pki.files.serverCert, cert);
    copyFileSync(pki.files.serverKey, key);
    return { cert, key, flags: ["--tls-cert", cert, "--tls-key", key] };
  }

  // On Deno, TLS servers run on its node:tls by default and on Deno.listenTls with
  // --tls-stalled-handshakes hold (docs/tls.md): the listener and its reload differ, so both are tested.
  const modes: [string, string[]][] = RUNTIME === "deno"
    ? [["", []], [" (Deno.listenTls: --tls-stalled-handshakes hold)", ["--tls-stalled-handshakes", "hold"]]]
    : [["", []]];
  for (const [title, extra] of modes) {
    test(
      `echo serve --workers 2 --tls-cert --alpn${title}: one listening line, TLS echo through both workers`,
      async () => {
        const server = await startEchoWorkers(
          "--json",
          ...serverPair(),
          "--alpn",
          "echo",
          ...extra,
        );
        expect(events(server, "listening")).toEqual([expect.objectContaining({ workers: 2 })]);
        const held = await socketPerWorker(
          server,
          2,
          () => connectTls(server.port, { ca: pki.caCert, alpn: ["echo"] }),
        );
        expect([...held.keys()].sort()).toEqual([1, 2]);
        // Each worker agreed on the ALPN protocol.
        for (const worker of [1, 2]) {
          const connect = events(server, "connect").find((event) => event.worker === worker);
          expect((connect?.tls as { alpn?: string } | undefined)?.alpn).toBe("echo");
        }
        expect(events(server, "listening")).toHaveLength(1);
      },
      40_000,
    );
  }

  test("mutual TLS (--tls-client-ca) through both workers: a client certificate is required by each", async () => {
    const server = await startEchoWorkers(
      "--json",
      ...serverPair(),
      "--tls-client-ca",
      pki.files.caCert,
    );
    const held = await socketPerWorker(
      server,
      2,
      () => connectTls(server.port, { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey }),
    );
    expect([...held.keys()].sort()).toEqual([1, 2]);
    for (const worker of [1, 2]) {
      const connect = events(server, "connect").find((event) => event.worker === worker);
      expect((connect?.tls as { peerSubject?: string } | undefined)?.peerSubject).toMatch(/echogate test client/);
    }
    // Without a client certificate no worker lets a client in (TLS 1.3 may report it on the first read).
    for (let i = 0; i < 6; i++) {
      const socket = await connectTls(server.port, { ca: pki.caCert }).catch(() => undefined);
      if (!socket) continue;
      resources.add(socket);
      await socket.write(bytes("hi")).catch(() => {});
      expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
    }
    await waitUntil(
      () => events(server, "tls-handshake-failed").length > 0,
      { timeoutMs: 5000, what: "a refusal logged" },
    );
    expect(
      events(server, "connect").filter((event) => !event.tls || !(event.tls as { peerSubject?: string }).peerSubject),
    )
      .toEqual([]);
  }, 40_000);

  test("gate serve --workers 2 over TLS: gate knock --tls is welcomed through both workers", async () => {
    const server = await startGateWorkers(serverPair());
    const welcomedBy = new Set<number>();
    for (let i = 0; i < 40 && welcomedBy.size < 2; i++) {
      const knock = await runEchogate(
        argv`gate knock 127.0.0.1 --port ${server.port} --token right --delay 0 --tls --ca ${pki.files.caCert}`,
      );
      expect(knock.code).toBe(0);
      expect(knock.stdout).toContain(WELCOME);
      const knocks = await waitFor(
        () => (events(server, "knock").length === i + 1 ? events(server, "knock") : undefined),
        5000,
        "the knock event",
      );
      expect(knocks[i]!.welcomed).toBe(true);
      welcomedBy.add(knocks[i]!.worker!);
    }
    expect([...welcomedBy].sort()).toEqual([1, 2]);
  }, 90_000);

  for (const [title, extra] of modes) {
    test(
      `SIGHUP to the supervisor reloads every worker${title}: a bad file keeps the old certificate, a good one serves new connections through each, open ones go on`,
      async () => {
        const live = livePair("live");
        const server = await startEchoWorkers(
          "--json",
          ...live.flags,
          ...extra,
        );
        const held = await socketPerWorker(server, 2, () => connectTls(server.port, { ca: pki.caCert }));
        expect(held.size).toBe(2);
        const reloads = () => events(server, "tls-reload");

        writeFileSync(live.cert, "garbage");
        globalThis.process.kill(server.process.pid!, "SIGHUP");
        await waitUntil(
          () => (server.stderr().match(/TLS reload failed/g) ?? []).length === 2,
          { timeoutMs: 10_000, what: "both workers to log the failed reload" },
        );
        expect((await workersServing(server, pki.caCert)).size).toBe(2); // every worker kept the old certificate

        copyFileSync(pki.files.otherServerCert, live.cert);
        copyFileSync(pki.files.otherServerKey, live.key);
        globalThis.process.kill(server.process.pid!, "SIGHUP");
        await waitFor(
          () => (new Set(reloads().filter((event) => event.ok).map((event) => event.worker)).size === 2
            ? true
            : undefined),
          10_000,
          "both workers to reload",
        );
        expect((await workersServing(server, pki.otherCaCert)).size).toBe(2); // every worker serves the new one
        for (let i = 0; i < 4; i++) expect(await handshakeWith(server, pki.caCert)).toBeUndefined();
        // The connections opened before the reloads are untouched.
        for (const socket of held.values()) {
          await socket.write(bytes("again"));
          expect(text(await readAtLeast(socket, 11))).toBe("Echo=>again");
        }
        expect(server.process.exitCode).toBeNull();
      },
      90_000,
    );

    test(`a reload in one worker leaves the other serving${title}: SIGHUP to one worker alone`, async () => {
      const live = livePair("one");
      const server = await startEchoWorkers(
        "--json",
        ...live.flags,
        ...extra,
      );
      const workers = await twoWorkers(server);
      await socketPerWorker(server, 2, () => connectTls(server.port, { ca: pki.caCert })); // both listen
      copyFileSync(pki.files.otherServerCert, live.cert);
      copyFileSync(pki.files.otherServerKey, live.key);
      globalThis.process.kill(workers[0]!, "SIGHUP");
      const reloaded = (await waitFor(() => events(server, "tls-reload")[0], 10_000, "the reload")).worker;
      // New certificate only from the reloaded worker, the old one only from the other; both accept.
      const servedNew = new Set<number>();
      const servedOld = new Set<number>();
      for (let i = 0; i < 60 && (servedNew.size === 0 || servedOld.size === 0); i++) {
        const fresh = await handshakeWith(server, pki.otherCaCert);
        if (fresh !== undefined) servedNew.add(fresh);
        const old = await handshakeWith(server, pki.caCert);
        if (old !== undefined) servedOld.add(old);
      }
      expect([...servedNew]).toEqual([reloaded]);
      expect(servedOld.size).toBe(1);
      expect(servedOld.has(reloaded!)).toBe(false);
      expect(events(server, "tls-reload")).toHaveLength(1);
    }, 90_000);
  }

  test("SIGTERM drains every TLS worker: each open TLS connection ends cleanly, the supervisor exits 0", async () => {
    const server = await startEchoWorkers(
      "--drain-timeout",
      "10",
      ...serverPair(),
    );
    const held = await socketPerWorker(server, 2, () => connectTls(server.port, { ca: pki.caCert }));
    expect(held.size).toBe(2);
    const workers = childPids(server.process.pid!);
    await expectGracefulStop(server, held.values(), workers);
    expect(server.stderr()).not.toMatch(/exited|Error/);
  }, 40_000);
});
