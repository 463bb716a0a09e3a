// Fleet-wide penalties end to end: examples/haproxy-fleet.cfg (ports filled in) run by two real
// HAProxy processes, peers of each other on loopback (lb1, lb2), in front of a gate on this runtime
// with --workers 2 that reports the sources it refuses to both balancers' runtime APIs. Clients
// connect from their own loopback addresses (127.0.0.2, …), so each is its own source.

import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { REFUSAL, WELCOME } from "../src/gate/mod.ts";
import {
  exchange,
  freePort,
  haproxyMissingReason,
  hasIpv6Loopback,
  runtimeApi,
  showStat,
  statsSocketAnswers,
} from "./_haproxy.ts";
import { type Child, type ChildServer, ROOT, RUNTIME, startChild, startCliServer, waitUntil } from "./_utils.ts";

const haproxyMissing = haproxyMissingReason();
const ipv6 = await hasIpv6Loopback();
if (haproxyMissing) console.log(`test/haproxy_fleet.test.ts skipped: ${haproxyMissing}`);

const TABLE = "penalised";
const TOKEN = "s3cret";
/** Short penalties: a wrong token adds 3 s, a source is refused beyond 4 s (two wrong knocks). */
const PENALTIES = ["--penalty-exempt", "none", "--penalties", "authfail:3,min:4"];
const tmp = `/tmp/echogate-fleet-${RUNTIME}-${process.pid}`;

interface Balancer {
  name: "lb1" | "lb2";
  stats: string;
  config: string;
  port: number;
  process?: Child;
}

/** gpc0 of the entry for `address` (IPv4; IPv6 as the key itself), or undefined when there is none. */
async function gpc0(lb: Balancer, address: string): Promise<number | undefined> {
  const out = await runtimeApi(lb.stats, `show table ${TABLE}`).catch(() => "");
  const key = address.includes(":") ? address : `::ffff:${address}`;
  const line = out.split("\n").find((l) => l.includes(` key=${key} `));
  const value = line && /gpc0=(\d+)/.exec(line)?.[1];
  return value ? Number(value) : undefined;
}

/** Connections the balancer's gate frontend has refused (`tcp-request connection reject`). */
async function denied(lb: Balancer): Promise<number> {
  const rows = await showStat(lb.stats);
  return Number(rows.find((r) => r.pxname === "gate_in" && r.svname === "FRONTEND")?.dcon ?? NaN);
}

/** Polls the async `check` every 50 ms until it holds, or fails after `ms`; resolves with the time it took. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now();
  await waitUntil(check, { timeoutMs: ms, intervalMs: 50, what });
  return Date.now() - start;
}

/** Knocks through `port` from `source`: the reply, or "" when the connection is refused or reset. */
const knock = (port: number, source: string, token: string) =>
  exchange(port, source, Buffer.from(token), { end: true }).then((reply) => reply.toString(), () => "");

/**
 * Knocks with a wrong token until the source is refused (closed without a reply): two knocks
 * (6 s > 4 s), more if the machine was so slow that the first had decayed below 1 s meanwhile.
 */
async function penalise(wrongKnock: () => Promise<string>): Promise<number> {
  const replies: string[] = [];
  let earned = 0; // when the reply to the knock that got the source refused came
  while (replies.at(-1) !== "" && replies.length < 6) {
    replies.push(await wrongKnock());
    if (replies.at(-1) === REFUSAL) earned = Date.now();
  }
  expect(replies.slice(0, 2)).toEqual([REFUSAL, REFUSAL]);
  expect(replies.at(-1)).toBe("");
  return earned;
}

interface JsonEvent {
  event: string;
  target?: string;
  ok?: boolean;
  remote?: string;
}
const events = (child: Child): JsonEvent[] =>
  `${child.stdout()}\n${child.stderr()}`.split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line)
  );

describe.skipIf(haproxyMissing !== undefined)(`fleet penalties through two HAProxy peers (gate on ${RUNTIME})`, () => {
  const balancers: Balancer[] = (["lb1", "lb2"] as const).map((name) => ({
    name,
    stats: `${tmp}-${name}.sock`,
    config: `${tmp}-${name}.cfg`,
    port: 0,
  }));
  const [lb1, lb2] = balancers as [Balancer, Balancer];
  const children: Child[] = [];
  let gate: ChildServer;
  let lb2Api = "";

  /** Starts the balancer on its config; false when it exits (a port taken meanwhile). */
  async function startBalancer(lb: Balancer): Promise<boolean> {
    const child = startChild(["haproxy", "-db", "-L", lb.name, "-f", lb.config]);
    children.push(child);
    lb.process = child;
    if (await statsSocketAnswers(child, lb.stats)) return true;
    await child.stop();
    return false;
  }

  beforeAll(async () => {
    // lb1's runtime API as a unix socket, lb2's over TCP (lb2 has a unix one too, for this test's own look-ups).
    // That port is fixed before the gate starts: if it was taken meanwhile, lb2 cannot start (rare).
    lb2Api = `127.0.0.1:${await freePort()}`;
    const runtimes = `unix:${lb1.stats},${lb2Api}`;
    gate = await startCliServer(RUNTIME, [
      ...["gate", "serve", "--port", "0", "--proxy-protocol", "--json", "--workers", "2", ...PENALTIES],
      ...["--haproxy-runtime", runtimes, "--haproxy-table", TABLE],
    ], { ECHOGATE_TOKEN: TOKEN });
    children.push(gate);
    const example = readFileSync(`${ROOT}examples/haproxy-fleet.cfg`, "utf8");
    // A free port can be taken between the probe and HAProxy's bind: try again with new ones.
    for (let attempt = 1;; attempt++) {
      const peers = [await freePort(), await freePort()];
      for (const lb of balancers) {
        lb.port = await freePort();
        const config = example
          .replace(
            "stats socket 10.0.0.1:9999 level admin",
            `stats socket ${lb.stats} level admin${lb === lb2 ? `\n    stats socket ${lb2Api} level admin` : ""}`,
          )
          .replace("10.0.0.1:10000", `127.0.0.1:${peers[0]}`)
          .replace("10.0.0.2:10000", `127.0.0.1:${peers[1]}`)
          .replace("bind :8001", `bind 127.0.0.1:${lb.port}${ipv6 ? `\n    bind [::1]:${lb.port}` : ""}`)
          .replace("10.0.1.1:8001", `127.0.0.1:${gate.port}`)
          // One gate here (its two workers share the port): both servers name it.
          .replace("10.0.1.2:8001", `127.0.0.1:${gate.port}`)
          .replaceAll("inter 2s", "inter 500ms");
        writeFileSync(lb.config, config);
      }
      const up = await Promise.all(balancers.map(startBalancer));
      if (up.every(Boolean)) break;
      await Promise.all(balancers.map((lb) => lb.process?.stop()));
      if (attempt === 3) throw new Error(`haproxy did not start: ${children.map((c) => c.stderr()).join("\n")}`);
    }
    // Serving once each balancer's health checks pass.
    for (const lb of balancers) {
      await eventually(
        async () => {
          const rows = (await showStat(lb.stats).catch(() => [])).filter((r) =>
            r.pxname === "gates" && r.svname !== "BACKEND"
          );
          return rows.length === 2 && rows.every((r) => r.status === "UP");
        },
        15_000,
        `${lb.name}'s health checks`,
      );
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop()));
    for (const lb of balancers) rmSync(lb.config, { force: true }), rmSync(lb.stats, { force: true });
  });

  test("haproxy -c passes on examples/haproxy-fleet.cfg, as either balancer", () => {
    for (const name of ["lb1", "lb2"]) {
      const check = spawnSync("haproxy", ["-c", "-L", name, "-f", `${ROOT}examples/haproxy-fleet.cfg`], {
        encoding: "utf8",
      });
      expect(check.status, check.stderr).toBe(0);
    }
  });

  test(
    "a source penalised through lb1 is refused by both balancers at the edge; another source is unaffected",
    async () => {
      const earned = await penalise(() => knock(lb1.port, "127.0.0.2", "wrong"));
      await eventually(
        async () => (await gpc0(lb1, "127.0.0.2")) === 1 && (await gpc0(lb2, "127.0.0.2")) === 1,
        5000,
        "gpc0 1 on both balancers",
      );
      console.log(
        `${RUNTIME}: 127.0.0.2 on both balancers by ${
          Date.now() - earned
        } ms after the knock that got it refused (polled every 50 ms)`,
      );
      for (const lb of balancers) {
        const before = await denied(lb);
        expect(await knock(lb.port, "127.0.0.2", TOKEN)).toBe("");
        expect(await denied(lb)).toBe(before + 1); // HAProxy's reject, not the gate's
        expect(await knock(lb.port, "127.0.0.3", TOKEN)).toBe(WELCOME);
      }
      expect(await gpc0(lb1, "127.0.0.3")).toBeUndefined();
      // Only 127.0.0.2 was penalised: the health checks (HAProxy's own LOCAL connections) accrue nothing.
      const penalised = events(gate).filter((e) => e.event === "penalty").map((e) => e.remote?.replace(/:\d+$/, ""));
      expect(new Set(penalised)).toEqual(new Set(["127.0.0.2"]));
    },
    30_000,
  );

  test(
    "the entry returns to 0 on both balancers once the penalty has decayed, and the source is welcome again",
    async () => {
      await eventually(
        async () => (await gpc0(lb1, "127.0.0.2")) === 0 && (await gpc0(lb2, "127.0.0.2")) === 0,
        15_000,
        "gpc0 0 on both balancers",
      );
      for (const lb of balancers) expect(await knock(lb.port, "127.0.0.2", TOKEN)).toBe(WELCOME);
    },
    30_000,
  );

  test(
    "a restarted balancer gets the state back: the source penalised while it was down is refused by it",
    async () => {
      const label = lb2Api;
      await lb2.process!.stop();
      await penalise(() => knock(lb1.port, "127.0.0.4", "wrong"));
      await eventually(async () => (await gpc0(lb1, "127.0.0.4")) === 1, 5000, "gpc0 1 on lb1");
      const failing = () => events(gate).filter((e) => e.event === "haproxy-runtime" && e.target === label);
      await waitUntil(() => failing().length > 0, { timeoutMs: 10_000, what: "the failing runtime API logged" });
      const started = Date.now();
      expect(await startBalancer(lb2)).toBe(true);
      const ms = await eventually(async () => (await gpc0(lb2, "127.0.0.4")) === 1, 10_000, "gpc0 1 on lb2");
      console.log(
        `${RUNTIME}: the restarted lb2 had 127.0.0.4 ${
          Date.now() - started
        } ms after its start (${ms} ms after its stats socket answered)`,
      );
      const before = await denied(lb2);
      expect(await knock(lb2.port, "127.0.0.4", TOKEN)).toBe("");
      expect(await denied(lb2)).toBe(before + 1);
      // Logged once when it failed (however often retried), once when it answered again: at the
      // gate's next retry, which backs off 0.5, 1, 2, 4, 8, 16 s while lb2 is down (a slow restart
      // under load can leave the next one 16 s away), so the deadline is past the longest gap.
      await waitUntil(() => failing().length === 2, { timeoutMs: 25_000, what: "the recovery logged" });
      expect(failing().map((e) => e.ok).sort()).toEqual([false, true]); // (stderr and stdout: order lost)
    },
    60_000,
  );

  test.skipIf(!ipv6)(
    "an IPv6 source is refused by its /64: the gate reports the network address, HAProxy masks src with ipmask(32,64)",
    async () => {
      await penalise(() => knock(lb1.port, "::1", "wrong"));
      // ::1's /64 is ::/64, its network address :: (the gate writes 0:0:0:0::, HAProxy prints ::).
      await eventually(
        async () => (await gpc0(lb1, "::")) === 1 && (await gpc0(lb2, "::")) === 1,
        5000,
        "gpc0 1 for :: on both balancers",
      );
      const before = await denied(lb2);
      expect(await knock(lb2.port, "::1", TOKEN)).toBe("");
      expect(await denied(lb2)).toBe(before + 1);
    },
    30_000,
  );

  test(
    "TLS: an unreachable runtime API never stops the knocks being answered; the reachable one gets the report",
    async () => {
      const unreachable = [`unix:${tmp}-missing.sock`, `127.0.0.1:${await freePort()}`];
      const tlsGate = await startCliServer(RUNTIME, [
        ...["gate", "serve", "--port", "0", "--tls-self-signed", "--json", ...PENALTIES],
        ...["--haproxy-runtime", [...unreachable, `unix:${lb1.stats}`].join(","), "--haproxy-table", TABLE],
      ], { ECHOGATE_TOKEN: TOKEN });
      children.push(tlsGate);
      const tlsKnock = (source: string, token: string) =>
        new Promise<string>((resolve) => {
          const options = { host: "127.0.0.1", port: tlsGate.port, localAddress: source, rejectUnauthorized: false };
          const socket = tls.connect(options, () => socket.end(token));
          let reply = "";
          socket.on("data", (chunk) => (reply += chunk));
          socket.on("close", () => resolve(reply));
          socket.on("error", () => resolve(reply));
          socket.setTimeout(10_000, () => socket.destroy());
        });
      await penalise(() => tlsKnock("127.0.0.7", "wrong"));
      await eventually(async () => (await gpc0(lb1, "127.0.0.7")) === 1, 5000, "gpc0 1 on lb1");
      await eventually(async () => (await gpc0(lb2, "127.0.0.7")) === 1, 5000, "gpc0 1 on lb2, from its peer");
      const failures = () => events(tlsGate).filter((e) => e.event === "haproxy-runtime");
      await waitUntil(() => failures().length >= 2, { timeoutMs: 10_000, what: "both failing runtime APIs logged" });
      // Retried meanwhile (0.5 s, 1 s, …), logged once each; knocks answered as ever.
      for (let i = 0; i < 5; i++) expect(await tlsKnock("127.0.0.8", TOKEN)).toBe(WELCOME);
      expect(failures().map((e) => [e.target, e.ok]).sort()).toEqual(unreachable.map((t) => [t, false]).sort());
    },
    40_000,
  );
});
