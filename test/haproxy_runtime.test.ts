// The reporter behind --haproxy-runtime, against a stand-in for HAProxy's runtime API (a unix
// socket that answers as HAProxy 2.6 does: an empty line per successful `set table`, the table
// list for `show table`), and the penalty table's onRefusing hook it hangs on.

import { rmSync } from "node:fs";
import net from "node:net";
import { afterEach, describe, expect, test } from "vitest";
import { HaproxyPenaltyReporter } from "../src/haproxy_runtime/mod.ts";
import { isTableName, parseRuntimeApiTargets, tableKey, tableTypeIn } from "../src/haproxy_runtime/runtime_api.ts";
import type { LogEvent } from "../src/log.ts";
import { PenaltyBox } from "../src/gate/penalties.ts";
import { RUNTIME, transport, waitUntil } from "./_utils.ts";

const path = `/tmp/echogate-runtime-api-${RUNTIME}-${process.pid}.sock`;

/** A runtime API stand-in: records each command line; `answer` says what it prints. */
function fakeRuntimeApi(
  answer: (line: string) => string = (line) =>
    line === "show table"
      ? "# table: penalised, type: ipv6, size:100, used:0\n\n"
      : "\n".repeat(line.split(";").length),
) {
  const lines: string[] = [];
  const server = net.createServer((socket) => {
    let got = "";
    socket.on("data", (chunk) => {
      got += chunk;
      const end = got.indexOf("\n");
      if (end === -1) return;
      lines.push(got.slice(0, end));
      socket.end(answer(got.slice(0, end)));
    });
    socket.on("error", () => {});
  });
  const listening = new Promise<void>((resolve) => server.listen(path, resolve));
  return { lines, listening, close: () => new Promise((resolve) => server.close(resolve)) };
}

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  rmSync(path, { force: true });
});

function startReporter(options: { firstRetryMs?: number } = {}) {
  const events: LogEvent[] = [];
  const reporter = new HaproxyPenaltyReporter({
    transport,
    targets: parseRuntimeApiTargets(`unix:${path}`),
    table: "penalised",
    logger: { log: (event) => events.push(event) },
    ...options,
  });
  closers.push(() => reporter.close());
  return { reporter, events };
}

const sets = (lines: string[]) => lines.filter((l) => l !== "show table").flatMap((l) => l.split("; "));

describe(`HAProxy runtime API reports (on ${RUNTIME})`, () => {
  test("a refused source is set to 1 once (IPv6 as its /64, IPv4 as HAProxy stores it), and to 0 once its penalty has decayed", async () => {
    const api = fakeRuntimeApi();
    closers.push(api.close);
    await api.listening;
    const { reporter } = startReporter();
    const box = new PenaltyBox({ exempt: [], authfailSeconds: 0.4, minSeconds: 0.3, onRefusing: reporter.refusing });
    box.penalize("192.0.2.7", "authfail");
    box.penalize("192.0.2.7", "authfail"); // refused longer: nothing new to report
    box.penalize("2001:db8:1:2::7", "authfail");
    box.penalize("192.0.2.8", "noauth"); // 1 s default, over min 0.3 s
    const t = "set table penalised key";
    await waitUntil(() => sets(api.lines).length === 6, { timeoutMs: 10_000, what: "six updates" });
    expect(sets(api.lines).slice(0, 3).sort()).toEqual([
      `${t} 2001:db8:1:2:: data.gpc0 1`,
      `${t} ::ffff:192.0.2.7 data.gpc0 1`,
      `${t} ::ffff:192.0.2.8 data.gpc0 1`,
    ]);
    expect(sets(api.lines).slice(3).sort()).toEqual([
      `${t} 2001:db8:1:2:: data.gpc0 0`,
      `${t} ::ffff:192.0.2.7 data.gpc0 0`,
      `${t} ::ffff:192.0.2.8 data.gpc0 0`,
    ]);
    expect(reporter.refusedSources).toBe(0);
    // The three sources penalised in one go went out on one connection.
    expect(api.lines.filter((l) => l !== "show table")[0]!.split("; ")).toHaveLength(3);
  });

  test("a failing runtime API is logged once, retried with back-off, and once it answers gets the sources refused now (latest value only)", async () => {
    const { reporter, events } = startReporter({ firstRetryMs: 100 });
    const box = new PenaltyBox({ exempt: [], minSeconds: 0.2, onRefusing: reporter.refusing });
    box.penalize("192.0.2.7", "authfail"); // refused 5 s
    box.penalize("192.0.2.8", "noauth"); // refused 1 s: decays while the API is down
    await waitUntil(() => events.length > 0, { timeoutMs: 10_000, what: "the failure logged" });
    expect(events[0]).toMatchObject({ event: "haproxy-runtime", target: `unix:${path}`, ok: false });
    // The retries' window itself is under test: retried at 0.1, 0.3, 0.7, 1.5 s, and not logged again.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(events).toHaveLength(1);
    const api = fakeRuntimeApi();
    closers.push(api.close);
    await api.listening;
    await waitUntil(() => events.length === 2, { timeoutMs: 10_000, what: "the recovery logged" });
    expect(events[1]).toMatchObject({ event: "haproxy-runtime", ok: true });
    await waitUntil(() => sets(api.lines).length >= 2, { timeoutMs: 10_000, what: "both sources" });
    expect(sets(api.lines).sort()).toEqual([
      "set table penalised key ::ffff:192.0.2.7 data.gpc0 1",
      "set table penalised key ::ffff:192.0.2.8 data.gpc0 0", // its 1 never went out
    ]);
  });

  test("an answer other than empty lines (HAProxy's error) is a failure, with HAProxy's words", async () => {
    const api = fakeRuntimeApi((line) =>
      line === "show table" ? "# table: penalised, type: ip, size:1, used:0\n\n" : "Permission denied\n\n"
    );
    closers.push(api.close);
    await api.listening;
    const { reporter, events } = startReporter();
    reporter.refusing("192.0.2.7", Date.now() + 60_000);
    await waitUntil(() => events.length > 0, { timeoutMs: 10_000, what: "the failure logged" });
    expect(events[0]).toMatchObject({ ok: false, message: "Permission denied" });
    expect(api.lines).toContain("set table penalised key 192.0.2.7 data.gpc0 1"); // an `ip` table: IPv4 as it is
  });

  test("what is written to the socket is checked: table names, keys made from parsed addresses, the table's type", () => {
    expect(isTableName("penalised.v2_x-1")).toBe(true);
    for (const bad of ["", "t t", "t;clear table t", "t\nshow", "a".repeat(65)]) expect(isTableName(bad)).toBe(false);
    expect(tableKey("192.0.2.7", "ip")).toBe("192.0.2.7");
    expect(tableKey("::ffff:192.0.2.7", "ipv6")).toBe("::ffff:192.0.2.7");
    expect(tableKey("2001:DB8:0:ff::1%eth0", "ipv6")).toBe("2001:db8:0:ff::");
    expect(tableKey("2001:db8::1", "ip")).toBeUndefined();
    expect(tableKey("192.0.2.7; clear table t", "ip")).toBeUndefined();
    expect(() => tableTypeIn("# table: t, type: string, size:1, used:0\n", "t")).toThrow(/type string/);
    expect(() => tableTypeIn("\n", "t")).toThrow(/no stick table "t"/);
    expect(() => tableTypeIn("Unknown command\n", "t")).toThrow(/failed: Unknown command/);
    expect(parseRuntimeApiTargets("unix:/run/a.sock,127.0.0.1:9999,[::1]:9999").map((t) => t.endpoint)).toEqual([
      { path: "/run/a.sock" },
      { hostname: "127.0.0.1", port: 9999 },
      { hostname: "::1", port: 9999 },
    ]);
    for (const bad of ["", "unix:", "host", "host:0", "a b:1", "h:99999"]) {
      expect(() => parseRuntimeApiTargets(bad), bad).toThrow(/--haproxy-runtime/);
    }
  });
});

describe("PenaltyBox onRefusing", () => {
  test("is called when a source starts being refused and when its refusal is extended; a decayed entry starts afresh", () => {
    let now = 0;
    const calls: [string, number][] = [];
    const box = new PenaltyBox({ exempt: [], now: () => now, onRefusing: (a, until) => calls.push([a, until]) });
    for (let i = 0; i < 3; i++) box.penalize("192.0.2.7", "authfail"); // 15 s: not beyond min
    expect(calls).toEqual([]);
    box.penalize("192.0.2.7", "authfail"); // 20 s
    expect(calls).toEqual([["192.0.2.7", 20_000]]);
    now = 1000;
    box.penalize("192.0.2.7", "noauth");
    expect(calls.at(-1)).toEqual(["192.0.2.7", 21_000]);
    now = 30_000; // decayed, never looked up since: one penalty more does not refuse it
    box.penalize("192.0.2.7", "authfail");
    expect(box.isBlocked("192.0.2.7")).toBe(false);
    expect(calls).toHaveLength(2);
  });
});
