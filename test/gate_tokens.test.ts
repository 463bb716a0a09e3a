// Where the gate's token comes from, on the real CLI: the seed's default token refused off
// loopback, --token-file checked before it is read (regular, at most 64 KiB, private), a warning
// naming both when two sources are set, gate knock's --token-file and ECHOGATE_TOKEN, and
// --timeout 0 refused.

import { afterEach, describe, expect, test } from "vitest";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { RUNTIME, tempSocketPath } from "./_net.ts";
import { runCommand, runEchogate, startCliServer } from "./_child.ts";
import { cleanup } from "./_utils.ts";

const run = (args: string[], env?: Record<string, string>) => runEchogate(args, { env, ms: 15_000 });
const resources = cleanup();
const temporary: string[] = [];
afterEach(async () => {
  await resources.run();
  for (const path of temporary.splice(0)) rmSync(path, { recursive: true, force: true });
});

/** A fresh path in /tmp (removed after the test). */
function tempPath(name: string): string {
  const path = tempSocketPath(name).replace(/\.sock$/, "");
  temporary.push(path);
  return path;
}

function tokenFile(name: string, text: string, mode: number): string {
  const path = tempPath(name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

/** Exit 2 with one "echogate: …" line (then the usage hint), no stack trace, nothing listening. */
function expectUsageError(result: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(result.code).toBe(2);
  const [first, ...rest] = result.stderr.trim().split("\n");
  expect(first).toMatch(/^echogate: /);
  expect(first).toMatch(message);
  expect(rest).toEqual(["Run 'echogate --help' for usage."]);
  expect(result.stdout).not.toMatch(/listening/);
}

describe(`gate tokens on ${RUNTIME}`, () => {
  test(
    "the default token is refused off loopback (exit 2, how to set one), kept with a warning on loopback",
    async () => {
      for (const host of ["0.0.0.0", "::"]) {
        expectUsageError(
          await run(["gate", "serve", "--host", host, "--port", "0"]),
          /default token on "[0-9.:]+", which is not a loopback address: set a token with --token-file F or env ECHOGATE_TOKEN/,
        );
      }
      // With a token, 0.0.0.0 is served (and closed at once).
      const open = resources.child(
        await startCliServer(RUNTIME, ["gate", "serve", "--host", "0.0.0.0", "--port", "0"], {
          ECHOGATE_TOKEN: "s3cret",
        }),
      );
      expect(open.address).toMatch(/^0\.0\.0\.0:\d+$/);
      await open.stop();
      const local = resources.child(
        await startCliServer(RUNTIME, ["gate", "serve", "--host", "127.0.0.1", "--port", "0"]),
      );
      expect(await local.stop("SIGTERM")).toBe(0);
      expect(local.stderr()).toMatch(/warning: using the seed's well-known default token/);
    },
    60_000,
  );

  test("--token-file takes a small regular file only: a FIFO, a directory or 1 MB exit 2 at once", async () => {
    const fifo = tempPath("fifo");
    expect((await runCommand(["mkfifo", fifo])).code).toBe(0);
    const directory = tempPath("dir");
    mkdirSync(directory);
    const big = tokenFile("big", "x".repeat(1_000_000), 0o600);
    for (
      const [file, message] of [
        [fifo, /is a FIFO, not a regular file/],
        [directory, /is a directory, not a regular file/],
        [big, /is over 64 KiB, too big for a token file/],
      ] as const
    ) {
      expectUsageError(
        await run(["gate", "serve", "--port", "0", "--token-file", file]),
        new RegExp(`^echogate: Invalid value for "--token-file": "${file}" ${message.source}`),
      );
    }
  }, 60_000);

  test("a token file other users may read gets a warning, a private one none; gate knock reads one too", async () => {
    const open = tokenFile("open", "s3cret-open\n", 0o644);
    const shared = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token-file", open]),
    );
    expect(await shared.stop("SIGTERM")).toBe(0);
    expect(shared.stderr()).toContain(`warning: "${open}" is open to other users (mode 0644)`);

    const secret = tokenFile("private", "s3cret-private\n", 0o600);
    const server = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token-file", secret]),
    );
    const knock = ["gate", "knock", "127.0.0.1", "--port", String(server.port), "--delay", "0"];
    expect(await run([...knock, "--token-file", secret])).toMatchObject({ code: 0, stdout: "welcome to server!\n" });
    expect((await run(knock)).code).toBe(1);
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.stderr()).toBe("");
  }, 60_000);

  test("env ECHOGATE_TOKEN and --token both set: a warning names both; gate knock reads the env too", async () => {
    const server = resources.child(
      await startCliServer(RUNTIME, ["gate", "serve", "--port", "0", "--token", "decoy"], {
        ECHOGATE_TOKEN: "s3cret-env",
      }),
    );
    const knock = ["gate", "knock", "127.0.0.1", "--port", String(server.port), "--delay", "0"];
    expect(await run(knock, { ECHOGATE_TOKEN: "s3cret-env" })).toMatchObject({
      code: 0,
      stdout: "welcome to server!\n",
    });
    expect((await run([...knock, "--token", "decoy"])).code).toBe(1);
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.stderr()).toMatch(
      /warning: env ECHOGATE_TOKEN and --token are both set; using env ECHOGATE_TOKEN/,
    );
    expect(server.stderr()).not.toContain("s3cret-env");
  }, 60_000);

  test("--timeout 0, which would time every connection out at once, exits 2", async () => {
    expectUsageError(
      await run(["gate", "serve", "--port", "0", "--timeout", "0"]),
      /"--timeout": "0" is not a positive number of seconds/,
    );
  });
});
