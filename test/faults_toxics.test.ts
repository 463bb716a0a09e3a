// echogate faults: toxiproxy 2.12's toxic tests (toxics/*_test.go) ported black-box: a client
// socket, a proxy, an upstream whose accepted sockets the test holds. Times are lower bounds
// only (a loaded machine is slow, never fast); the accuracy of latency is a benchmark's job.

import { afterEach, describe, expect, test } from "vitest";
import type { StreamSocket, ToxicInput } from "../src/mod.ts";
import { bytes, cleanup, concat, portOf, readAll, readAtLeast, RUNTIME, text, transport, waitUntil } from "./_utils.ts";
import { faultsKit } from "./_faults.ts";

const resources = cleanup();
afterEach(() => resources.run());

const { startFaults, connect } = faultsKit(resources);

/** An upstream that hands each accepted socket to the test. */
async function startUpstream(): Promise<{ addr: string; accepted: () => Promise<StreamSocket> }> {
  const waiting: ((socket: StreamSocket) => void)[] = [];
  const ready: StreamSocket[] = [];
  const listener = await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
    onSocket: (socket) => {
      resources.add(socket);
      const taker = waiting.shift();
      taker ? taker(socket) : ready.push(socket);
    },
    onError: () => {},
  });
  resources.add(listener);
  return {
    addr: `127.0.0.1:${portOf(listener)}`,
    accepted: () => {
      const socket = ready.shift();
      return socket ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** toxiproxy's WithEstablishedProxy: a proxy, a client through it, the upstream's side, data checked both ways. */
async function established() {
  const { faults } = await startFaults();
  const upstream = await startUpstream();
  const proxy = await faults.createProxy({ name: "test", upstream: upstream.addr });
  const client = await connect(proxy.listen);
  const server = await upstream.accepted();
  await expectPassing(client, server, "foobar");
  await expectPassing(server, client, "foobar");
  const add = (input: ToxicInput) => faults.addToxic("test", input);
  return { faults, upstream, proxy, client, server, add };
}

/** Writes `message` on `from` and reads it whole on `to`. */
async function expectPassing(from: StreamSocket, to: StreamSocket, message: string): Promise<void> {
  await from.write(bytes(message));
  expect(text(await readAtLeast(to, message.length))).toBe(message);
}

/** Reads from `socket` until the peer's FIN; resolves to the error's code if it was reset instead. */
async function endOf(socket: StreamSocket): Promise<{ data: Uint8Array } | { error: string }> {
  try {
    return { data: await readAll(socket) };
  } catch (error) {
    return { error: String((error as { code?: string }).code ?? (error as Error).message) };
  }
}

const hello = "hello world " + "a".repeat(32 * 1024) + "\n"; // latency_test.go's message

describe(`toxiproxy's toxics/*_test.go against echogate faults on ${RUNTIME}`, () => {
  // latency_test.go: DoLatencyTest's Upstream, Downstream, FullstreamEven, BiasUp, BiasDown, Zero.
  test.each([[100, 0], [0, 100], [100, 100], [300, 100], [100, 300], [0, 0]])(
    "latency %i ms up, %i ms down: the server reads after the first, the round trip takes both",
    async (up, down) => {
      const { client, server, add } = await established();
      if (up) add({ name: "latency_up", type: "latency", stream: "upstream", attributes: { latency: up } });
      if (down) add({ name: "latency_down", type: "latency", stream: "downstream", attributes: { latency: down } });
      const start = performance.now();
      await client.write(bytes(hello));
      expect(text(await readAtLeast(server, hello.length))).toBe(hello);
      expect(performance.now() - start).toBeGreaterThanOrEqual(up - 1);
      await server.write(bytes(hello));
      expect(text(await readAtLeast(client, hello.length))).toBe(hello);
      expect(performance.now() - start).toBeGreaterThanOrEqual(up + down - 1);
    },
  );

  test("TestTwoLatencyToxics: two latency toxics on one stream add up", async () => {
    const { client, server, add } = await established();
    add({ name: "latency_0", type: "latency", stream: "upstream", attributes: { latency: 300 } });
    add({ name: "latency_1", type: "latency", stream: "upstream", attributes: { latency: 300 } });
    const start = performance.now();
    await client.write(bytes(hello));
    expect(text(await readAtLeast(server, hello.length))).toBe(hello);
    expect(performance.now() - start).toBeGreaterThanOrEqual(599);
  });

  test("TestLatencyToxicCloseRace: clients closing while their data waits in a latency toxic harm nothing", async () => {
    const { faults } = await startFaults();
    const upstream = await startUpstream();
    const proxy = await faults.createProxy({ name: "test", upstream: upstream.addr });
    faults.addToxic("test", { type: "latency", stream: "upstream", attributes: { latency: 10 } });
    for (let i = 0; i < 20; i++) {
      const client = await connect(proxy.listen);
      await client.write(bytes("hello"));
      client.close();
    }
    const client = await connect(proxy.listen);
    let server = await upstream.accepted();
    for (let i = 0; i < 20; i++) server = await upstream.accepted(); // the 21st is this client's
    await expectPassing(client, server, "still forwarding");
  });

  test("TestLatencyToxicBandwidth: a latency toxic delays a stream without limiting its rate", async () => {
    const { client, server, add } = await established();
    add({ type: "latency", attributes: { latency: 100 } });
    const payload = bytes("hello world ".repeat(1000));
    const total = payload.length * 100;
    void (async () => {
      for (let i = 0; i < 100; i++) await server.write(payload);
    })().catch(() => {});
    expect((await readAtLeast(client, total, 30_000)).length).toBe(total);
  });

  test("TestBandwidthToxic: 480 KB at 1000 KB/s arrive whole, after at least 480 ms", async () => {
    const { client, server, add } = await established();
    add({ type: "bandwidth", stream: "upstream", attributes: { rate: 1000 } });
    const payload = bytes("hello world ".repeat(40_000));
    const start = performance.now();
    void client.write(payload).then(() => client.closeWrite()).catch(() => {});
    const received = await readAll(server, 30_000);
    expect(received.length).toBe(payload.length);
    expect(text(received)).toBe(text(payload));
    expect(performance.now() - start).toBeGreaterThanOrEqual(payload.length / 1000 - 100 - 1); // the first 100 ms slice goes at once
  });

  test("TestTimeoutToxicDoesNotCauseHang: a latency toxic ahead of a timeout 0 can be removed", async () => {
    const { faults, client, add } = await established();
    add({ name: "might_block", type: "latency", stream: "upstream", attributes: { latency: 10 } });
    add({ name: "timeout", type: "timeout", stream: "upstream", attributes: { timeout: 0 } });
    for (let i = 0; i < 5; i++) await client.write(bytes("hello"));
    faults.removeToxic("test", "might_block");
    expect(faults.listToxics("test").map((toxic) => toxic.name)).toEqual(["timeout"]);
  });

  test("TestTimeoutToxicClosesConnectionOnRemove: both sides see EOF", async () => {
    const { faults, client, server, add } = await established();
    add({ name: "to_delete", type: "timeout", stream: "upstream", attributes: { timeout: 0 } });
    faults.removeToxic("test", "to_delete");
    expect(await endOf(client)).toEqual({ data: new Uint8Array() });
    expect(await endOf(server)).toEqual({ data: new Uint8Array() });
  });

  // reset_peer_test.go: NoTimeout, WithTimeout (upstream), WithTimeoutDownstream.
  test.each([["upstream", 0], ["upstream", 100], ["downstream", 100]] as const)(
    "reset_peer on %s, timeout %i ms: the client's next read is ECONNRESET",
    async (stream, timeout) => {
      const { client, server, add } = await established();
      add({ name: "resettcp", type: "reset_peer", stream, attributes: { timeout } });
      const start = performance.now();
      await client.write(bytes("hello\n"));
      if (stream === "downstream") await server.write(bytes("hello\n")).catch(() => {});
      expect(await endOf(client)).toEqual({ error: "ECONNRESET" });
      expect(performance.now() - start).toBeGreaterThanOrEqual(timeout - 1);
    },
  );

  test("TestSlicerToxic (1024 ± 512 B, 10 µs) and ZeroSizeVariation (1 B): everything arrives, in order", async () => {
    const { faults, client, server, add } = await established();
    const data = new Uint8Array(100 * 1024).map((_, i) => (i * 7) & 0xff);
    add({ type: "slicer", attributes: { average_size: 1024, size_variation: 512, delay: 10 } });
    await server.write(data);
    expect(await readAtLeast(client, data.length)).toEqual(data);
    faults.updateToxic("test", "slicer_downstream", { attributes: { average_size: 1, size_variation: 0 } });
    const small = data.subarray(0, 200);
    await server.write(small);
    expect(await readAtLeast(client, small.length)).toEqual(small);
  });

  // limit_data_test.go: chunks smaller than, equal to, bigger than the limit; several chunks; the second overflowing; zero.
  test.each([
    [100, [50], 50],
    [100, [100], 100],
    [100, [150], 100],
    [100, [25, 25, 25, 25], 100],
    [100, [90, 20], 100],
    [0, [100], 0],
  ])("limit_data %i bytes, chunks %j: exactly %i bytes pass", async (limit, chunks, expected) => {
    const { client, server, add } = await established();
    add({ type: "limit_data", stream: "upstream", attributes: { bytes: limit } });
    const all = concat(chunks.map((size, i) => new Uint8Array(size).fill(i + 1)));
    const received: Uint8Array[] = [];
    let offset = 0;
    for (const [i, size] of chunks.entries()) {
      await client.write(all.subarray(offset, offset + size)).catch(() => {}); // it may have closed already
      offset += size;
      // Each chunk read through before the next is written, so that they reach the toxic apart.
      const due = Math.min(offset, limit) - concat(received).length;
      if (i < chunks.length - 1 && due > 0) received.push(await readAtLeast(server, due));
    }
    await client.closeWrite().catch(() => {}); // ends a connection the limit has not closed
    received.push(await readAll(server));
    expect(concat(received)).toEqual(all.subarray(0, expected));
  });

  test("TestLimitDataToxicMayBeRestarted: an update keeps the count of bytes already let through", async () => {
    const { faults, client, server, add } = await established();
    add({ type: "limit_data", stream: "upstream", attributes: { bytes: 100 } });
    await client.write(new Uint8Array(90).fill(1));
    expect((await readAtLeast(server, 90)).length).toBe(90);
    faults.updateToxic("test", "limit_data_upstream", { attributes: { bytes: 100 } });
    await client.write(new Uint8Array(20).fill(2));
    expect(await readAll(server)).toEqual(new Uint8Array(10).fill(2));
  });

  test("TestLimitDataToxicNilShouldClosePipe: the end of input under the limit passes as a FIN", async () => {
    const { client, server, add } = await established();
    add({ type: "limit_data", stream: "upstream", attributes: { bytes: 100 } });
    await client.write(bytes("short"));
    await client.closeWrite();
    expect(text(await readAll(server))).toBe("short");
  });

  test("TestPersistentConnections: noop toxics added and reset leave an open connection working", async () => {
    const { faults, client, server, add } = await established();
    add({ name: "noop_up", type: "noop", stream: "upstream" });
    add({ name: "noop_down", type: "noop", stream: "downstream" });
    await expectPassing(client, server, "one");
    await expectPassing(server, client, "two");
    await faults.reset();
    await expectPassing(client, server, "three");
    await faults.reset();
    await expectPassing(server, client, "four");
  });

  test("TestToxicAddRemove: toxics added and removed between every message lose nothing", async () => {
    const { faults, client, server, add } = await established();
    for (let i = 0; i < 100; i++) {
      if (i % 2) {
        add({ name: "noop_up", type: "noop", stream: "upstream" });
        faults.removeToxic("test", "noop_down");
      } else {
        if (i > 0) faults.removeToxic("test", "noop_up");
        add({ name: "noop_down", type: "noop", stream: "downstream" });
      }
      await expectPassing(client, server, `message ${i}`);
      await expectPassing(server, client, `answer ${i}`);
    }
  });

  // Beyond the ported tests: an update or removal reaches a chunk already waiting in the toxic.
  // [what, the toxic, its update (or undefined: it is removed)]
  const waits: [string, ToxicInput, Record<string, number> | undefined][] = [
    ["latency of 60 s updated to 0", { type: "latency", attributes: { latency: 60_000 } }, { latency: 0 }],
    ["latency of 60 s removed", { type: "latency", attributes: { latency: 60_000 } }, undefined],
    ["bandwidth of 1 KB/s updated to no limit", { type: "bandwidth", attributes: { rate: 1 } }, { rate: 0 }],
    ["slicer with 1 s between 1-byte pieces removed", {
      type: "slicer",
      attributes: { average_size: 1, delay: 1_000_000 },
    }, undefined],
    ["reset_peer of 60 s removed (no reset)", { type: "reset_peer", attributes: { timeout: 60_000 } }, undefined],
  ];
  test.each(waits)("a %s lets the data it holds through at once", async (_, toxic, change) => {
    const { faults, client, server, add } = await established();
    const { name } = add(toxic);
    const message = "x".repeat(40_000); // 40 s at 1 KB/s
    await server.write(bytes(message));
    // Once the proxy has read the chunk, it is in the toxic's wait (or, for the slicer, between its pieces).
    await waitForReceived(faults, "downstream", 40_006);
    if (change) faults.updateToxic("test", name, { attributes: change });
    else faults.removeToxic("test", name);
    expect(text(await readAtLeast(client, message.length, 20_000))).toBe(message);
    await expectPassing(client, server, "still open");
  });

  test("a slow_close of 60 s removed passes the waiting end of input on at once", async () => {
    const { faults, client, server, add } = await established();
    add({ type: "slow_close", stream: "upstream", attributes: { delay: 60_000 } });
    await client.write(bytes("bye"));
    await client.closeWrite();
    expect(text(await readAtLeast(server, 3))).toBe("bye");
    await new Promise((resolve) => setTimeout(resolve, 100)); // the FIN reaches the toxic
    faults.removeToxic("test", "slow_close_upstream");
    expect(await endOf(server)).toEqual({ data: new Uint8Array() });
  });
});

/** Polls /metrics until the proxy has read `total` bytes on `stream`. */
async function waitForReceived(faults: { url: string }, stream: string, total: number): Promise<void> {
  const pattern = new RegExp(`received_bytes_total\\{direction="${stream}",[^}]*\\} (\\d+)`);
  await waitUntil(async () => {
    const metrics = await (await fetch(`http://${faults.url}/metrics`, { headers: { "user-agent": "test" } })).text();
    return Number(pattern.exec(metrics)?.[1] ?? 0) >= total;
  }, { timeoutMs: 10_000, what: `the proxy to read ${total} bytes on ${stream}` });
}
