// Log output never blocks the server and never grows without bound: a CLI server whose standard
// output is a pipe nobody reads keeps serving, drops (and counts) what does not fit its queue,
// says so once the reader is back, and exits on time.

import { describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineOutput } from "../src/cli/output.ts";
import { deadline, waitFor, waitUntil } from "./_wait.ts";
import { bytes, readAtLeast, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { type Child, cliCommand, ROOT, runCommand, scriptCommand, startChild } from "./_child.ts";
import { rssBytes } from "./_proc.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

const MiB = 1024 * 1024;

interface PipedServer {
  server: Child;
  reader: Child;
  port: number;
  /** The JSON events the reader has passed on so far. */
  events(): { event: string; lines?: number; stream?: string }[];
}

/**
 * Starts `echogate echo serve --json` with its standard output a FIFO read by `cat`, which the
 * test can stop (SIGSTOP) and resume (SIGCONT): a reader that stops reading, as a stopped `| less`.
 */
async function startPipedServer(stream: "stdout" | "stderr" = "stdout"): Promise<PipedServer> {
  const fifo = tempSocketPath("log").replace(/\.sock$/, ".fifo");
  execFileSync("mkfifo", [fifo]);
  resources.add({ close: () => rmSync(fifo, { force: true }) });
  const reader = resources.child(startChild(["cat", fifo]));
  const command = [...cliCommand(RUNTIME), "echo", "serve", "--port", "0", "--json"];
  const redirect = stream === "stdout" ? 'exec "$@" > "$0"' : 'exec "$@" 2> "$0"';
  const server = resources.child(startChild(["sh", "-c", redirect, fifo, ...command]));
  const listening = stream === "stdout" ? reader.stdout : server.stdout;
  const port = Number(
    await waitFor(() => /"address":"127\.0\.0\.1:(\d+)"/.exec(listening())?.[1], 15_000, "the server to listen"),
  );
  const events = () => {
    const out = reader.stdout();
    // Whole lines only: the last may still be on its way.
    const lines = out.slice(0, out.lastIndexOf("\n") + 1).split("\n").filter((line) => line !== "");
    return lines.map((line) => JSON.parse(line));
  };
  return { server, reader, port, events };
}

/** Runs `count` echo exchanges, `parallel` at a time; each must be answered within 5 s. */
async function exchanges(port: number, count: number, parallel = 50, onBatch?: () => void): Promise<void> {
  for (let done = 0; done < count; done += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, count - done) }, async () => {
        const socket = await transport.connect({ hostname: "127.0.0.1", port });
        try {
          await socket.write(bytes("x"));
          expect(text(await readAtLeast(socket, 7, 5000))).toBe("Echo=>x");
        } finally {
          socket.close();
        }
      }),
    );
    onBatch?.();
  }
}

const expectedLines = (connections: number) => 1 + 2 * connections; // listening, then connect and close each

describe(`log output on ${RUNTIME}`, () => {
  test(
    "with its stdout never read, a server keeps serving 10,000 connections in bounded memory, " +
      "and reports the dropped lines once the reader resumes",
    async () => {
      const { server, reader, port, events } = await startPipedServer();
      const pid = server.process.pid!;
      // While the reader keeps up, nothing is lost.
      await exchanges(port, 1000);
      await waitUntil(() => events().length === expectedLines(1000), { timeoutMs: 10_000, what: "every line" });
      expect(events().filter((e) => e.event === "log-dropped")).toEqual([]);
      const baseline = rssBytes(pid);

      globalThis.process.kill(reader.process.pid!, "SIGSTOP");
      let peak = 0;
      try {
        await exchanges(port, 10_000, 50, () => (peak = Math.max(peak, rssBytes(pid))));
      } finally {
        globalThis.process.kill(reader.process.pid!, "SIGCONT");
      }
      // The queue holds about 1 MiB; the rest is the runtime's own garbage between collections.
      expect(peak - baseline).toBeLessThan(48 * MiB);

      // Every line is either passed on or counted as dropped, and the count is passed on.
      const total = expectedLines(11_000);
      const accounted = () => {
        const seen = events();
        const dropped = seen.filter((e) => e.event === "log-dropped").reduce((n, e) => n + (e.lines ?? 0), 0);
        return seen.length - seen.filter((e) => e.event === "log-dropped").length + dropped;
      };
      await waitUntil(() => accounted() === total, { timeoutMs: 20_000, what: `${total} lines accounted for` });
      const reports = events().filter((e) => e.event === "log-dropped");
      expect(reports.length).toBeGreaterThan(0);
      expect(reports.every((e) => e.stream === "stdout" && e.lines! > 0)).toBe(true);
      expect(server.stderr()).toBe("");
    },
    180_000,
  );

  test(
    "on SIGTERM, queued lines are written once the reader resumes, and a stopped reader cannot hold the exit",
    async () => {
      // A reader that resumes in time gets every line.
      const first = await startPipedServer();
      globalThis.process.kill(first.reader.process.pid!, "SIGSTOP");
      await exchanges(first.port, 1000);
      globalThis.process.kill(first.server.process.pid!, "SIGTERM");
      // A moment for the signal to find the reader stopped (nothing tells when; a shorter one still
      // checks the same outcome: every line, exit 0).
      await new Promise((resolve) => setTimeout(resolve, 200));
      globalThis.process.kill(first.reader.process.pid!, "SIGCONT");
      expect(await deadline(first.server.exited, 10_000, "the server to exit")).toBe(0);
      await waitUntil(() => first.events().length === expectedLines(1000), { timeoutMs: 10_000, what: "every line" });

      // A reader that stays stopped costs the exit at most the flush deadline.
      const second = await startPipedServer();
      globalThis.process.kill(second.reader.process.pid!, "SIGSTOP");
      try {
        await exchanges(second.port, 2000);
        const started = Date.now();
        globalThis.process.kill(second.server.process.pid!, "SIGTERM");
        expect(await deadline(second.server.exited, 10_000, "the server to exit")).toBe(0);
        expect(Date.now() - started).toBeLessThan(5000);
      } finally {
        globalThis.process.kill(second.reader.process.pid!, "SIGCONT");
      }
    },
    120_000,
  );

  test(
    "with its stderr never read, a server keeps answering while 1,500 resets log an error each, and loses none",
    async () => {
      const { server, reader, port, events } = await startPipedServer("stderr");
      globalThis.process.kill(reader.process.pid!, "SIGSTOP");
      let resets;
      try {
        // Each client gets the first bytes of its reply, then resets: one error line each, about
        // 150 KiB in all, more than the pipe holds.
        const script = `
        const net = require("node:net");
        const one = () => new Promise((resolve) => {
          const s = net.connect(${port}, "127.0.0.1", () => s.write(Buffer.alloc(64 * 1024, 97)));
          s.once("data", () => { s.resetAndDestroy(); resolve(); });
          s.on("error", resolve);
        });
        (async () => { for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 50 }, one)); })();
      `;
        resets = await runCommand(["node", "-e", script], { ms: 120_000 });
        await exchanges(port, 50);
      } finally {
        globalThis.process.kill(reader.process.pid!, "SIGCONT");
      }
      expect(resets.code).toBe(0);
      const errors = () => events().filter((e) => e.event === "error").length;
      await waitUntil(() => errors() >= 1500, { timeoutMs: 20_000, what: "1,500 error lines" });
      expect(events().filter((e) => e.event === "log-dropped")).toEqual([]);
      expect(server.process.exitCode).toBeNull();
    },
    180_000,
  );

  test(
    "with its stderr never read, error lines beyond the queue are dropped and counted, and reported once it resumes",
    async () => {
      const { server, reader, port, events } = await startPipedServer("stderr");
      const RESETS = 12_000; // one error line each, 107-144 bytes: well over the 1 MiB queue and the pipe
      globalThis.process.kill(reader.process.pid!, "SIGSTOP");
      let resets;
      try {
        // Each client gets its one-byte echo, then resets: the server's next read fails, one error line.
        const script = `
        const net = require("node:net");
        const one = () => new Promise((resolve) => {
          const s = net.connect(${port}, "127.0.0.1", () => s.write("x"));
          s.once("data", () => { s.resetAndDestroy(); resolve(); });
          s.on("error", resolve);
        });
        (async () => { for (let i = 0; i < ${
          RESETS / 100
        }; i++) await Promise.all(Array.from({ length: 100 }, one)); })();
      `;
        resets = await runCommand(["node", "-e", script], { ms: 150_000 });
        await exchanges(port, 50); // answered while standard error is full
      } finally {
        globalThis.process.kill(reader.process.pid!, "SIGCONT");
      }
      expect(resets.code).toBe(0);
      const dropped = () =>
        events().filter((e) => e.event === "log-dropped" && e.stream === "stderr").reduce((n, e) => n + e.lines!, 0);
      const errors = () => events().filter((e) => e.event === "error").length;
      // Every error line arrives or is counted in a log-dropped event written in the gap's place.
      await waitUntil(
        () => errors() + dropped() >= RESETS,
        { timeoutMs: 30_000, what: "every error line accounted for" },
      );
      expect(dropped()).toBeGreaterThan(0);
      expect(errors() + dropped()).toBe(RESETS);
      expect(server.process.exitCode).toBeNull();
    },
    240_000,
  );

  for (const kind of ["an uncaught exception", "an unhandled rejection"]) {
    test(`${kind} flushes the queued lines, prints one line and exits 70, with no stack trace`, async () => {
      // The CLI's own host and fatal handler, in a script that queues lines and then fails.
      const dir = mkdtempSync(join(tmpdir(), "echogate-fatal-"));
      resources.add({ close: () => rmSync(dir, { recursive: true, force: true }) });
      const from = RUNTIME === "node" ? `${ROOT}npm/esm/` : ROOT;
      const ext = RUNTIME === "node" ? "js" : "ts";
      const failure = kind === "an uncaught exception"
        ? `setTimeout(() => { throw new Error("boom"); });`
        : `void Promise.reject(new Error("boom"));`;
      const script = `${dir}/fatal.mjs`;
      writeFileSync(
        script,
        `import { loadAdapter } from "${from}adapters/mod.${ext}";
import { exitOnFatal } from "${from}src/cli/main.${ext}";
const { host } = await loadAdapter();
exitOnFatal(host);
for (let i = 0; i < 5000; i++) host.writeOut(\`line \${i} \${"x".repeat(90)}\`);
${failure}
`,
      );
      const { code, stdout, stderr } = await runCommand([...scriptCommand(RUNTIME), script]);
      expect(stderr).toBe("echogate: fatal: boom\n");
      const lines = stdout.split("\n").filter((line) => line !== "");
      expect(lines.length).toBe(5000);
      expect(lines.at(-1)).toMatch(/^line 4999 x+$/);
      expect(code).toBe(70);
    });
  }

  test("LineOutput: a full queue drops and counts lines, and reports them in their place once half drained", async () => {
    const writes: string[] = [];
    let release: (() => void) | undefined;
    const slow = (text: string) => {
      writes.push(text);
      return new Promise<void>((resolve) => (release = resolve));
    };
    const reports: string[] = [];
    const output = new LineOutput(slow, slow, { maxQueued: 100 });
    output.onDropped((stream, lines) => (reports.push(`${stream}:${lines}`), output.out(`dropped ${lines}`)));
    output.out("first"); // goes out at the end of the turn, and stays in flight
    output.flush();
    expect(writes).toEqual(["first\n"]);
    for (let i = 0; i < 30; i++) output.out(`line ${String(i).padStart(2, "0")}`); // 8 characters each, with \n
    expect(output.dropped.stdout).toBe(30 - Math.floor((100 - 6) / 8));
    // Each setTimeout(0) below is one turn (no time passes): the released write's promise chain runs.
    release!(); // the first write is done: the queued lines go out (88 characters: still over half)
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writes[1]).toBe(Array.from({ length: 11 }, (_, i) => `line ${String(i).padStart(2, "0")}\n`).join(""));
    expect(reports).toEqual([]);
    output.out("still dropped");
    release!(); // drained: the count goes out in the gap's place, and lines are taken again
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(reports).toEqual(["stdout:20"]);
    output.out("taken");
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writes[2]).toBe("dropped 20\n");
    release!();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(writes[3]).toBe("taken\n");
    // A stream whose reader is gone no longer counts anything, and close() does not wait for it.
    const gone = new LineOutput(() => Promise.reject(new Error("EPIPE")), () => {});
    gone.out("a");
    gone.flush();
    await new Promise((resolve) => setTimeout(resolve, 0));
    gone.out("b");
    await deadline(gone.close(10_000), 1000, "close() of a gone stream");
    // close() resolves after its deadline when the reader never takes the text.
    const stuck = new LineOutput(() => new Promise<void>(() => {}), () => {});
    stuck.out("a");
    const started = Date.now();
    await stuck.close(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });
});
