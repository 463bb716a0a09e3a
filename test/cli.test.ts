import { describe, expect, test } from "vitest";
import { writeFileSync } from "node:fs";
import { serveEcho, serveGate, type StreamSocket, VERSION } from "../src/mod.ts";
import { LineOutput } from "../src/cli/output.ts";
import { waitUntil } from "./_wait.ts";
import { bytes, portOf, readAtLeast, RUNTIME, tempSocketPath, text, transport } from "./_net.ts";
import { argv, cliCommand, runCommand, runEchogate, startCliServer } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const cli = cliCommand(RUNTIME);
const run = (args: string[], env?: Record<string, string>) => runEchogate(args, { env });
const resources = useCleanup();

describe(`echogate CLI on ${RUNTIME}`, () => {
  test("--version and --help work at every level", async () => {
    const version = await run(["--version"]);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    for (
      const args of [["--help"], ["echo", "--help"], ["gate", "-h"], ["echo", "serve", "--help"], [
        "gate",
        "knock",
        "--help",
      ]]
    ) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(0);
      expect(result.stdout).toContain("Usage");
    }
    expect((await run(["gate", "serve", "--version"])).stdout).toBe(`${VERSION}\n`);
  });

  test("every flag a command's --help shows is in its usage lines and is taken by its parser", async () => {
    const overview = await run(["--help"]);
    expect(overview.code).toBe(0);
    for (const command of ["echo serve", "echo send", "gate serve", "gate knock", "bench"]) {
      const words = command.split(" ");
      // Its usage lines in the overview: from "  echogate <command>" to the next command's.
      const start = overview.stdout.indexOf(`  echogate ${command} `);
      expect(start, command).toBeGreaterThan(0);
      const next = overview.stdout.indexOf("\n  echogate ", start + 1);
      const usage = overview.stdout.slice(start, next === -1 ? overview.stdout.indexOf("\n\n", start) : next);
      const help = await run([...words, "--help"]);
      expect(help.code, command).toBe(0);
      // "  --name VALUE   text" or "  --switch         text".
      const rows = [...help.stdout.matchAll(/^ {2}--([a-z][a-z-]*)(?: (\S+))?/gm)].map((m) => ({
        name: m[1]!,
        value: m[2],
      }));
      expect(rows.length, command).toBeGreaterThan(5);
      for (const { name } of rows) expect(usage, `${command}: --${name}`).toMatch(new RegExp(`--${name}(?![\\w-])`));
      // Every row's flag given at once: the parser takes them all, and --help still answers.
      const all = rows.flatMap(({ name, value }) => value === undefined ? [`--${name}`] : [`--${name}`, "x"]);
      const parsed = await run([...words, ...all, "--help"]);
      expect(parsed.stderr, command).toBe("");
      expect(parsed, command).toMatchObject({ code: 0, stdout: help.stdout });
    }
  });

  const badInputs: [string[], RegExp][] = [
    [["frob"], /Unknown command "frob"/],
    [["echo"], /Missing command after "echo"/],
    [["echo", "serve", "--bogus"], /Unknown option "--bogus"/],
    [["echo", "serve", "--port", "70000"], /"--port".*not a port number/],
    [["echo", "serve", "--port", "http"], /"--port".*not a port number/],
    [["echo", "serve", "--port"], /"--port" needs a value/],
    [["echo", "serve", "--mode", "loud"], /"--mode".*not one of chunk, line, raw/],
    [["echo", "serve", "--idle-timeout", "soon"], /"--idle-timeout"/],
    [["echo", "serve", "--max-conns", "0"], /"--max-conns".*positive integer/],
    [["gate", "serve", "--timeout", "-1"], /"--timeout".*non-negative/],
    [["gate", "serve", "--token", ""], /"--token".*empty/],
    [["gate", "serve", "--token-file", "/nonexistent/tokens"], /"--token-file".*cannot read/],
    [["gate", "knock", "--delay", "x"], /"--delay"/],
    [["gate", "serve", "--penalty-exempt", "10.0.0.0/33"], /"--penalty-exempt".*not a CIDR block/],
    [["gate", "serve", "--no-penalties", "--penalty-exempt", "none"], /exclude each other/],
    [["gate", "serve", "--max-pending", "-3"], /"--max-pending"/],
    [["gate", "serve", "--penalties", "authfail:x"], /"--penalties".*not KIND:SECONDS/],
    [["gate", "serve", "--penalties", "min:20,max:10"], /"--penalties".*max must be more than min/],
    [
      ["gate", "serve", "--haproxy-runtime", "unix:/run/h.sock"],
      /"--haproxy-runtime" and "--haproxy-table" go together/,
    ],
    [
      ["gate", "serve", "--haproxy-runtime", "h", "--haproxy-table", "t"],
      /"--haproxy-runtime".*not unix:PATH or HOST:PORT/,
    ],
    [["gate", "serve", "--haproxy-runtime", "h:1", "--haproxy-table", "t;x"], /"--haproxy-table".*not letters/],
    [["gate", "serve", "--then", "nowhere"], /"--then".*not "echo", HOST:PORT, tls:\/\/HOST:PORT or unix:PATH/],
    [["gate", "serve", "--then", "localhost:99999"], /"--then".*not a port number/],
    [["gate", "serve", "--mode", "line"], /"--mode" applies only with "--then echo"/],
  ];
  test.each(badInputs)("bad input %j exits 2 with one clear line and no stack trace", async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^echogate: /);
    expect(lines[0]).toMatch(message);
    expect(lines.slice(1)).toEqual(["Run 'echogate --help' for usage."]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test("a token longer than the gate's 1024-byte chunk, which could never match, exits 2 with one line", async () => {
    for (
      const [args, env, source] of [
        [["gate", "serve", "--token", "x".repeat(1025)], {}, '"--token"'],
        [["gate", "serve"], { ECHOGATE_TOKEN: "\u00e9".repeat(600) }, "env ECHOGATE_TOKEN"],
      ] as const
    ) {
      const result = await run([...args], env);
      expect(result.code).toBe(2);
      const [first, ...rest] = result.stderr.trim().split("\n");
      expect(first).toMatch(/^echogate: Invalid value for /);
      expect(first).toContain(`${source}: the token is ${source === '"--token"' ? 1025 : 1200} bytes`);
      expect(rest).toEqual(["Run 'echogate --help' for usage."]);
    }
  });

  if (RUNTIME === "node") {
    test("the node CLI these tests spawn runs on the Node that runs the suite", async () => {
      // The Node matrix (node22, node24, node26) puts its binary first on PATH for this to hold.
      const result = await runCommand(["node", "-p", "process.version"]);
      expect(result.stdout.trim()).toBe(process.version);
    });
  }

  test("a port in use fails with a message containing 'in use'", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const result = await run(["echo", "serve", "--port", String(portOf(server))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^echogate: .*in use\n$/);
  });

  test("a refused connection is one line and exit 1", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const port = String(portOf(server));
    await server.close(); // now nothing listens there
    const result = await run(["echo", "send", "127.0.0.1", "--port", port]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/refused/i);
  });

  test("bench checks --conns against the real descriptor limit before connecting", async () => {
    // Port 1: had the check not stopped it, bench would fail differently (connection refused).
    const result = await runCommand([
      "bash",
      "-c",
      'ulimit -n 256 && exec "$@"',
      "bash",
      ...cli,
      ...argv`bench --conns 5000 --port 1`,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^echogate: --conns 5000 needs 5000 file descriptors, but only \d+ are free \(limit 256,/,
    );
  });

  test("echo serve prints its address, answers echo send, and exits 0 on SIGTERM", async () => {
    const server = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0"]));
    expect(server.stdout()).toMatch(/^echo server listening on 127\.0\.0\.1:\d+\n/);
    const sent = await run(["echo", "send", "127.0.0.1", "hello world", "it's", "--port", String(server.port)]);
    expect(sent).toMatchObject({
      code: 0,
      stdout: "Client received: 'Echo=>hello world'\nClient received: 'Echo=>it\\'s'\n",
    });
    const defaults = await run(["echo", "send", "--port", String(server.port)]);
    expect(defaults.stdout).toBe("Client received: 'Echo=>Hello network world'\n");
    expect(await server.stop("SIGTERM")).toBe(0);
  });

  test("a burst of connections logs one line each, with each peer's address, all out by exit", async () => {
    const server = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--port", "0"]));
    const clients: StreamSocket[] = await Promise.all(
      Array.from({ length: 40 }, () => transport.connect({ hostname: "127.0.0.1", port: server.port })),
    );
    for (const client of clients) resources.add(client);
    await Promise.all(clients.map(async (client) => {
      await client.write(bytes("x"));
      expect(text(await readAtLeast(client, 7))).toBe("Echo=>x");
    }));
    for (const client of clients) client.close();
    expect(await server.stop("SIGTERM")).toBe(0);
    const lines = server.stdout().trim().split("\n");
    expect(lines[0]).toMatch(/^echo server listening on /);
    const ports = (socket: StreamSocket) => socket.localAddr.transport === "tcp" ? socket.localAddr.port : 0;
    expect(lines.slice(1).sort()).toEqual(clients.map((c) => `Server connected by 127.0.0.1:${ports(c)}`).sort());
  });

  test("CLI output: lines of one turn go out in one write, and an error line goes after them", async () => {
    const writes: string[] = [];
    const output = new LineOutput((text) => void writes.push(`out:${text}`), (text) => void writes.push(`err:${text}`));
    output.out("a");
    output.out("b");
    expect(writes).toEqual([]);
    output.err("c");
    output.out("d");
    expect(writes).toEqual(["out:a\nb\n", "err:c\n"]);
    await waitUntil(() => writes.length === 3, { timeoutMs: 1000, what: "the end-of-turn write" });
    expect(writes[2]).toBe("out:d\n");
    output.flush();
    expect(writes).toHaveLength(3); // nothing left to write
  });

  test("echo serve --mode line --prefix and --json log one JSON object per event", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, ["echo", "serve", "--port", "0", "--mode", "line", "--prefix", "> ", "--json"]),
    );
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port }));
    await socket.write(bytes("a\nb\n"));
    expect(text(await readAtLeast(socket, 6))).toBe("> a\n> b\n");
    socket.close();
    await waitUntil(() => server.stdout().includes('"event":"close"'), { timeoutMs: 5000, what: "a close event" });
    const events = server.stdout().trim().split("\n").map((line) => JSON.parse(line));
    expect(events.map((e) => e.event)).toEqual(["listening", "connect", "close"]);
    expect(events[2]).toMatchObject({ bytesIn: 4, bytesOut: 8 });
    expect(typeof events[2].durationMs).toBe("number");
  });

  test("echo serve and echo send over a unix socket, where every positional is a message", async () => {
    const path = tempSocketPath("cli");
    const server = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--unix", path]));
    expect(server.address).toBe(`unix:${path}`);
    const sent = await run(["echo", "send", "localhost", "two", "--unix", path]);
    expect(sent.stdout).toBe("Client received: 'Echo=>localhost'\nClient received: 'Echo=>two'\n");
  });

  test("gate knock prints the reply and exits 0 only when welcomed", async () => {
    const server = resources.add(await serveGate({ transport, port: 0, tokens: ["s3cret"] }));
    const port = String(portOf(server));
    const welcomed = await run(["gate", "knock", "127.0.0.1", "--port", port, "--token", "s3cret", "--delay", "0"]);
    expect(welcomed).toMatchObject({ code: 0, stdout: "welcome to server!\n" });
    const refused = await run(["gate", "knock", "127.0.0.1", "--port", port, "--delay", "0"]);
    expect(refused).toMatchObject({ code: 1, stdout: "please go out!\n" });
  });

  test("gate serve takes its token from --token-file first, then env ECHOGATE_TOKEN, then --token", async () => {
    const file = `${tempSocketPath("tokens")}.txt`;
    writeFileSync(file, "alpha\r\n\nbeta\n");
    const fromFile = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token-file", file, "--token", "x"], {
        ECHOGATE_TOKEN: "y",
      }),
    );
    const fromEnv = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token", "x"], { ECHOGATE_TOKEN: "y" }),
    );
    const knock = (port: number, token: string) =>
      run(["gate", "knock", "127.0.0.1", "--port", String(port), "--token", token, "--delay", "0"]);
    expect((await knock(fromFile.port, "beta")).code).toBe(0);
    expect((await knock(fromFile.port, "alpha")).code).toBe(0);
    expect((await knock(fromFile.port, "y")).code).toBe(1);
    expect((await knock(fromEnv.port, "y")).code).toBe(0);
    expect((await knock(fromEnv.port, "x")).code).toBe(1);
  });

  test("gate serve logs 'time out' for a silent connection", async () => {
    const server = resources.child(await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--timeout", "0.2"]));
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port }));
    expect(await socket.read()).toBeNull();
    await waitUntil(() => server.stdout().includes("time out\n"), { timeoutMs: 5000, what: "the time out line" });
  });
});
