// `echogate demo`: the tutorial's scenarios, narrated, through the CLI on each runtime.

import { spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { columns } from "../src/trace/width.ts";
import { cliCommand, runCommand, RUNTIME } from "./_utils.ts";

const cli = cliCommand(RUNTIME);
const demo = (args: string[] = [], env: Record<string, string> = { NO_COLOR: "1" }) =>
  runCommand([...cli, "demo", ...args], { env, ms: 60_000 });

/** What each scenario's programs print, as the tutorial's do, and the reads recv's point shows. */
const SHOWS = {
  gate: ["client prints: welcome to server!", "client prints: please go out!", "server prints: time out"],
  echo: [
    "server prints: Server connected by 127.0.0.1:",
    "client prints: Client received: 'Echo=>Hello network world'",
  ],
  recv: ['recv     11 B "Hello world"', "3 reads (1024 + 1024 + 452 bytes) for one send of 2500 bytes."],
} as const;

// `script` (util-linux, Essential on Debian) gives the demo a terminal.
const scriptMissing = spawnSync("script", ["--version"]).status === 0
  ? undefined
  : "script (util-linux) is not installed";
if (scriptMissing) console.log(`test/demo.test.ts: the terminal colour test skipped: ${scriptMissing}`);

function expectFits(stdout: string): void {
  for (const line of stdout.split("\n")) expect(columns(line), line).toBeLessThanOrEqual(80);
}

describe(`echogate demo on ${RUNTIME}`, () => {
  test("demo runs every scenario, prints what the tutorial's programs print, fits 80 columns, exits 0", async () => {
    const result = await demo([], { NO_COLOR: "" }); // piped: no colour even without NO_COLOR
    expect(result.stdout).not.toContain("\x1b");
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (const line of [...SHOWS.gate, ...SHOWS.echo, ...SHOWS.recv]) expect(result.stdout).toContain(line);
    // recv(1024) of a 2500-byte message: at most 1024 bytes a read, the rest on the next.
    expect(result.stdout).toMatch(/recv +1024 B "abc[^\n]*\n[^\n]*recv +1024 B "klm[^\n]*\n[^\n]*recv +452 B "uvw/);
    expect(result.stdout).toMatch(/socket\+bind\+listen 127\.0\.0\.1:\d+/);
    expect(result.stdout).toMatch(/shortens that to\s1\u00a0s/);
    expect(result.stdout).toMatch(/timeout +no token after \d+ ms/);
    expectFits(result.stdout);
  });

  test("demo --lang zh narrates in the tutorial's Chinese terms and shows the same outputs", async () => {
    const result = await demo(["--lang", "zh", "--runtime-notes"]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    for (
      const word of ["创建套接字+绑定+监听", "接受", "创建套接字+连接", "接收", "发送", "关闭", "超时", "缓冲于接收端"]
    ) {
      expect(result.stdout).toContain(word);
    }
    for (
      const line of ["welcome to server!", "please go out!", "time out", "Client received: 'Echo=>Hello network world'"]
    ) {
      expect(result.stdout).toContain(line);
    }
    expect(result.stdout).toMatch(/接收 +452 字节/);
    expectFits(result.stdout);
  });

  test.each(["gate", "echo", "recv"] as const)("demo %s runs that scenario alone", async (scenario) => {
    const result = await demo([scenario]);
    expect(result.code).toBe(0);
    for (const [name, lines] of Object.entries(SHOWS)) {
      for (const line of lines) {
        if (name === scenario) expect(result.stdout).toContain(line);
        else expect(result.stdout).not.toContain(line);
      }
    }
  });

  test("demo --runtime-notes tells what Python's, Node's, Deno's and Bun's APIs do at each step", async () => {
    const result = await demo(["--runtime-notes"]);
    expect(result.code).toBe(0);
    for (
      const note of [
        "Python: socket(), bind((host, port)), listen(5): three calls",
        "node:net: server.listen(port, host) creates, binds and listens at once",
        "Deno: Deno.listen({ hostname, port }) does all three in one call",
        "Bun: Bun.listen({ hostname, port, socket }) does all three in one call",
        "Python: recv(1024) returns at most 1024 bytes",
        "Python: conn.settimeout(5): recv raises socket.timeout",
      ]
    ) expect(result.stdout).toContain(note);
    expectFits(result.stdout);
    expect((await demo(["echo"])).stdout).not.toContain("Python: socket()");
  });

  test.skipIf(scriptMissing !== undefined)(
    "demo is coloured on a terminal, and plain there with NO_COLOR set",
    async () => {
      const onTerminal = (env: Record<string, string>) =>
        runCommand(
          ["script", "-q", "-e", "-c", [...cli, "demo", "echo"].map((arg) => `'${arg}'`).join(" "), "/dev/null"],
          {
            env,
            ms: 60_000,
          },
        );
      const coloured = await onTerminal({ NO_COLOR: "" });
      expect(coloured.code).toBe(0);
      expect(coloured.stdout).toContain("Client received: 'Echo=>Hello network world'");
      expect(coloured.stdout).toContain("\x1b[34msocket+bind+listen\x1b[0m");
      const plain = await onTerminal({ NO_COLOR: "1" });
      expect(plain.code).toBe(0);
      expect(plain.stdout).toMatch(/socket\+bind\+listen 127\.0\.0\.1:\d+/);
      expect(plain.stdout).not.toContain("\x1b[");
    },
  );

  test.each([
    [["--lang", "fr"], /^echogate: Invalid value for "--lang": "fr" is not one of en, zh$/],
    [["dance"], /^echogate: Unknown scenario "dance": not one of gate, echo, recv, all$/],
  ])("demo %j is a usage error: exit 2, one line and the usage hint", async (args, message) => {
    const result = await demo(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(message),
      "Run 'echogate --help' for usage.",
    ]);
  });
});
