// Every runtime's client against every runtime's server (this file runs once per runtime, so
// the three runs cover the 3x3 matrix), and echogate against the seed's Python 3 programs.

import { existsSync, readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { knockGate, sendEcho, serveEcho, serveGate } from "../src/mod.ts";
import { REFUSAL, WELCOME } from "../src/gate/mod.ts";
import {
  type ChildServer,
  cleanup,
  portOf,
  ROOT,
  runCommand,
  RUNTIME,
  RUNTIMES,
  startCliServer,
  startSeedServer,
  text,
  transport,
  waitUntil,
} from "./_utils.ts";

for (const serverRuntime of RUNTIMES) {
  describe(`${RUNTIME} clients against ${serverRuntime} servers`, () => {
    let echo: ChildServer;
    let gate: ChildServer;
    beforeAll(async () => {
      [echo, gate] = await Promise.all([
        startCliServer(serverRuntime, ["echo", "serve", "--port", "0"]),
        startCliServer(serverRuntime, ["gate", "serve", "--port", "0", "--token", "open sesame"]),
      ]);
    });
    afterAll(async () => {
      await Promise.all([echo?.stop(), gate?.stop()]);
    });

    test("echo: each message comes back behind Echo=>", async () => {
      const replies = await sendEcho({ transport, hostname: "127.0.0.1", port: echo.port, messages: ["hi", "über ✓"] });
      expect(replies.map(text)).toEqual(["Echo=>hi", "Echo=>über ✓"]);
      // Log lines go out at the end of the server's event-loop turn, possibly after the reply.
      await waitUntil(
        () => /Server connected by 127\.0\.0\.1:\d+/.test(echo.stdout()),
        { timeoutMs: 5000, what: "the connect log line" },
      );
    });

    test("gate: the right token is welcomed and a wrong one refused", async () => {
      const target = { transport, hostname: "127.0.0.1", port: gate.port, delayMs: 0 };
      expect(await knockGate({ ...target, token: "open sesame\n" })).toEqual({ welcomed: true, reply: WELCOME });
      expect(await knockGate({ ...target, token: "1" })).toEqual({ welcomed: false, reply: REFUSAL });
    });
  });
}

describe(`seed programs (Python 3 ports) and ${RUNTIME}`, () => {
  const resources = cleanup();
  afterEach(() => resources.run());
  // The seed's Python 3 ports, kept in the repository (test/seed/README.md).
  const seed = `${ROOT}test/seed`;
  const shared = `${ROOT}../shared/seed`;
  if (!existsSync(shared)) console.log(`skipping the seed copy check: ${shared} is not beside this clone (CI has it)`);

  test.skipIf(!existsSync(shared))("test/seed holds the shared seed's programs unchanged", () => {
    for (const name of ["echo_server.py", "echo_client.py", "gate_server.py", "gate_client.py"]) {
      expect(readFileSync(`${seed}/${name}`, "utf8"), name).toBe(readFileSync(`${shared}/${name}`, "utf8"));
    }
  });

  test("the seed's echo_client.py gets its replies from echogate's echo server", async () => {
    const server = resources.add(await serveEcho({ transport, port: 0 }));
    const { code, stdout } = await runCommand([
      "python3",
      `${seed}/echo_client.py`,
      "127.0.0.1",
      "Hello",
      "network world",
    ], {
      env: { ECHO_PORT: String(portOf(server)) },
    });
    expect(code).toBe(0);
    expect(stdout).toBe("Client received: b'Echo=>Hello'\nClient received: b'Echo=>network world'\n");
  });

  test("the seed's gate_client.py is welcomed with 1 and sent away with anything else", async () => {
    const server = resources.add(await serveGate({ transport, port: 0 }));
    const port = String(portOf(server));
    const welcomed = await runCommand(["python3", `${seed}/gate_client.py`, port, "1", "0.05"]);
    expect(welcomed.stdout).toBe("welcome to server!\n");
    const refused = await runCommand(["python3", `${seed}/gate_client.py`, port, "2", "0"]);
    expect(refused.stdout).toBe("please go out!\n");
  });

  test("echogate's echo client talks to the seed's echo_server.py", async () => {
    const server = resources.child(await startSeedServer("echo_server.py"));
    const replies = await sendEcho({ transport, hostname: "127.0.0.1", port: server.port, messages: ["one", "two"] });
    expect(replies.map(text)).toEqual(["Echo=>one", "Echo=>two"]);
  });

  test("echogate's knock is welcomed by the seed's gate_server.py only with its token", async () => {
    const server = resources.child(await startSeedServer("gate_server.py"));
    const target = { transport, hostname: "127.0.0.1", port: server.port, delayMs: 0 };
    expect(await knockGate({ ...target, token: "1" })).toEqual({ welcomed: true, reply: WELCOME });
    expect(await knockGate({ ...target, token: "2" })).toEqual({ welcomed: false, reply: REFUSAL });
  });
});
