// End to end behind real HAProxy: examples/haproxy.cfg (ports filled in) in front of two echo
// servers (send-proxy-v2), two gates (send-proxy, balance source) and a TLS echo server (TLS
// passthrough, send-proxy-v2) running on this runtime.
// Clients connect from their own loopback addresses (127.0.0.2, 127.0.0.3) and HAProxy from
// 127.0.0.9, so the servers' logs show whose address they took.

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REFUSAL, WELCOME } from "../src/gate/mod.ts";
import { exchange, freePort, haproxyMissingReason, showStat, statsSocketAnswers } from "./_haproxy.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import {
  type Child,
  type ChildServer,
  ROOT,
  RUNTIME,
  startChild,
  startCliServer,
  waitFor,
  waitUntil,
} from "./_utils.ts";

const HAPROXY_SOURCE = "127.0.0.9";
const haproxyMissing = (() => {
  const missing = haproxyMissingReason();
  if (missing) return missing;
  return hasOpenssl() ? undefined : "openssl is not installed (apt-get install -y openssl), for the test certificates";
})();
if (haproxyMissing) console.log(`test/haproxy.test.ts skipped: ${haproxyMissing}`);

interface JsonEvent {
  event: string;
  remote?: string;
  proxy?: string;
  welcomed?: boolean;
  reason?: string;
}
const events = (server: Child): JsonEvent[] =>
  server.stdout().split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
const ip = (address: string | undefined) => address?.replace(/:\d+$/, "");

describe.skipIf(haproxyMissing !== undefined)(`behind HAProxy (servers on ${RUNTIME})`, () => {
  const pki = usePki();
  const children: Child[] = [];
  let tlsServer: ChildServer;
  let tlsPort = 0;
  let echoServers: ChildServer[] = [];
  let gates: ChildServer[] = [];
  let echoPort = 0;
  let gatePort = 0;
  const statsPath = `/tmp/echogate-haproxy-${RUNTIME}-${process.pid}.sock`;
  const configPath = `/tmp/echogate-haproxy-${RUNTIME}-${process.pid}.cfg`;

  beforeAll(async () => {
    const serverArgs = ["--port", "0", "--proxy-protocol", "--proxy-from", `${HAPROXY_SOURCE}/32`, "--json"];
    echoServers = await Promise.all([0, 1].map(() => startCliServer(RUNTIME, ["echo", "serve", ...serverArgs])));
    gates = await Promise.all(
      [0, 1].map(() =>
        startCliServer(RUNTIME, ["gate", "serve", ...serverArgs, "--penalty-exempt", "none"], {
          ECHOGATE_TOKEN: "s3cret",
        })
      ),
    );
    tlsServer = await startCliServer(RUNTIME, [
      ...["echo", "serve", ...serverArgs],
      ...["--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey],
    ]);
    children.push(...echoServers, ...gates, tlsServer);
    const example = readFileSync(`${ROOT}examples/haproxy.cfg`, "utf8");
    // A free port can be taken between the probe and HAProxy's bind: try again with new ones.
    for (let attempt = 1;; attempt++) {
      [echoPort, gatePort, tlsPort] = [await freePort(), await freePort(), await freePort()];
      const config = example
        .replace("global\n", `global\n    stats socket ${statsPath} level admin\n`)
        .replace("source 127.0.0.1", `source ${HAPROXY_SOURCE}`)
        .replaceAll("inter 2s", "inter 300ms")
        .replace("bind 127.0.0.1:50007", `bind 127.0.0.1:${echoPort}`)
        .replace("bind 127.0.0.1:8001", `bind 127.0.0.1:${gatePort}`)
        .replace("127.0.0.1:50017", `127.0.0.1:${echoServers[0]!.port}`)
        .replace("127.0.0.1:50018", `127.0.0.1:${echoServers[1]!.port}`)
        .replace("127.0.0.1:8011", `127.0.0.1:${gates[0]!.port}`)
        .replace("127.0.0.1:8012", `127.0.0.1:${gates[1]!.port}`)
        .replace("bind 127.0.0.1:50443", `bind 127.0.0.1:${tlsPort}`)
        .replace("127.0.0.1:50447", `127.0.0.1:${tlsServer.port}`);
      writeFileSync(configPath, config);
      const haproxy = startChild(["haproxy", "-db", "-f", configPath]);
      children.push(haproxy);
      // Started once its stats socket answers; a port taken meanwhile makes it exit instead.
      if (await statsSocketAnswers(haproxy, statsPath)) break;
      if (attempt === 3) throw new Error(`haproxy did not start: ${haproxy.stderr()}`);
      await haproxy.stop();
    }
    let servers: Record<string, string>[] = [];
    await waitUntil(async () => {
      const rows = await showStat(statsPath).catch(() => []);
      servers = rows.filter((r) => r.svname !== "FRONTEND" && r.svname !== "BACKEND");
      return servers.length === 5 && servers.every((r) => r.status === "UP" && r.check_status === "L7OK");
    }, { timeoutMs: 10_000, intervalMs: 100, what: "the health checks to pass" })
      .catch(() => {
        throw new Error(`health checks did not pass: ${JSON.stringify(servers)}`);
      });
  }, 40_000);

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop()));
    rmSync(configPath, { force: true });
    rmSync(statsPath, { force: true });
  });

  test("tcp-check health checks pass on all five servers (v2 LOCAL to the echo servers, v1 to the gates, v2 LOCAL then TLS to the TLS one)", async () => {
    const rows = (await showStat(statsPath)).filter((r) => r.svname !== "FRONTEND" && r.svname !== "BACKEND");
    expect(rows.map((r) => [r.pxname, r.svname, r.status, r.check_status])).toEqual([
      ["echo_servers", "echo1", "UP", "L7OK"],
      ["echo_servers", "echo2", "UP", "L7OK"],
      ["gates", "gate1", "UP", "L7OK"],
      ["gates", "gate2", "UP", "L7OK"],
      ["echo_tls_servers", "echo_tls1", "UP", "L7OK"],
    ]);
  });

  test("echoes pass through byte-exact, and the echo servers log the client's address, not HAProxy's", async () => {
    const message = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37 + 11) % 256));
    for (const client of ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.3"]) {
      const reply = await exchange(echoPort, client, message, { until: 6 + message.length });
      expect(reply.equals(Buffer.concat([Buffer.from("Echo=>"), message]))).toBe(true);
    }
    const connects = () => echoServers.flatMap(events).filter((e) => e.event === "connect");
    const fromClients = () => connects().filter((e) => ip(e.remote) !== HAPROXY_SOURCE);
    await waitUntil(() => fromClients().length >= 4, { timeoutMs: 5000, what: "4 client connects logged" });
    const clients = connects().filter((e) => ip(e.remote) !== HAPROXY_SOURCE);
    expect(clients.map((e) => ip(e.remote)).sort()).toEqual(["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]);
    expect(clients.every((e) => ip(e.proxy) === HAPROXY_SOURCE)).toBe(true);
    // Round robin: both echo servers saw clients. Health checks (LOCAL) show HAProxy's own address.
    expect(echoServers.every((s) => events(s).some((e) => e.event === "connect" && ip(e.remote) !== HAPROXY_SOURCE)))
      .toBe(true);
    expect(connects().some((e) => ip(e.remote) === HAPROXY_SOURCE && ip(e.proxy) === HAPROXY_SOURCE)).toBe(true);
    // HAProxy resets its check connections once answered: routine, so no error lines.
    expect(echoServers.flatMap((s) => s.stderr().split("\n")).filter((line) => /reset/i.test(line))).toEqual([]);
  });

  test("wrong knocks through HAProxy penalise that client only; health checks accrue nothing", async () => {
    for (let i = 0; i < 4; i++) {
      expect((await exchange(gatePort, "127.0.0.2", Buffer.from("wrong"), { end: true })).toString()).toBe(REFUSAL);
    }
    // 20 s accrued: the same client is now refused at once, another one behind the same HAProxy is welcome.
    expect((await exchange(gatePort, "127.0.0.2", Buffer.from("s3cret"), { end: true })).toString()).toBe("");
    expect((await exchange(gatePort, "127.0.0.3", Buffer.from("s3cret"), { end: true })).toString()).toBe(WELCOME);
    const all = () => gates.flatMap(events);
    const penalised = (e: JsonEvent) =>
      e.event === "refused" && ip(e.remote) === "127.0.0.2" && e.reason === "penalised";
    await waitUntil(() => all().some(penalised), { timeoutMs: 5000, what: "the refusal logged" });
    const penalties = () => all().filter((e) => e.event === "penalty");
    await waitUntil(() => penalties().length >= 4, { timeoutMs: 5000, what: "4 penalties logged" });
    // Health checks knock with a wrong token (a v1 header naming HAProxy itself) and accrue nothing.
    const checks = () => all().filter((e) => e.event === "knock" && ip(e.remote) === HAPROXY_SOURCE);
    await waitUntil(() => checks().length >= 6, { timeoutMs: 10_000, what: "6 health checks" });
    expect(checks().every((e) => e.welcomed === false)).toBe(true);
    expect(penalties().length).toBe(4);
    expect(penalties().every((e) => ip(e.remote) === "127.0.0.2")).toBe(true);
    const rows = (await showStat(statsPath)).filter((r) => r.pxname === "gates" && r.svname?.startsWith("gate"));
    expect(rows.every((r) => r.status === "UP")).toBe(true);
  });

  test("TLS passthrough: a TLS client through HAProxy (send-proxy-v2) gets its echo, and the server logs the client", async () => {
    const message = "through HAProxy, encrypted end to end";
    const reply = await new Promise<string>((resolve, reject) => {
      // From the client's own address (passed on to the TCP connection; not in the TLS typings).
      const options = {
        host: "127.0.0.1",
        port: tlsPort,
        localAddress: "127.0.0.3",
        ca: pki.caCert,
        servername: "localhost",
      };
      const socket = tls.connect(options);
      let got = "";
      const timer = setTimeout(() => (socket.destroy(), reject(new Error("no reply within 10 s"))), 10_000);
      socket.on("secureConnect", () => socket.write(message));
      socket.on("data", (chunk) => {
        got += chunk;
        if (got.length >= 6 + message.length) (clearTimeout(timer), socket.end(), resolve(got));
      });
      socket.on("error", (error) => (clearTimeout(timer), reject(error)));
    });
    expect(reply).toBe(`Echo=>${message}`);
    const fromClient = () =>
      events(tlsServer).find((e) => e.event === "connect" && ip(e.remote) === "127.0.0.3") as
        | (JsonEvent & { tls?: { version?: string } })
        | undefined;
    const connect = await waitFor(fromClient, 5000, "the client's connect logged");
    expect(ip(connect.proxy)).toBe(HAPROXY_SOURCE);
    expect(connect.tls?.version).toMatch(/^TLSv1\.[23]$/);
    // The health checks' handshakes (after their LOCAL header) fail nothing either.
    expect(events(tlsServer).filter((e) => e.event === "tls-handshake-failed" || e.event === "refused")).toEqual([]);
  });
});
