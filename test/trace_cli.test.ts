// `--trace` through the CLI, on this runtime's CLI (this file runs once per runtime): the steps
// of an echo exchange on both sides, a gate timeout and a UDP datagram in their order; standard
// output byte for byte as without it; 80 columns with wide characters; colour on a terminal only.

import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { afterEach, describe, expect, test } from "vitest";
import { waitFor, waitUntil } from "./_wait.ts";
import { readAtLeast, RUNTIME, transport } from "./_net.ts";
import { type ChildServer, cliCommand, runCommand, startCliServer } from "./_child.ts";
import { cleanup } from "./_utils.ts";

const resources = cleanup();
afterEach(() => resources.run());

const cli = cliCommand(RUNTIME);
// startChild sets NO_COLOR=1; these runs check the colour rules themselves.
const COLOUR_ALLOWED = { NO_COLOR: "" };

interface Step {
  conn: number;
  step: string;
  detail: string;
}

/** The trace lines of `stderr`, parsed: `    15.9 ms #1  recv     5 B "hello"`. */
function steps(stderr: string): Step[] {
  const found: Step[] = [];
  for (const line of stderr.split("\n")) {
    const match = /^ *\d+\.\d ms #(\d+) +(\S+) *(.*)$/.exec(line);
    if (match) found.push({ conn: Number(match[1]), step: match[2]!, detail: match[3]! });
  }
  return found;
}

const stepsOf = (stderr: string, conn: number) => steps(stderr).filter((s) => s.conn === conn).map((s) => s.step);

// Terminal columns, counted independently of src/trace/width.ts: CJK ideographs and fullwidth
// forms take two.
function width(line: string): number {
  let columns = 0;
  for (const char of line) columns += /[\u4e00-\u9fff\u3000-\u303f\uff00-\uff60]/.test(char) ? 2 : 1;
  return columns;
}

async function server(args: string[], env?: Record<string, string>): Promise<ChildServer> {
  return resources.child(await startCliServer(RUNTIME, args, { ...COLOUR_ALLOWED, ...env }));
}

describe(`${RUNTIME} CLI --trace`, () => {
  test("an echo exchange: the server's and the client's steps in the tutorial's order, stdout as without --trace", async () => {
    const traced = await server(["echo", "serve", "--port", "0", "--trace"]);
    const plain = await server(["echo", "serve", "--port", "0"]);
    const send = (port: number, trace: string[]) =>
      runCommand([...cli, "echo", "send", "127.0.0.1", "--port", String(port), ...trace, "Hello"], {
        env: COLOUR_ALLOWED,
      });
    const client = await send(traced.port, ["--trace"]);
    const plainClient = await send(plain.port, []);
    expect(client.code).toBe(0);
    expect(client.stdout).toBe("Client received: 'Echo=>Hello'\n");
    expect(client.stdout).toBe(plainClient.stdout);
    expect(plainClient.stderr).toBe("");
    expect(stepsOf(client.stderr, 1)).toEqual(["socket+connect", "send", "recv", "shutdown", "close"]);
    const clientSteps = steps(client.stderr);
    expect(clientSteps[0]!.detail).toMatch(new RegExp(`^to 127\\.0\\.0\\.1:${traced.port} \\(one call`));
    expect(clientSteps[1]!.detail).toBe('5 B "Hello"');
    expect(clientSteps[2]!.detail).toBe('11 B "Echo=>Hello"');

    await waitUntil(() => stepsOf(traced.stderr(), 1).includes("close"), {
      timeoutMs: 10_000,
      what: "the server's close",
    });
    await waitUntil(() => /Server connected by/.test(plain.stdout()), {
      timeoutMs: 10_000,
      what: "the plain server's log",
    });
    expect(stepsOf(traced.stderr(), 0)).toEqual(["socket+bind+listen"]);
    expect(steps(traced.stderr())[0]!.detail).toMatch(
      new RegExp(`^127\\.0\\.0\\.1:${traced.port}( backlog \\d+)? \\(one call`),
    );
    expect(stepsOf(traced.stderr(), 1)).toEqual(["accept", "recv", "send", "recv", "shutdown", "close"]);
    const serverSteps = steps(traced.stderr()).filter((s) => s.conn === 1).map((s) => s.detail);
    expect(serverSteps.slice(0, 4)).toEqual([
      expect.stringMatching(/^from 127\.0\.0\.1:\d+$/),
      '5 B "Hello"',
      '11 B "Echo=>Hello"',
      "0 B (EOF)",
    ]);
    // Standard output: the seed's lines, the same as the untraced server's but for the ports.
    const ports = (out: string) => out.replace(/:\d+/g, ":PORT");
    expect(ports(traced.stdout())).toBe(ports(plain.stdout()));
    expect(traced.stdout()).toMatch(
      /^echo server listening on 127\.0\.0\.1:\d+\nServer connected by 127\.0\.0\.1:\d+\n$/,
    );
    expect(traced.stderr()).not.toContain("\x1b");
  });

  test("a gate timeout: accept, timeout, shutdown, EOF, close; the token is never shown", async () => {
    const gate = await server(["gate", "serve", "--port", "0", "--timeout", "0.5", "--trace"]);
    const silent = await transport.connect({ hostname: "127.0.0.1", port: gate.port });
    resources.add(silent);
    await waitUntil(() => stepsOf(gate.stderr(), 1).includes("timeout"), {
      timeoutMs: 10_000,
      what: "the timeout step",
    });
    silent.close();
    await waitUntil(() => stepsOf(gate.stderr(), 1).includes("close"), { timeoutMs: 10_000, what: "the close step" });
    expect(stepsOf(gate.stderr(), 1)).toEqual(["accept", "timeout", "shutdown", "recv", "close"]);
    expect(steps(gate.stderr()).find((s) => s.step === "timeout")!.detail).toMatch(/^no token after \d+ ms$/);
    expect(gate.stdout()).toMatch(/^time out$/m);

    // A knock, traced on both sides: the token's bytes are counted, never shown.
    const knock = await runCommand(
      [
        ...cli,
        "gate",
        "knock",
        "127.0.0.1",
        "--port",
        String(gate.port),
        "--delay",
        "0",
        "--token",
        "s3cret",
        "--trace",
      ],
      { env: COLOUR_ALLOWED },
    );
    expect(knock.stdout).toBe("please go out!\n");
    expect(stepsOf(knock.stderr, 1)).toEqual(["socket+connect", "send", "recv", "recv", "close"]);
    expect(knock.stderr).toContain("send     6 B (token: not shown)");
    await waitUntil(() => stepsOf(gate.stderr(), 2).includes("close"), {
      timeoutMs: 10_000,
      what: "the knock's close",
    });
    expect(gate.stderr()).toContain("recv     6 B (token: not shown)");
    expect(gate.stderr() + knock.stderr).not.toContain("s3cret");
  });

  test("a UDP datagram: socket+bind, sendto, recvfrom, close; stdout as without --trace", async () => {
    const udp = await server(["echo", "serve", "--udp", "--port", "0", "--trace"]);
    const send = (trace: string[]) =>
      runCommand([...cli, "echo", "send", "127.0.0.1", "--udp", "--port", String(udp.port), ...trace, "Hello"], {
        env: COLOUR_ALLOWED,
      });
    const client = await send(["--trace"]);
    const plain = await send([]);
    expect(client.code).toBe(0);
    expect(client.stdout).toBe(plain.stdout);
    expect(client.stdout).toBe("Client received: 'Echo=>Hello'\n");
    expect(stepsOf(client.stderr, 0)).toEqual(["socket+bind", "sendto", "recvfrom", "close"]);
    const [, sendto, recvfrom] = steps(client.stderr);
    expect(sendto!.detail).toBe(`to 127.0.0.1:${udp.port} 5 B "Hello"`);
    expect(recvfrom!.detail).toBe(`from 127.0.0.1:${udp.port} 11 B "Echo=>Hello"`);
    await waitUntil(() => stepsOf(udp.stderr(), 0).length >= 5, { timeoutMs: 10_000, what: "the server's steps" });
    expect(stepsOf(udp.stderr(), 0)).toEqual(["socket+bind", "recvfrom", "sendto", "recvfrom", "sendto"]);
    expect(steps(udp.stderr())[1]!.detail).toMatch(/^from 127\.0\.0\.1:\d+ 5 B "Hello"$/);
  });

  test("every line fits 80 columns, wide characters counted twice; peer bytes escaped, binary as hex", async () => {
    const echo = await server(["echo", "serve", "--port", "0", "--trace"]);
    const wide = "接收发送".repeat(20);
    const client = await runCommand(
      [
        ...cli,
        "echo",
        "send",
        "127.0.0.1",
        "--port",
        String(echo.port),
        "--trace",
        wide,
        "tab\there\nline",
        "\x1b[31mred",
      ],
      { env: COLOUR_ALLOWED },
    );
    expect(client.code).toBe(0);
    await waitUntil(() => stepsOf(echo.stderr(), 1).includes("close"), {
      timeoutMs: 10_000,
      what: "the server's close",
    });
    // Binary: a raw connection sends bytes that are not UTF-8.
    const raw = resources.add(await transport.connect({ hostname: "127.0.0.1", port: echo.port }));
    await raw.write(new Uint8Array([0xff, 0x00, 0x80, 0x41]));
    await waitUntil(() => stepsOf(echo.stderr(), 2).includes("send"), {
      timeoutMs: 10_000,
      what: "the binary chunk's answer",
    });
    const lines = (client.stderr + echo.stderr()).split("\n").filter((line) => line !== "");
    expect(steps(client.stderr + echo.stderr()).length).toBe(lines.length);
    for (const line of lines) expect(width(line), line).toBeLessThanOrEqual(80);
    expect(lines.some((line) => line.includes("接收") && width(line) >= 79)).toBe(true);
    // Text with a tab or a line end is text, escaped; a terminal control makes it binary.
    expect(client.stderr).toContain('send     13 B "tab\\x09here\\x0Aline"');
    expect(client.stderr).toContain("send     8 B hex 1b 5b 33 31 6d 72 65 64");
    // deno-lint-ignore no-control-regex
    expect(client.stderr + echo.stderr()).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
    expect(echo.stderr()).toMatch(/#2 +recv +4 B hex ff 00 80 41$/m);
  });
});

describe(`${RUNTIME} CLI --trace over TLS, behind a PROXY header and on a unix socket`, () => {
  const send = (args: string[]) =>
    runCommand([...cli, "echo", "send", ...args, "--trace", "Hi"], { env: COLOUR_ALLOWED });
  const closed = (child: ChildServer) =>
    waitUntil(() => stepsOf(child.stderr(), 1).includes("close"), { timeoutMs: 10_000, what: "the server's close" });

  test("TLS: the handshake's version (and cipher, where the runtime tells) after accept and connect", async () => {
    const tls = await server(["echo", "serve", "--port", "0", "--tls-self-signed", "--trace"]);
    const client = await send(["127.0.0.1", "--port", String(tls.port), "--tls", "--insecure"]);
    expect(client.stdout).toBe("Client received: 'Echo=>Hi'\n");
    expect(stepsOf(client.stderr, 1)).toEqual(["socket+connect", "tls", "send", "recv", "shutdown", "close"]);
    await closed(tls);
    expect(stepsOf(tls.stderr(), 1)).toEqual(["accept", "tls", "recv", "send", "recv", "shutdown", "close"]);
    for (const output of [client.stderr, tls.stderr()]) {
      expect(steps(output).find((s) => s.step === "tls")!.detail).toMatch(/^TLSv1\.[23]( cipher [\w-]+)?$/);
    }
  });

  test("PROXY: the client the header names, after the header's recv", async () => {
    const proxied = await server(["echo", "serve", "--port", "0", "--proxy-protocol", "--trace"]);
    const client = await send([
      "127.0.0.1",
      "--port",
      String(proxied.port),
      "--proxy-header",
      "v1",
      "--proxy-source",
      "203.0.113.7:4242",
    ]);
    expect(client.stdout).toBe("Client received: 'Echo=>Hi'\n");
    expect(client.stderr).toMatch(/#1 +send +\d+ B "PROXY TCP4 203\.0\.113\.7 127\.0\.0\.1 4242 \d+/);
    await closed(proxied);
    const server1 = stepsOf(proxied.stderr(), 1);
    expect(server1.slice(0, 3)).toEqual(["accept", "recv", "proxy"]);
    expect(server1.at(-1)).toBe("close");
    expect(proxied.stderr()).toMatch(/#1 +proxy +client 203\.0\.113\.7:4242$/m);
  });

  test("a unix socket: listen on its path, the same steps as TCP", async () => {
    // Short enough for the listen line to show it whole.
    const path = `/tmp/eg-trace-${RUNTIME}-${globalThis.process.pid}.sock`;
    resources.add({ close: () => rmSync(path, { force: true }) });
    const unix = await server(["echo", "serve", "--unix", path, "--trace"]);
    const client = await send(["--unix", path]);
    expect(client.stdout).toBe("Client received: 'Echo=>Hi'\n");
    expect(stepsOf(client.stderr, 1)).toEqual(["socket+connect", "send", "recv", "shutdown", "close"]);
    await closed(unix);
    expect(steps(unix.stderr())[0]!.detail).toMatch(
      new RegExp(`^unix:${path.replaceAll(".", "\\.")}( backlog \\d+)?( |$)`),
    );
    expect(stepsOf(unix.stderr(), 1)).toEqual(["accept", "recv", "send", "recv", "shutdown", "close"]);
  });
});

describe(`${RUNTIME} CLI --trace, standard error not read`, () => {
  test("trace lines are dropped and counted, the server keeps answering", async () => {
    // A server whose standard error nobody reads (a stopped terminal): its pipe fills at once.
    const child = spawn(cli[0]!, [...cli.slice(1), "echo", "serve", "--port", "0", "--trace"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: { ...globalThis.process.env, NO_COLOR: "1" },
    });
    const exited = new Promise((resolve) => child.on("close", resolve));
    resources.add({
      close: async () => {
        try {
          globalThis.process.kill(-child.pid!, "SIGKILL");
        } catch {
          // Gone already.
        }
        await exited;
      },
    });
    child.stderr!.pause();
    let out = "";
    child.stdout!.on("data", (chunk) => (out += chunk));
    const port = Number(await waitFor(() => /listening on \S+:(\d+)/.exec(out)?.[1], 15_000, "the server to listen"));
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port }));
    // Two lines of about 80 bytes per exchange: well over the 1 MiB queue and the pipe's buffer.
    const message = new TextEncoder().encode("x".repeat(40));
    for (let i = 0; i < 10_000; i++) {
      await socket.write(message);
      expect((await readAtLeast(socket, 46, 30_000)).length).toBe(46);
    }
    let err = "";
    child.stderr!.on("data", (chunk) => (err += chunk));
    child.stderr!.resume();
    const dropped = await waitFor(
      () => /Log lines dropped: (\d+) \(standard error/.exec(err)?.[1],
      15_000,
      "the drop report",
    );
    expect(Number(dropped)).toBeGreaterThan(1000);
  }, 120_000);
});

describe(`${RUNTIME} CLI --trace colour`, () => {
  // `script` gives the client a terminal for standard output and error.
  const onTerminal = async (port: number, env: Record<string, string>) =>
    await runCommand([
      "script",
      "-q",
      "-e",
      "-c",
      [...cli, "echo", "send", "127.0.0.1", "--port", String(port), "--trace", "Hi"].map((arg) => `'${arg}'`).join(" "),
      "/dev/null",
    ], { env });

  test("coloured on a terminal; plain with NO_COLOR set or when piped", async () => {
    const echo = await server(["echo", "serve", "--port", "0"]);
    const coloured = await onTerminal(echo.port, { NO_COLOR: "" });
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toContain("Client received: 'Echo=>Hi'");
    expect(coloured.stdout).toContain("\x1b[36mrecv\x1b[0m");
    const noColor = await onTerminal(echo.port, { NO_COLOR: "1" });
    expect(noColor.code).toBe(0);
    expect(noColor.stdout).toMatch(/ms #1 +recv +8 B "Echo=>Hi"/);
    expect(noColor.stdout).not.toContain("\x1b[");
    const piped = await runCommand(
      [...cli, "echo", "send", "127.0.0.1", "--port", String(echo.port), "--trace", "Hi"],
      { env: { NO_COLOR: "" } },
    );
    expect(piped.stderr).toMatch(/ms #1 +recv +8 B "Echo=>Hi"/);
    expect(piped.stderr).not.toContain("\x1b[");
  });
});
