// `--workers`: one supervisor, several worker processes on one port (node:cluster on Node,
// reusePort on Bun and Deno), shared penalties, restarts and graceful stops.

import { afterEach, describe, expect, test } from "vitest";
import { readFileSync } from "node:fs";
import type { StreamSocket } from "../src/mod.ts";
import {
  bytes,
  type ChildServer,
  cleanup,
  cliCommand,
  deadline,
  readAll,
  readAtLeast,
  runCommand,
  RUNTIME,
  startCliServer,
  tempSocketPath,
  text,
  transport,
  waitFor,
} from "./_utils.ts";

const resources = cleanup();
const supervisors: ChildServer[] = [];

/** The pids of a process's children (Linux /proc); empty once it is gone. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    globalThis.process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  // Kill every worker as well as its supervisor: none may outlive a test.
  for (const supervisor of supervisors.splice(0)) {
    const workers = childPids(supervisor.process.pid!);
    for (const pid of workers) {
      try {
        globalThis.process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    await supervisor.stop();
    await waitFor(() => (workers.some(alive) ? undefined : true), 10_000, "workers to be gone");
  }
  await resources.run();
});

async function startWorkers(args: string[]): Promise<ChildServer> {
  const server = await startCliServer(RUNTIME, args);
  supervisors.push(server);
  return server;
}

function connect(port: number): Promise<StreamSocket> {
  return transport.connect({ hostname: "127.0.0.1", port });
}

/** The worker that logged `Server connected by 127.0.0.1:<port>` (human log lines). */
function workerOf(server: ChildServer, localPort: number): number | undefined {
  const match = new RegExp(`\\[worker (\\d+)\\] Server connected by 127\\.0\\.0\\.1:${localPort}\\n`).exec(
    server.stdout(),
  );
  return match ? Number(match[1]) : undefined;
}

/** Opens connections until each of `count` workers holds one; returns one socket per worker. */
async function socketPerWorker(server: ChildServer, count: number): Promise<Map<number, StreamSocket>> {
  const held = new Map<number, StreamSocket>();
  for (let i = 0; i < 60 && held.size < count; i++) {
    const socket = resources.add(await connect(server.port));
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
      const server = await startWorkers(["echo", "serve", "--port", "0", "--workers", "2"]);
      expect(server.stdout()).toMatch(/^echo server listening on 127\.0\.0\.1:\d+ \(2 workers\)\n/);
      await waitFor(() => (childPids(server.process.pid!).length === 2 ? true : undefined), 5000, "two workers");
      const held = await socketPerWorker(server, 2);
      expect([...held.keys()].sort()).toEqual([1, 2]);
      expect(server.stdout().match(/listening/g)).toHaveLength(1);
    },
    30_000,
  );

  test(
    "SIGTERM drains every worker: each open connection gets a FIN, the supervisor exits 0, no worker is left",
    async () => {
      const server = await startWorkers(["echo", "serve", "--port", "0", "--workers", "2", "--drain-timeout", "10"]);
      const held = await socketPerWorker(server, 2);
      const workers = childPids(server.process.pid!);
      expect(workers).toHaveLength(2);
      globalThis.process.kill(server.process.pid!, "SIGTERM");
      for (const socket of held.values()) {
        expect(await readAll(socket)).toHaveLength(0);
        socket.close();
      }
      expect(await deadline(server.exited, 15_000, "the supervisor to exit")).toBe(0);
      expect(workers.filter(alive)).toEqual([]);
      expect(server.stderr()).not.toMatch(/exited/);
    },
    30_000,
  );

  test("a worker that dies is logged and started again; the port keeps answering", async () => {
    const server = await startWorkers(["echo", "serve", "--port", "0", "--workers", "2"]);
    const before = await waitFor(
      () => {
        const pids = childPids(server.process.pid!);
        return pids.length === 2 ? pids : undefined;
      },
      5000,
      "two workers",
    );
    globalThis.process.kill(before[0]!, "SIGKILL");
    await waitFor(
      () => (/Worker \d exited \(SIGKILL\): restarting in 100 ms/.test(server.stderr()) ? true : undefined),
      5000,
      "the exit to be logged",
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
    const server = await startWorkers(["echo", "serve", "--port", "0", "--workers", "2", "--drain-timeout", "30"]);
    await socketPerWorker(server, 2); // open connections keep the drain waiting
    const workers = childPids(server.process.pid!);
    globalThis.process.kill(server.process.pid!, "SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    globalThis.process.kill(server.process.pid!, "SIGINT");
    expect(await deadline(server.exited, 5000, "the supervisor to exit")).not.toBe(0);
    await waitFor(() => (workers.some(alive) ? undefined : true), 5000, "the workers to be gone");
  }, 30_000);

  test("workers stop by themselves when their supervisor is killed", async () => {
    const server = await startWorkers(["echo", "serve", "--port", "0", "--workers", "2"]);
    const workers = await waitFor(
      () => {
        const pids = childPids(server.process.pid!);
        return pids.length === 2 ? pids : undefined;
      },
      5000,
      "two workers",
    );
    globalThis.process.kill(server.process.pid!, "SIGKILL");
    await waitFor(() => (workers.some(alive) ? undefined : true), 10_000, "the orphaned workers to exit");
  }, 30_000);

  test(
    "gate serve --workers 2: wrong knocks count the same on every worker, and every worker refuses the source",
    async () => {
      const server = await startWorkers([
        "gate",
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        "--penalty-exempt",
        "none",
        "--json",
        "--token",
        "right",
      ]);
      const penalties = () =>
        server.stdout().split("\n").filter((line) => line.includes('"event":"penalty"')).map((line) =>
          JSON.parse(line) as { worker: number; accruedSeconds: number }
        );
      // Four wrong knocks (5 s each; over 15 s is refused), a moment apart so each penalty has reached the other worker.
      for (let i = 0; i < 4; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("wrong"));
        expect(text(await readAll(socket))).toBe("please go out!");
        await waitFor(() => (penalties().length === i + 1 ? true : undefined), 5000, `penalty ${i + 1}`);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      // Each penalty counts all before it, whichever worker gave it: 5, 10, 15, 20 s (less a little decay).
      expect(penalties().map((p) => Math.round(p.accruedSeconds / 5))).toEqual([1, 2, 3, 4]);
      // Now both workers refuse the source (try until each has refused at least once).
      const refusedBy = new Set<number>();
      for (let i = 0; i < 60 && refusedBy.size < 2; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("right")).catch(() => {});
        expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
        await waitFor(
          () => {
            const refusals = server.stdout().split("\n").filter((line) => line.includes('"event":"refused"'));
            return refusals.length === i + 1 ? refusals : undefined;
          },
          5000,
          "the refusal",
        ).then((refusals) => refusedBy.add((JSON.parse(refusals[i]!) as { worker: number }).worker));
      }
      expect([...refusedBy].sort()).toEqual([1, 2]);
    },
    60_000,
  );

  test(
    "a worker started again after a death knows the penalties the others gave: it refuses the source too",
    async () => {
      const server = await startWorkers([
        "gate",
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        "--penalty-exempt",
        "none",
        "--json",
        "--token",
        "right",
      ]);
      const events = (name: string) =>
        server.stdout().split("\n").filter((line) => line.includes(`"event":"${name}"`)).map((line) =>
          JSON.parse(line) as { worker: number }
        );
      for (let i = 0; i < 4; i++) {
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("wrong"));
        expect(text(await readAll(socket))).toBe("please go out!");
        await waitFor(() => (events("penalty").length === i + 1 ? true : undefined), 5000, `penalty ${i + 1}`);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      const [victim] = childPids(server.process.pid!);
      globalThis.process.kill(victim!, "SIGKILL");
      const dead = Number(
        (await waitFor(
          () =>
            /"event":"worker-exit","worker":(\d+),"code":null,"signal":"SIGKILL"/.exec(server.stderr()) ?? undefined,
          5000,
          "the death",
        ))[
          1
        ],
      );
      await waitFor(
        () => {
          const pids = childPids(server.process.pid!);
          return pids.length === 2 && !pids.includes(victim!) ? true : undefined;
        },
        10_000,
        "the worker to be started again",
      );
      await new Promise((resolve) => setTimeout(resolve, 500)); // let it listen
      // The right token now: only a worker that forgot the penalties would let it in.
      let refusedByRestarted = false;
      for (let i = 0; i < 60 && !refusedByRestarted; i++) {
        const before = events("refused").length;
        const socket = resources.add(await connect(server.port));
        await socket.write(bytes("right")).catch(() => {});
        expect(text(await readAll(socket).catch(() => new Uint8Array()))).toBe("");
        const refusal = await waitFor(() => events("refused")[before], 5000, "the refusal");
        refusedByRestarted = refusal.worker === dead;
      }
      expect(refusedByRestarted).toBe(true);
    },
    60_000,
  );

  test("a port in use fails the supervisor with 'in use', leaving no worker", async () => {
    const other = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0"]));
    const result = await runCommand([
      ...cliCommand(RUNTIME),
      "echo",
      "serve",
      "--port",
      String(other.port),
      "--workers",
      "2",
    ]);
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
