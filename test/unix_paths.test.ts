// What `--unix PATH` may do to the file system: only a stale socket is replaced; a regular file,
// a symlink or a directory at the path is refused and left as it was. New sockets are created
// 0600 (or --unix-mode) whatever the umask. And `bench --hdr` checks its path before any load.

import { afterEach, describe, expect, test } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { serveEcho } from "../src/mod.ts";
import { waitUntil } from "./_wait.ts";
import { RUNTIME, tempSocketPath, transport } from "./_net.ts";
import { argv, cliCommand, runEchogate, startChild, startCliServer } from "./_child.ts";
import { cleanup, recordingLogger } from "./_utils.ts";

const cli = cliCommand(RUNTIME);
const run = (args: string[]) => runEchogate(args);
const resources = cleanup();
const paths: string[] = [];
afterEach(async () => {
  await resources.run();
  for (const path of paths.splice(0)) rmSync(path, { recursive: true, force: true });
});

/** A fresh path under /tmp, removed after the test. */
function tempPath(name: string): string {
  const path = tempSocketPath(name);
  paths.push(path);
  return path;
}

/** Leaves a socket file nothing listens on at `path`, as a server killed with SIGKILL does. */
function staleSocket(path: string): void {
  execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path]);
  expect(lstatSync(path).isSocket()).toBe(true);
}

/** Starts `echo serve --unix path ...` under umask 000 and resolves once it listens. */
async function serveUnderUmask000(path: string, extra: string[] = [], command = cli) {
  const child = resources.child(
    startChild(["sh", "-c", 'umask 000; exec "$@"', "sh", ...command, "echo", "serve", "--unix", path, ...extra]),
  );
  await waitUntil(
    () => {
      if (child.process.exitCode !== null) throw new Error(`Server exited early: ${child.stderr()}`);
      return child.stdout().includes("listening on");
    },
    { timeoutMs: 15_000, what: `${RUNTIME} server to listen` },
  );
  return child;
}

describe(`--unix on ${RUNTIME} replaces a stale socket and nothing else`, () => {
  const refusals: [string, (path: string) => () => void][] = [
    ["a regular file", (path) => {
      writeFileSync(path, "data\n");
      return () => expect(readFileSync(path, "utf8")).toBe("data\n");
    }],
    ["a symlink to a regular file", (path) => {
      const target = tempPath("target");
      writeFileSync(target, "data\n");
      symlinkSync(target, path);
      return () => {
        expect(lstatSync(path).isSymbolicLink()).toBe(true);
        expect(readFileSync(target, "utf8")).toBe("data\n");
      };
    }],
    ["a directory", (path) => {
      mkdirSync(path);
      writeFileSync(`${path}/inside`, "data\n");
      return () => expect(readFileSync(`${path}/inside`, "utf8")).toBe("data\n");
    }],
  ];
  for (const [what, make] of refusals) {
    test(`${what} at the path: exit 1, one line naming the path, nothing touched`, async () => {
      const path = tempPath("taken");
      const unchanged = make(path);
      const result = await run(["echo", "serve", "--unix", path]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain(path);
      expect(result.stderr).toMatch(/not a unix socket/);
      unchanged();
    });
  }

  test("a stale socket is replaced; a live one is in use", async () => {
    const path = tempPath("stale");
    staleSocket(path);
    const server = resources.child(await startCliServer(RUNTIME, ["echo", "serve", "--unix", path]));
    expect(server.address).toBe(`unix:${path}`);
    const sent = await run(["echo", "send", "--unix", path, "hi"]);
    expect(sent.stdout).toBe("Client received: 'Echo=>hi'\n");
    const second = await run(["echo", "serve", "--unix", path]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/in use/);
    expect(lstatSync(path).isSocket()).toBe(true); // the live server's socket stays
  });

  test("the library refuses the same way: a regular file at `path` is kept", async () => {
    const path = tempPath("library");
    writeFileSync(path, "data\n");
    await expect(serveEcho({ transport, path })).rejects.toThrow(/not a unix socket/);
    expect(readFileSync(path, "utf8")).toBe("data\n");
  });

  test("the socket is created 0600 under umask 000; --unix-mode 0660 gives 0660", async () => {
    const path = tempPath("mode");
    const first = await serveUnderUmask000(path);
    expect((lstatSync(path).mode & 0o777).toString(8)).toBe("600");
    await first.stop("SIGTERM");
    rmSync(path, { force: true });
    await serveUnderUmask000(path, ["--unix-mode", "0660"]);
    expect((lstatSync(path).mode & 0o777).toString(8)).toBe("660");
  });

  test("on Deno without --allow-sys (no umask), the socket is still 0600", async () => {
    if (RUNTIME !== "deno") return; // the fallback (chmod before the first accept) is Deno's
    const path = tempPath("deno-mode");
    const deno = cliCommand("deno").filter((arg) => arg !== "-A");
    await serveUnderUmask000(path, [], [
      deno[0]!,
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      ...deno.slice(2),
    ]);
    expect((lstatSync(path).mode & 0o777).toString(8)).toBe("600");
  });

  test("--unix-mode: a bad value or no --unix is a usage error", async () => {
    for (
      const [args, message] of [
        [["--unix", tempPath("bad"), "--unix-mode", "0999"], /"--unix-mode".*octal/],
        [["--unix", tempPath("bad"), "--unix-mode", "rw"], /"--unix-mode".*octal/],
        [["--unix-mode", "0600"], /"--unix-mode" needs --unix/],
      ] as const
    ) {
      const result = await run(["echo", "serve", ...args]);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});

describe(`bench --hdr on ${RUNTIME}`, () => {
  test("a path that cannot be written: exit 2 naming it, before any connection", async () => {
    const logger = recordingLogger();
    const server = resources.add(await serveEcho({ transport, path: tempPath("bench"), logger }));
    const unix = server.addr.transport === "unix" ? server.addr.path : "";
    for (const hdr of ["/nonexistent-dir/x.hdr", tempPath("dir")]) {
      if (!hdr.startsWith("/nonexistent")) mkdirSync(hdr);
      const result = await run(["bench", "--unix", unix, "--duration", "5", "--conns", "1", "--hdr", hdr]);
      expect(result.code, hdr).toBe(2);
      expect(result.stderr).toContain(hdr);
    }
    expect(logger.events.filter((event) => event.event === "connect")).toEqual([]);
    expect(existsSync("/nonexistent-dir")).toBe(false);
  });

  test("a write that fails at the end still prints the report first (--json), then the error", async () => {
    // /dev/full opens fine and fails every write (ENOSPC), even for root.
    if (!existsSync("/dev/full")) return;
    const server = resources.add(await serveEcho({ transport, path: tempPath("bench-full") }));
    const unix = server.addr.transport === "unix" ? server.addr.path : "";
    const result = await run(argv`bench --unix ${unix} --duration 0.3 --conns 1 --json --hdr /dev/full`);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ errors: 0, mismatches: 0 });
    expect(result.stderr).toMatch(/cannot write "--hdr" file \/dev\/full/);
  });
});
