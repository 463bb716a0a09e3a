// echogate faults: toxiproxy's API driven by its own Node client, and each toxic over real sockets.

import { describe, expect, test } from "vitest";
import * as net from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Toxiproxy } from "toxiproxy-node-client";
import { deadline, waitFor, waitUntil } from "./_wait.ts";
import { bytes, readAll, RUNTIME, text } from "./_net.ts";
import { cliCommand, runCommand, startCliServer } from "./_child.ts";
import { useCleanup } from "./_utils.ts";
import { api, faultsKit, roundTrip } from "./_faults.ts";

const resources = useCleanup();

const { startFaults, startEcho, startCountingUpstream, connect } = faultsKit(resources);

/** The toxiproxy client's full create/read/update/delete pass against the server at `base`. */
async function clientPass(base: string, upstream: string): Promise<void> {
  const toxiproxy = new Toxiproxy(base);
  expect(JSON.parse(await toxiproxy.getVersion())).toHaveProperty("version");
  const proxy = await toxiproxy.createProxy({ name: "echo", listen: "localhost:0", upstream });
  expect(proxy.listen).toMatch(/^127\.0\.0\.1:[1-9]\d*$/); // resolved to the real IP and port
  expect(proxy.enabled).toBe(true);
  const socket = await connect(proxy.listen);
  expect(text(await roundTrip(socket, bytes("hello")))).toBe("hello");

  expect(Object.keys(await toxiproxy.getAll())).toEqual(["echo"]);
  expect((await toxiproxy.get("echo")).upstream).toBe(upstream);

  // The client sends only type and attributes: the defaults fill in the rest.
  const toxic = await proxy.addToxic({ type: "limit_data", attributes: { bytes: 3 } } as never);
  expect(toxic.toJson()).toEqual({
    name: "limit_data_downstream",
    type: "limit_data",
    stream: "downstream",
    toxicity: 1,
    attributes: { bytes: 3 },
  });
  const fetched = await proxy.getToxic<{ bytes: number }>("limit_data_downstream");
  expect(fetched.attributes.bytes).toBe(3);
  const updated = await fetched.update({ attributes: { bytes: 4 }, toxicity: 1 } as never);
  expect(updated.attributes).toEqual({ bytes: 4 });
  // Applies to the open connection: 4 bytes more, then it closes.
  await socket.write(bytes("abcdefgh"));
  expect(text(await readAll(socket))).toBe("abcd");

  await updated.remove();
  expect(await (await fetch(`${base}/proxies/echo/toxics`)).json()).toEqual([]);

  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream } as never);
  expect(disabled.enabled).toBe(false);
  await expect(connect(proxy.listen)).rejects.toThrow();
  await toxiproxy.reset(); // re-enables
  expect((await toxiproxy.get("echo")).enabled).toBe(true);
  expect(text(await roundTrip(await connect(proxy.listen), bytes("again")))).toBe("again");

  const populated = await toxiproxy.populate([{ name: "second", listen: "127.0.0.1:0", upstream }] as never);
  expect(Object.keys(populated)).toEqual(["second"]);
  await proxy.remove();
  await expect(toxiproxy.get("echo")).rejects.toThrow(/404/);
  await (await toxiproxy.get("second")).remove();
  expect(await toxiproxy.getAll()).toEqual({});
}

describe(`echogate faults on ${RUNTIME}`, () => {
  test("toxiproxy-node-client drives a full create/read/update/delete pass in process", async () => {
    const { base } = await startFaults();
    await clientPass(base, await startEcho());
  });

  test("toxiproxy-node-client drives the CLI the same way; SIGTERM exits 0", async () => {
    const server = resources.child(await startCliServer(RUNTIME, ["faults", "--port", "0", "--seed", "3"]));
    expect(server.stdout()).toMatch(/^faults control listening on 127\.0\.0\.1:\d+$/m);
    await clientPass(`http://${server.address}`, await startEcho());
    expect(await server.stop("SIGTERM")).toBe(0);
  });

  test("--config creates its proxies at start; a bad one is one line and a non-zero exit", async () => {
    const upstream = await startEcho();
    const dir = mkdtempSync(join(tmpdir(), "echogate-faults-"));
    const config = join(dir, "proxies.json");
    writeFileSync(config, JSON.stringify([{ name: "from-config", listen: "127.0.0.1:0", upstream }]));
    const server = resources.child(await startCliServer(RUNTIME, ["faults", "--port", "0", "--config", config]));
    const proxy = (await api(`http://${server.address}`, "GET", "/proxies/from-config")).json;
    expect(proxy).toMatchObject({ enabled: true, upstream });
    expect(text(await roundTrip(await connect(proxy.listen as string), bytes("cfg")))).toBe("cfg");
    expect(await server.stop("SIGTERM")).toBe(0);

    writeFileSync(config, JSON.stringify([{ name: "no-upstream" }]));
    const cli = cliCommand(RUNTIME);
    for (
      const [args, code, message] of [
        [["faults", "--config", config], 1, /missing required field: upstream at proxy 1/],
        [["faults", "--config", join(dir, "missing.json")], 2, /Cannot read --config/],
        [["faults", "--seed", "soon"], 2, /"--seed"/],
      ] as const
    ) {
      const result = await runCommand([...cli, ...args]);
      expect(result.code, args.join(" ")).toBe(code);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test("--json logs each change and each connection with the toxics that applied to it", async () => {
    const upstream = await startEcho();
    const server = resources.child(await startCliServer(RUNTIME, ["faults", "--port", "0", "--json"]));
    const base = `http://${server.address}`;
    const proxy = (await api(base, "POST", "/proxies", { name: "j\u001b", upstream })).json;
    await api(base, "POST", `/proxies/${encodeURIComponent("j\u001b")}/toxics`, {
      type: "limit_data",
      attributes: { bytes: 2 },
    });
    const socket = await connect(proxy.listen as string);
    await socket.write(bytes("abcd"));
    expect(text(await readAll(socket))).toBe("ab");
    const events = await waitFor(
      () => {
        const lines = server.stdout().trim().split("\n").map((line) => JSON.parse(line));
        return lines.some((e) => e.event === "close") ? lines : undefined;
      },
      10_000,
      "a close event",
    );
    expect(events.map((e) => e.event)).toEqual(["listening", "proxy-created", "toxic-added", "connect", "close"]);
    expect(events[2].toxic).toMatchObject({ name: "limit_data_downstream", attributes: { bytes: 2 } });
    expect(events[4]).toMatchObject({ proxy: "j\u001b", bytesIn: 4, bytesOut: 2, toxics: ["limit_data_downstream"] });
    expect(server.stdout()).not.toContain("\u001b"); // the escape byte a client sent stays escaped
    expect(await server.stop("SIGTERM")).toBe(0);
  });

  test("the API's status codes, error bodies, request ids and browser refusal are toxiproxy's", async () => {
    const { base } = await startFaults();
    const upstream = await startEcho();
    const created = await api(base, "POST", "/proxies", { name: "p", upstream });
    expect(created.status).toBe(201);
    expect(created.headers.get("x-toxiproxy-request-id")).toMatch(/^[0-9a-f]+$/);
    expect(created.json).toMatchObject({ name: "p", upstream, enabled: true, toxics: [] });
    expect(await api(base, "POST", "/proxies", { name: "p", upstream })).toMatchObject({
      status: 409,
      json: { error: "proxy already exists", status: 409 },
    });
    const oddHost = await api(base, "POST", "/proxies", { name: "q", upstream: "\u001b[31m:80" });
    expect(oddHost.status).toBe(400); // host names are letters, digits, dots, dashes: nothing a terminal acts on
    expect(oddHost.json.error).toMatch(/upstream must be HOST:PORT/);
    expect((await api(base, "POST", "/proxies", { upstream })).json).toEqual({
      error: "missing required field: name",
      status: 400,
    });
    expect((await api(base, "GET", "/proxies/nope")).json).toEqual({ error: "proxy not found", status: 404 });
    expect((await api(base, "GET", "/proxies/p/toxics/nope")).json).toEqual({ error: "toxic not found", status: 404 });

    const toxic = await api(base, "POST", "/proxies/p/toxics", { type: "latency", attributes: { latency: 5 } });
    expect(toxic.status).toBe(200); // toxiproxy answers 200, not 201
    expect(toxic.json).toEqual({
      name: "latency_downstream",
      type: "latency",
      stream: "downstream",
      toxicity: 1,
      attributes: { latency: 5, jitter: 0 },
    });
    // Names are unique over both streams.
    const again = await api(base, "POST", "/proxies/p/toxics", {
      name: "latency_downstream",
      type: "latency",
      stream: "upstream",
    });
    expect(again.json).toEqual({ error: "toxic already exists", status: 409 });
    expect((await api(base, "POST", "/proxies/p/toxics", { type: "latency", stream: "sideways" })).status).toBe(400);
    expect((await api(base, "POST", "/proxies/p/toxics", { type: "earthquake" })).json).toEqual({
      error: "invalid toxic type",
      status: 400,
    });
    // Partial updates: PATCH merges attributes and keeps the rest.
    const patched = await api(base, "PATCH", "/proxies/p/toxics/latency_downstream", { attributes: { jitter: 2 } });
    expect(patched.json).toMatchObject({ toxicity: 1, attributes: { latency: 5, jitter: 2 } });
    const proxy = await api(base, "PATCH", "/proxies/p", { enabled: false });
    expect(proxy.json).toMatchObject({ enabled: false, upstream });
    expect((await api(base, "GET", "/proxies/p/toxics")).json).toHaveLength(1);
    expect((await api(base, "DELETE", "/proxies/p/toxics/latency_downstream")).status).toBe(204);
    expect((await api(base, "POST", "/reset")).status).toBe(204);
    expect((await api(base, "GET", "/proxies/p")).json).toMatchObject({ enabled: true, toxics: [] });

    const browser = await api(base, "GET", "/version", undefined, { "user-agent": "Mozilla/5.0 (X11)" });
    expect(browser.status).toBe(403);
    expect((await api(base, "GET", "/nowhere")).status).toBe(404);
    expect((await api(base, "GET", "/proxies/%E0%A4%A")).status).toBe(400); // not a crash, not a 500
    expect((await api(base, "DELETE", "/proxies/p")).status).toBe(204);
  });

  test("bad attributes get a 400 naming the field, an oversized body a 413; the server keeps serving", async () => {
    const { base } = await startFaults();
    await api(base, "POST", "/proxies", { name: "p", upstream: await startEcho() });
    const cases: [unknown, RegExp][] = [
      [{ type: "bandwidth", attributes: { rate: -1 } }, /attributes\.rate/], // toxiproxy accepts it, then panics
      [{ type: "slicer", attributes: { average_size: 0 } }, /attributes\.average_size/],
      [{ type: "latency", attributes: { latency: "100" } }, /attributes\.latency/],
      [{ type: "latency", attributes: { latency: 1.5 } }, /attributes\.latency/],
      [{ type: "limit_data", toxicity: 2 }, /toxicity/],
      [{ type: "limit_data", toxicity: -0.1 }, /toxicity/],
      [{ type: "corrupt", attributes: { probability: 1.5 } }, /attributes\.probability/],
      [{ type: "latency", name: 7 }, /name/],
      ["{not json", /bad request body/],
      [[1, 2], /bad request body/],
    ];
    for (const [body, message] of cases) {
      const response = await api(base, "POST", "/proxies/p/toxics", body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.json.error, JSON.stringify(body)).toMatch(message);
    }
    const huge = await api(base, "POST", "/proxies", "x".repeat(1024 * 1024 + 1));
    expect(huge.status).toBe(413);
    expect((await api(base, "GET", "/proxies/p")).json).toMatchObject({ toxics: [] });
  });

  test("populate checks every proxy before creating any", async () => {
    const { base } = await startFaults();
    const upstream = await startEcho();
    const bad = await api(base, "POST", "/populate", [{ name: "a", upstream }, { name: "b" }]);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: "missing required field: upstream at proxy 2", status: 400 });
    expect((await api(base, "GET", "/proxies")).json).toEqual({});
    const good = await api(base, "POST", "/populate", [{ name: "a", upstream }, { name: "b", upstream }]);
    expect(good.status).toBe(201);
    expect((good.json.proxies as { name: string }[]).map((p) => p.name)).toEqual(["a", "b"]);
  });

  test("/metrics counts bytes per proxy and direction in toxiproxy's names", async () => {
    const { faults, base } = await startFaults();
    const upstream = await startEcho();
    const proxy = await faults.createProxy({ name: "m", upstream });
    await roundTrip(await connect(proxy.listen), bytes("12345"));
    const metrics = (await api(base, "GET", "/metrics")).raw;
    const labels = `listener="${proxy.listen}",proxy="m",upstream="${upstream}"`;
    expect(metrics).toContain(`toxiproxy_proxy_received_bytes_total{direction="upstream",${labels}} 5`);
    expect(metrics).toContain(`toxiproxy_proxy_sent_bytes_total{direction="downstream",${labels}} 5`);
  });

  test("latency: added to an open connection, every answer takes at least that long", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "slow", upstream: await startEcho() });
    const socket = await connect(proxy.listen);
    expect(text(await roundTrip(socket, bytes("warm")))).toBe("warm");
    faults.addToxic("slow", { type: "latency", attributes: { latency: 150 } });
    const start = Date.now();
    expect(text(await roundTrip(socket, bytes("late")))).toBe("late");
    expect(Date.now() - start).toBeGreaterThanOrEqual(145);
  });

  test("limit_data: exactly that many bytes, then a normal close", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "lim", upstream: await startEcho() });
    faults.addToxic("lim", { type: "limit_data", attributes: { bytes: 10 } });
    const socket = await connect(proxy.listen);
    await socket.write(new Uint8Array(100).fill(65));
    expect((await readAll(socket)).length).toBe(10);
  });

  test("timeout 0 stalls the connection until the toxic goes, which closes it", async () => {
    const { faults, base } = await startFaults();
    const upstream = await startEcho();
    const proxy = await faults.createProxy({ name: "stall", upstream });
    const socket = await connect(proxy.listen);
    expect(text(await roundTrip(socket, bytes("ok")))).toBe("ok");
    faults.addToxic("stall", { type: "timeout", stream: "upstream", attributes: { timeout: 0 } });
    await socket.write(bytes("lost"));
    const counter = (kind: string) =>
      `toxiproxy_proxy_${kind}_bytes_total{direction="upstream",listener="${proxy.listen}",proxy="stall",` +
      `upstream="${upstream}"}`;
    // The proxy has read the 4 bytes; none went on.
    await waitUntil(async () => (await api(base, "GET", "/metrics")).raw.includes(`${counter("received")} 6`), {
      timeoutMs: 10_000,
      what: "the proxy to count the 6 bytes it read",
    });
    expect((await api(base, "GET", "/metrics")).raw).toContain(`${counter("sent")} 2`);
    const received = readAll(socket);
    faults.removeToxic("stall", "timeout_upstream");
    expect((await received).length).toBe(0); // nothing passed, then the end of input
  });

  test("timeout N closes the connection after N ms, data dropped meanwhile", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "to", upstream: await startEcho() });
    faults.addToxic("to", { type: "timeout", attributes: { timeout: 200 } });
    const start = Date.now();
    const socket = await connect(proxy.listen);
    await socket.write(bytes("dropped"));
    expect((await readAll(socket)).length).toBe(0);
    expect(Date.now() - start).toBeGreaterThanOrEqual(195);
  });

  test("bandwidth: 50 KB at 100 KB/s takes about half a second", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "bw", upstream: await startEcho() });
    faults.addToxic("bw", { type: "bandwidth", attributes: { rate: 100 } });
    const socket = await connect(proxy.listen);
    const start = Date.now();
    expect((await roundTrip(socket, new Uint8Array(50_000).fill(1))).length).toBe(50_000);
    expect(Date.now() - start).toBeGreaterThanOrEqual(400);
  });

  test("reset_peer: the client sees ECONNRESET", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "rst", upstream: await startEcho() });
    faults.addToxic("rst", { type: "reset_peer", attributes: { timeout: 0 } });
    const port = Number(/:(\d+)$/.exec(proxy.listen)![1]);
    const code = await deadline(
      new Promise<string>((resolve) => {
        const client = net.connect(port, "127.0.0.1", () => client.write("hi"));
        client.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "no code"));
        client.on("close", () => resolve("closed without an error"));
      }),
      10_000,
      "the reset",
    );
    expect(code).toBe("ECONNRESET");
  });

  test("slicer: one answer arrives in several pieces, all of it", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "sl", upstream: await startEcho() });
    faults.addToxic("sl", {
      type: "slicer",
      attributes: { average_size: 10, size_variation: 0, delay: 30_000 }, // 30 ms between pieces
    });
    const socket = await connect(proxy.listen);
    const message = bytes("0123456789".repeat(6));
    await socket.write(message);
    const pieces: Uint8Array[] = [];
    let total = 0;
    while (total < message.length) {
      const piece = await deadline(socket.read(), 10_000, "a piece");
      if (piece === null) break;
      pieces.push(piece);
      total += piece.length;
    }
    expect(total).toBe(message.length);
    expect(pieces.length).toBeGreaterThanOrEqual(2);
  });

  test("half-close: the client's FIN reaches the upstream, and its answer still comes back", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "half", upstream: await startCountingUpstream() });
    const socket = await connect(proxy.listen);
    await socket.write(bytes("hello"));
    await socket.closeWrite();
    expect(text(await readAll(socket))).toBe("got 5");
  });

  test("slow_close: the end of input is passed on that much later", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "sc", upstream: await startCountingUpstream() });
    faults.addToxic("sc", { type: "slow_close", attributes: { delay: 200 } });
    const socket = await connect(proxy.listen);
    await socket.write(bytes("abc"));
    await socket.closeWrite();
    const start = Date.now();
    expect(text(await readAll(socket))).toBe("got 3");
    expect(Date.now() - start).toBeGreaterThanOrEqual(195);
  });

  test("limit_time: data flows, then the connection closes that long after it began", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "lt", upstream: await startEcho() });
    faults.addToxic("lt", { type: "limit_time", attributes: { time: 300 } });
    const start = Date.now();
    const socket = await connect(proxy.listen);
    expect(text(await roundTrip(socket, bytes("flows")))).toBe("flows");
    expect((await readAll(socket)).length).toBe(0);
    expect(Date.now() - start).toBeGreaterThanOrEqual(295);
  });

  test("corrupt: with probability 1, every byte has exactly one bit flipped", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "cor", upstream: await startEcho() });
    faults.addToxic("cor", { type: "corrupt", stream: "upstream", attributes: { probability: 1 } });
    const answer = await roundTrip(await connect(proxy.listen), new Uint8Array(64));
    expect(answer.length).toBe(64);
    for (const byte of answer) expect([1, 2, 4, 8, 16, 32, 64, 128]).toContain(byte);
  });

  test("slow_open: the upstream is connected only after the delay", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "so", upstream: await startEcho() });
    faults.addToxic("so", { type: "slow_open", attributes: { delay: 250 } });
    const start = Date.now();
    expect(text(await roundTrip(await connect(proxy.listen), bytes("late")))).toBe("late");
    expect(Date.now() - start).toBeGreaterThanOrEqual(245);
  });

  test("clients: a toxic applies only to connections from its CIDR blocks", async () => {
    const { faults, base } = await startFaults();
    const proxy = await faults.createProxy({ name: "cl", upstream: await startEcho() });
    faults.addToxic("cl", { name: "others", type: "limit_data", attributes: { bytes: 1 }, clients: ["10.0.0.0/8"] });
    expect(text(await roundTrip(await connect(proxy.listen), bytes("abc")))).toBe("abc");
    faults.addToxic("cl", { name: "mine", type: "limit_data", attributes: { bytes: 1 }, clients: ["127.0.0.1/32"] });
    const socket = await connect(proxy.listen);
    await socket.write(bytes("abc"));
    expect(text(await readAll(socket))).toBe("a");
    const bad = await api(base, "POST", "/proxies/cl/toxics", { type: "noop", clients: ["10.0.0.0/33"] });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/clients\[0\]/);
  });

  test("disabling a proxy closes its listener and its connections", async () => {
    const { faults } = await startFaults();
    const proxy = await faults.createProxy({ name: "d", upstream: await startEcho() });
    const socket = await connect(proxy.listen);
    expect(text(await roundTrip(socket, bytes("x")))).toBe("x");
    await faults.updateProxy("d", { enabled: false });
    expect((await readAll(socket)).length).toBe(0);
    await expect(connect(proxy.listen)).rejects.toThrow();
  });

  test("with a seed, which connections a toxic hits replays exactly", async () => {
    const pattern = async () => {
      const { faults } = await startFaults("replay");
      const proxy = await faults.createProxy({ name: "r", upstream: await startEcho() });
      faults.addToxic("r", { type: "limit_data", toxicity: 0.5, attributes: { bytes: 1 } });
      const hits: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        const socket = await connect(proxy.listen);
        await socket.write(bytes("abc"));
        await socket.closeWrite();
        hits.push((await readAll(socket)).length === 1);
        socket.close();
      }
      await faults.close();
      return hits;
    };
    const first = await pattern();
    expect(first).toContain(true);
    expect(first).toContain(false);
    expect(await pattern()).toEqual(first);
  });
});
