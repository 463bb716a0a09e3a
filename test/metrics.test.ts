// --metrics HOST:PORT: Prometheus metrics on a listener of their own, for echo serve and gate serve
// (TCP, TLS, UDP, --workers), checked by value, by promtool and by a real Prometheus server.

import { afterEach, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addCounters, newServerCounters, parseCounters, renderMetrics } from "../src/metrics/mod.ts";
import {
  bytes,
  type ChildServer,
  cleanup,
  readAll,
  readAtLeast,
  RUNTIME,
  startChild,
  startCliServer,
  text,
  transport,
  waitFor,
  waitUntil,
} from "./_utils.ts";

const resources = cleanup();
afterEach(() => resources.run());

const hasTool = (name: string) => spawnSync(name, ["--version"], { stdio: "ignore" }).status === 0;
const PROMTOOL = hasTool("promtool");
const PROMETHEUS = hasTool("prometheus");
if (!PROMTOOL) {
  console.log("test/metrics.test.ts: promtool checks skipped: promtool is missing (apt-get install prometheus)");
}
if (!PROMETHEUS) {
  console.log(
    "test/metrics.test.ts: the real-Prometheus scrape skipped: prometheus is missing (apt-get install prometheus)",
  );
}

/** Starts `echogate <args> --metrics 127.0.0.1:0`; resolves with the server and its metrics address. */
async function start(args: string[]): Promise<ChildServer & { metrics: string }> {
  const server = resources.child(await startCliServer(RUNTIME, [...args, "--port", "0", "--metrics", "127.0.0.1:0"]));
  const metrics = await waitFor(
    () => /metrics at http:\/\/(\S+)\/metrics/.exec(server.stdout())?.[1],
    15_000,
    "the metrics line",
  );
  return { ...server, metrics };
}

/** One scrape: the samples by `name{labels}` (as written), and the raw text. */
async function scrape(address: string): Promise<{ values: Map<string, number>; body: string; type: string }> {
  const response = await fetch(`http://${address}/metrics`);
  expect(response.status).toBe(200);
  const body = await response.text();
  const values = new Map<string, number>();
  for (const line of body.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { values, body, type: response.headers.get("content-type") ?? "" };
}

/** Polls the metrics until `check` holds (counters land when the server has done its part). */
async function scrapeUntil(address: string, check: (values: Map<string, number>) => boolean, what: string) {
  let last: Map<string, number>;
  const end = Date.now() + 15_000;
  while (true) {
    last = (await scrape(address)).values;
    if (check(last)) return last;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}: ${JSON.stringify([...last])}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function promtoolCheck(body: string): void {
  const result = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8" });
  expect(result.stderr + result.stdout).toBe("");
  expect(result.status).toBe(0);
}

async function exchange(port: number, send: string, expectBytes: number): Promise<string> {
  const socket = await transport.connect({ hostname: "127.0.0.1", port });
  try {
    await socket.write(bytes(send));
    return text(await readAtLeast(socket, expectBytes));
  } finally {
    socket.close();
  }
}

/** Connects, sends `send` (if any) and reads until the server closes; the reply as text. */
async function untilClosed(port: number, send?: string): Promise<string> {
  const socket = await transport.connect({ hostname: "127.0.0.1", port });
  try {
    if (send !== undefined) await socket.write(bytes(send));
    return text(await readAll(socket));
  } finally {
    socket.close();
  }
}

const knock = (port: number, token: string) => untilClosed(port, token);

describe(`--metrics on ${RUNTIME}`, () => {
  test("echo serve: counts the connection and its bytes, in the text format promtool accepts", async () => {
    const server = await start(["echo", "serve"]);
    expect(await exchange(server.port, "hello", 11)).toBe("Echo=>hello");
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get("echogate_connections_open") === 0 && v.get("echogate_sent_bytes_total") === 11,
      "the closed connection",
    );
    expect(values.get("echogate_connections_accepted_total")).toBe(1);
    expect(values.get("echogate_received_bytes_total")).toBe(5);
    expect(values.get('echogate_refused_connections_total{reason="max_conns"}')).toBe(0);
    expect(values.get("process_resident_memory_bytes")).toBeGreaterThan(1e6);
    expect(values.get("process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(values.get("process_open_fds")).toBeGreaterThan(2);
    const { body, type } = await scrape(server.metrics);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    if (PROMTOOL) promtoolCheck(body);
  });

  test("echo serve: an open connection's bytes count before it closes; --max-conns refusals by reason", async () => {
    const server = await start(["echo", "serve", "--max-conns", "1"]);
    const socket = resources.add(await transport.connect({ hostname: "127.0.0.1", port: server.port }));
    await socket.write(bytes("abc"));
    expect(text(await readAtLeast(socket, 9))).toBe("Echo=>abc");
    await untilClosed(server.port); // refused: closed at once
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get('echogate_refused_connections_total{reason="max_conns"}') === 1,
      "the refusal",
    );
    expect(values.get("echogate_connections_open")).toBe(1);
    expect(values.get("echogate_received_bytes_total")).toBe(3);
    expect(values.get("echogate_sent_bytes_total")).toBe(9);
  });

  test("gate serve: knocks by result (welcome, refused, timeout) and the penalised sources", async () => {
    const server = await start(["gate", "serve", "--timeout", "1", "--penalty-exempt", "none"]);
    expect(await knock(server.port, "1")).toBe("welcome to server!");
    expect(await knock(server.port, "wrong")).toBe("please go out!");
    expect(await untilClosed(server.port)).toHaveLength(0); // silent: timed out and closed by the gate
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get('echogate_knocks_total{result="timeout"}') === 1,
      "the timeout",
    );
    expect(values.get('echogate_knocks_total{result="welcome"}')).toBe(1);
    expect(values.get('echogate_knocks_total{result="refused"}')).toBe(1);
    expect(values.get("echogate_connections_accepted_total")).toBe(3);
    expect(values.get("echogate_penalized_sources")).toBe(1); // 127.0.0.1, not exempt here
    if (PROMTOOL) promtoolCheck((await scrape(server.metrics)).body);
  });

  test("gate serve: echogate_penalized_sources falls back to 0 once the penalties expire", async () => {
    const server = await start(["gate", "serve", "--penalty-exempt", "none", "--penalties", "authfail:3,min:5,max:10"]);
    expect(await knock(server.port, "wrong")).toBe("please go out!"); // 3 s of penalty, under min: not refused
    await scrapeUntil(server.metrics, (v) => v.get("echogate_penalized_sources") === 1, "the penalised source");
    // Nothing touches the table after this: the count must drop by the clock alone.
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get("echogate_penalized_sources") === 0,
      "the penalty's expiry",
    );
    expect(values.get('echogate_knocks_total{result="refused"}')).toBe(1);
    expect(await knock(server.port, "1")).toBe("welcome to server!");
  });

  test("gate serve --tls-self-signed: a failed TLS handshake is counted", async () => {
    const server = await start(["gate", "serve", "--tls-self-signed"]);
    await untilClosed(server.port, "GET / HTTP/1.0\r\n\r\n"); // plain text on a TLS port
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get('echogate_tls_handshake_failures_total{reason="failed"}') === 1,
      "the handshake failure",
    );
    expect(values.get("echogate_connections_accepted_total")).toBe(0);
  });

  test("gate serve --tls-self-signed: a handshake that stalls is counted as a timeout and penalised", async () => {
    const args = ["gate", "serve", "--tls-self-signed", "--tls-handshake-timeout", "1", "--penalty-exempt", "none"];
    const server = await start(args);
    await untilClosed(server.port); // stalled: closed by the gate's handshake timeout
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get('echogate_tls_handshake_failures_total{reason="timeout"}') === 1,
      "the handshake timeout",
    );
    expect(values.get("echogate_penalized_sources")).toBe(1); // grace-exceeded: 10 s
    expect(values.get("echogate_connections_accepted_total")).toBe(0);
  });

  test("echo serve --udp: datagrams received, answered and dropped", async () => {
    const server = await start(["echo", "serve", "--udp", "--max-datagram", "10"]);
    const replies: string[] = [];
    const client = resources.add(
      await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, {
        onMessage: (b) => void replies.push(text(b)),
        onError() {},
      }),
    );
    client.send(bytes("hi"), "127.0.0.1", server.port);
    await waitUntil(() => replies.length === 1, { timeoutMs: 10_000, what: "the echo" });
    client.send(bytes("far too long for it"), "127.0.0.1", server.port); // over --max-datagram
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get('echogate_datagrams_dropped_total{reason="too_big"}') === 1,
      "the dropped datagram",
    );
    expect(values.get("echogate_datagrams_received_total")).toBe(2);
    expect(values.get("echogate_datagrams_answered_total")).toBe(1);
    expect(values.get("echogate_received_bytes_total")).toBe(2 + 19);
    expect(values.get("echogate_sent_bytes_total")).toBe(8);
  });

  test("only GET /metrics: 404 elsewhere, 405 for other methods", async () => {
    const server = await start(["echo", "serve"]);
    expect((await fetch(`http://${server.metrics}/`)).status).toBe(404);
    expect((await fetch(`http://${server.metrics}/metrics`, { method: "POST", body: "x" })).status).toBe(405);
  });

  test("garbage and a flood on the metrics port leave the service port alone", async () => {
    const server = await start(["echo", "serve"]);
    const [host, port] = [
      server.metrics.slice(0, server.metrics.lastIndexOf(":")),
      Number(server.metrics.split(":").pop()),
    ];
    const flood = await Promise.all(
      Array.from({ length: 40 }, () => transport.connect({ hostname: host, port }).catch(() => undefined)),
    );
    for (const socket of flood) {
      socket?.write(bytes("\x00\xff garbage that is no HTTP\r\n" + "X-Long: " + "a".repeat(64 * 1024))).catch(() => {});
      if (socket) resources.add(socket);
    }
    // The service answers as ever, while the flood is held open.
    expect(await exchange(server.port, "still here", 16)).toBe("Echo=>still here");
    for (const socket of flood) socket?.close();
    // And the endpoint serves again once the flood is gone.
    await scrapeUntil(server.metrics, (v) => v.get("echogate_connections_accepted_total") === 1, "a scrape");
  });

  test("the endpoint holds at most 16 connections: more are closed at once", async () => {
    const server = await start(["echo", "serve"]);
    const port = Number(server.metrics.split(":").pop());
    const idle = await Promise.all(
      Array.from({ length: 24 }, () => transport.connect({ hostname: "127.0.0.1", port })),
    );
    let closed = 0;
    for (const socket of idle) {
      resources.add(socket);
      void socket.read().then((chunk) => chunk === null && closed++, () => closed++);
    }
    await waitUntil(() => closed >= 8, { timeoutMs: 15_000, what: "the connections over the limit closed" });
    expect(closed).toBeLessThanOrEqual(24 - 16 + 1);
  });

  test("a request head that stalls is closed within the 10 s idle timeout", async () => {
    const server = await start(["echo", "serve"]);
    const port = Number(server.metrics.split(":").pop());
    const stalled = resources.add(await transport.connect({ hostname: "127.0.0.1", port }));
    await stalled.write(bytes("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Half: "));
    let closed = false;
    void stalled.read().then(() => closed = true, () => closed = true);
    await waitUntil(() => closed, { timeoutMs: 40_000, what: "the stalled connection closed" });
  }, 60_000);

  test("gate serve --workers 2: the supervisor's endpoint sums its workers exactly", async () => {
    const server = await start(["gate", "serve", "--workers", "2"]);
    const knocks = 12;
    for (let i = 0; i < knocks; i++) expect(await knock(server.port, i % 3 === 0 ? "no" : "1")).not.toBe("");
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get("echogate_connections_accepted_total") === knocks,
      "every knock counted",
    );
    expect(values.get('echogate_knocks_total{result="welcome"}')).toBe(8);
    expect(values.get('echogate_knocks_total{result="refused"}')).toBe(4);
    expect(values.get("echogate_received_bytes_total")).toBe(8 * 1 + 4 * 2);
    expect(values.get("echogate_sent_bytes_total")).toBe(8 * 18 + 4 * 14);
    if (PROMTOOL) promtoolCheck((await scrape(server.metrics)).body);
  });

  test("gate serve --workers 2: a worker killed and restarted takes none of the counts with it", async () => {
    const server = await start(["gate", "serve", "--workers", "2"]);
    for (let i = 0; i < 6; i++) expect(await knock(server.port, "1")).toBe("welcome to server!");
    await scrapeUntil(server.metrics, (v) => v.get("echogate_connections_accepted_total") === 6, "the knocks");
    const workers = readFileSync(`/proc/${server.process.pid}/task/${server.process.pid}/children`, "utf8")
      .trim().split(/\s+/).map(Number);
    globalThis.process.kill(workers[0]!, "SIGKILL");
    await waitUntil(() => /Worker \d exited/.test(server.stdout() + server.stderr()), {
      timeoutMs: 15_000,
      what: "the worker's exit",
    });
    expect(await knock(server.port, "1")).toBe("welcome to server!");
    const values = await scrapeUntil(
      server.metrics,
      (v) => v.get("echogate_connections_accepted_total") === 7,
      "the counts kept",
    );
    expect(values.get('echogate_knocks_total{result="welcome"}')).toBe(7);
  });

  test.skipIf(!PROMETHEUS)("a real Prometheus server scrapes it", async () => {
    const server = await start(["echo", "serve"]);
    expect(await exchange(server.port, "x", 7)).toBe("Echo=>x");
    const dir = mkdtempSync(join(tmpdir(), "echogate-prometheus-"));
    resources.add({ close: () => rmSync(dir, { recursive: true, force: true }) });
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: echogate\n    static_configs:\n      - targets: ["${server.metrics}"]\n`,
    );
    const port = await freePort();
    const prometheus = resources.child(startChild([
      "prometheus",
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]));
    const query = `http://127.0.0.1:${port}/api/v1/query?query=echogate_connections_accepted_total`;
    const end = Date.now() + 60_000;
    let value: string | undefined;
    while (value === undefined) {
      if (prometheus.process.exitCode !== null) throw new Error(`prometheus exited: ${prometheus.stderr()}`);
      if (Date.now() > end) throw new Error(`Prometheus never had the metric: ${prometheus.stderr().slice(-2000)}`);
      try {
        const answer = await (await fetch(query)).json() as { data?: { result?: { value: [number, string] }[] } };
        value = answer.data?.result?.[0]?.value[1];
      } catch {
        // not up yet
      }
      if (value === undefined) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(value).toBe("1");
  }, 90_000);
});

describe("a worker's counters message", () => {
  test("is taken only whole: known keys, finite counts from 0", () => {
    const good = { ...newServerCounters(), accepted: 3, knocks: { welcome: 1, refused: 1, timeout: 1 } };
    expect(parseCounters(JSON.parse(JSON.stringify(good)))).toEqual(good);
    for (
      const bad of [
        null,
        [],
        { ...good, accepted: -1 },
        { ...good, accepted: "3" },
        { ...good, open: Infinity },
        { ...good, extra: 1 },
        { ...good, refused: { ...good.refused, invented: 1 } },
        { ...good, refused: { max_conns: 1 } },
        { ...good, knocks: { welcome: 1 } },
        { ...good, penalizedSources: NaN },
        { ...good, datagrams: { received: 1 } },
      ]
    ) expect(parseCounters(bad)).toBeUndefined();
  });

  test("sums counter by counter", () => {
    const one = { ...newServerCounters(), accepted: 2, sentBytes: 10, penalizedSources: 1 };
    const sum = addCounters(addCounters(newServerCounters(), one), one);
    expect(sum).toMatchObject({ accepted: 4, sentBytes: 20, penalizedSources: 2 });
  });
});

describe("the text format", () => {
  test("escapes label values and help texts", () => {
    expect(renderMetrics([{
      name: "x_total",
      type: "counter",
      help: "a \\ and\na line",
      samples: [{ labels: { b: 'say "hi"\\\n', a: "1" }, value: 2 }],
    }])).toBe(
      '# HELP x_total a \\\\ and\\na line\n# TYPE x_total counter\nx_total{a="1",b="say \\"hi\\"\\\\\\n"} 2\n',
    );
  });
});

/** A port free right now (Prometheus will not take port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
