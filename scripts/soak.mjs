// The soak run: drives echogate's CLI servers on one runtime for M minutes with a mix of peers,
// samples the servers every few seconds, verifies every echoed byte, and ends with a table, an SVG
// plot and a verdict. Not part of `npm test`.
//
//   npm run soak -- --minutes 10 --runtime deno [--interval 5] [--out bench/soak]
//
// Three servers run in child processes: `echo serve` (chunk mode), `echo serve --mode line
// --max-line 1024` and `gate serve`, each with --json (the driver reads and counts every log line).
// The peers, all plain node:net sockets in this process:
//   pingpong   4 connections, each a loop of 1-512 byte messages answered before the next;
//   stream     2 connections writing 16 KiB blocks (at most 256 KiB unanswered, ~4 MB/s each),
//              reconnecting every 16 MiB;
//   churn      2 loops: connect, one message, its echo, close;
//   reset      a loop: 64 KiB sent, reset (RST, SO_LINGER 0) as soon as the reply starts;
//   slow       a loop: 512 KiB sent, read 16 KiB at a time with a 20 ms pause after each read;
//   overlong   a loop on the line server: one good line echoed, then 4 KiB without a newline, which
//              must close the connection with nothing more sent;
//   knock      a loop on the gate: the right token (welcome) and a wrong one (please go out), in turn.
// Every echoed byte is checked against what was sent (payloads are lowercase letters, so the
// "Echo=>" prefixes can be told apart). Each sample records each server's RSS and open descriptors
// (/proc), a probe's round trip (a one-byte echo on a connection kept for it; a knock on the gate)
// as the event-loop delay, and the counts since the previous sample.
//
// Verdict: RSS's warm-up, measured from the data (see warmupEnd), is over by mid-run and RSS grows
// less than 1 MiB/min after it; descriptors grow less than 1/min over the second half (least-squares
// slopes); no probe took 1 s or more; no byte was lost or corrupted; no unexpected error on either
// side; every server exits 0 on SIGTERM; with --heap, the live heap after the load and a full GC is
// within 2 MiB of what it was before.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { heapSample, INSPECTOR_NOTICE, inspectorUrl, openInspector } from "./_inspector.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = `${root}node_modules/.bin`;

// --- options ---

const PEERS = ["pingpong", "stream", "churn", "reset", "slow", "overlong", "knock"];

function parseOptions(argv) {
  const options = {
    minutes: 10,
    runtime: "node",
    interval: 5,
    out: `${root}bench/soak`,
    heap: false,
    only: PEERS.join(","),
    "server-flags": "",
  };
  const strings = ["runtime", "out", "only", "server-flags"];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, "");
    if (name === "heap") {
      options.heap = true;
      continue;
    }
    const value = argv[++i];
    if (!(name in options) || value === undefined) usage(`unknown option or missing value: ${argv[i - 1]}`);
    options[name] = strings.includes(name) ? value : Number(value);
  }
  if (!["node", "deno", "bun"].includes(options.runtime)) usage(`--runtime must be node, deno or bun`);
  if (!(options.minutes > 0) || !(options.interval > 0)) usage("--minutes and --interval must be positive numbers");
  if (options.heap && options.runtime === "bun") usage("--heap reads the V8 inspector: node or deno only");
  options.peers = options.only.split(",").filter(Boolean);
  const unknown = options.peers.filter((peer) => !PEERS.includes(peer));
  if (unknown.length > 0 || options.peers.length === 0) usage(`--only takes a list of ${PEERS.join(",")}`);
  return options;
}

function usage(message) {
  console.error(
    `soak: ${message}\nUsage: npm run soak -- --minutes M --runtime node|deno|bun [--interval S] [--out DIR]\n` +
      `       [--heap] [--only ${PEERS.join(",")}] [--server-flags "RUNTIME FLAGS"]`,
  );
  process.exit(2);
}

const options = parseOptions(process.argv.slice(2));
const TOKEN = "soak-token";
const MiB = 1024 * 1024;
const RSS_SLOPE_LIMIT = 1; // MiB per minute
const FD_SLOPE_LIMIT = 1; // descriptors per minute
const PROBE_LIMIT_MS = 1000;
const LIVE_HEAP_SLACK_MIB = 2; // code compiled and caches filled by the load; a per-connection leak is far more

/** The CLI's command line; `flags` go to the runtime (e.g. `--v8-flags=…`, `--inspect=…`). */
function cliCommand(runtime, flags) {
  switch (runtime) {
    case "node":
      return ["node", ...flags, `${root}npm/bin/echogate.mjs`];
    case "deno":
      return [`${bin}/deno`, "run", ...flags, "-A", `${root}src/cli.ts`];
    case "bun":
      return [`${bin}/bun`, ...flags, `${root}src/cli.ts`];
  }
}

const runtimeFlags = () => [
  ...options["server-flags"].split(" ").filter(Boolean),
  ...(options.heap ? ["--inspect=127.0.0.1:0"] : []),
];

// --- servers ---

const EXPECTED_SERVER_ERROR = /ECONNRESET|EPIPE|reset by peer|Broken pipe|Connection reset|Socket is closed/i;

/** Starts one CLI server with --json, counting its events and keeping unexpected errors. */
function startServer(name, args) {
  const [command, ...rest] = cliCommand(options.runtime, runtimeFlags());
  const child = spawn(command, [...rest, ...args, "--json"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ECHOGATE_TOKEN: TOKEN },
  });
  const server = {
    name,
    child,
    port: 0,
    inspector: undefined, // the inspector's ws:// URL with --heap
    events: {},
    lines: 0,
    unexpected: [],
    expectedErrors: 0,
    exited: new Promise((resolve) => child.on("close", (code, signal) => resolve(code ?? signal))),
  };
  const onEvent = (line) => {
    if (line === "") return;
    server.lines++;
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      server.unexpected.push(`not a JSON line: ${line.slice(0, 200)}`);
      return;
    }
    server.events[event.event] = (server.events[event.event] ?? 0) + 1;
    if (event.event === "listening") server.port = Number(/:(\d+)$/.exec(event.address)?.[1]);
    if (event.event === "error" || event.event === "accept-error" || event.event === "log-dropped") {
      if (event.event === "error" && EXPECTED_SERVER_ERROR.test(event.message)) server.expectedErrors++;
      else server.unexpected.push(line.slice(0, 300));
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop();
      for (const line of lines) {
        if (stream === child.stderr && !line.startsWith("{")) {
          server.inspector ??= inspectorUrl(line);
          // Warnings are fine; anything else on stderr that is not an event is not.
          if (line !== "" && !/^echogate: warning:/.test(line) && !INSPECTOR_NOTICE.test(line)) {
            server.unexpected.push(line.slice(0, 300));
          }
        } else onEvent(line);
      }
    });
  }
  return server;
}

async function waitListening(server) {
  const end = Date.now() + 30_000;
  while (server.port === 0 || (options.heap && server.inspector === undefined)) {
    if (server.child.exitCode !== null || Date.now() > end) throw new Error(`${server.name} did not start`);
    await sleep(20);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function rssMiB(pid) {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return kb / 1024;
}

const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;

const MALLOC_TRIM =
  `Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } }).symbols.malloc_trim(0n)`;

/** RSS split into anonymous memory (heaps, buffers) and file-backed pages (the binary), in MiB. */
function rssParts(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { anon: round(kb("Anonymous") / 1024, 1), file: round((kb("Rss") - kb("Anonymous")) / 1024, 1) };
}

const threadCount = (pid) => Number(/Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);

// --- verification ---

/** Byte `i` of a connection's payload: lowercase letters only, never the prefix's "E". */
const patternByte = (i) => 97 + ((i * 7 + (i >>> 12)) % 26);

function pattern(offset, length) {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = patternByte(offset + i);
  return bytes;
}

/** Checks a chunk-mode echo as it arrives: "Echo=>" frames around the payload, in order. */
class EchoVerifier {
  received = 0;
  error = undefined;
  #inPrefix = 0;
  static PREFIX = Buffer.from("Echo=>");
  push(chunk) {
    for (let k = 0; k < chunk.length && this.error === undefined; k++) {
      const byte = chunk[k];
      if (this.#inPrefix > 0) {
        if (byte !== EchoVerifier.PREFIX[this.#inPrefix]) this.error = `bad prefix byte at offset ${this.received}`;
        this.#inPrefix = (this.#inPrefix + 1) % EchoVerifier.PREFIX.length;
      } else if (byte === 0x45) this.#inPrefix = 1;
      else if (byte !== patternByte(this.received)) {
        this.error = `byte ${this.received} is ${byte}, expected ${patternByte(this.received)}`;
      } else this.received++;
    }
  }
}

// --- counters ---

const totals = {
  pingpong: 0,
  streamBytes: 0,
  churn: 0,
  resets: 0,
  slow: 0,
  overlong: 0,
  knocks: 0,
  verifiedBytes: 0,
  corrupted: 0,
  lost: 0,
  errors: 0,
};
const unexpected = [];

function fail(kind, what) {
  totals[kind]++;
  if (unexpected.length < 20) unexpected.push(`${new Date().toISOString()} ${kind}: ${what}`);
}

let running = true;

/** A connected node:net socket, or a rejection after 10 s. */
function connect(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("connect timed out"))), 10_000);
    socket.once("connect", () => (clearTimeout(timer), socket.off("error", reject), resolve(socket)));
    socket.once("error", (error) => (clearTimeout(timer), reject(error)));
  });
}

/**
 * Reads from `socket` into `verifier` until `until()` holds; rejects on error, on end of input
 * before that, or after `ms` without progress.
 */
function readUntil(socket, verifier, until, ms = 10_000) {
  return new Promise((resolve, reject) => {
    let timer;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(new Error(`no progress in ${ms} ms (${verifier.received} bytes verified)`)), ms);
    };
    const onData = (chunk) => {
      verifier.push(chunk);
      if (verifier.error !== undefined) return done(new Corruption(verifier.error));
      arm();
      if (until()) done();
    };
    const onEnd = () => done(new Lost(`end of input after ${verifier.received} bytes`));
    const onError = (error) => done(error);
    function done(error) {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      if (error) reject(error);
      else resolve();
    }
    if (until()) return resolve();
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onError);
    arm();
  });
}

class Corruption extends Error {}
class Lost extends Error {}

function classify(error, what) {
  if (error instanceof Corruption) fail("corrupted", `${what}: ${error.message}`);
  else if (error instanceof Lost) fail("lost", `${what}: ${error.message}`);
  else fail("errors", `${what}: ${error?.message ?? error}`);
}

/** Closes gracefully: our FIN, then the server's. */
function endAndWait(socket, ms = 10_000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => (socket.destroy(), resolve(false)), ms);
    socket.once("close", () => (clearTimeout(timer), resolve(true)));
    socket.resume(); // anything still arriving is read (and dropped), so our close sends no RST
    socket.end();
  });
}

/** Runs `body` in a loop until the soak ends, counting its failures as `what`. */
async function loop(what, body, pause = 0) {
  while (running) {
    try {
      await body();
    } catch (error) {
      classify(error, what);
      await sleep(100);
    }
    if (pause > 0) await sleep(pause);
  }
}

// --- the peers ---

async function pingpong(port) {
  const socket = await connect(port);
  const verifier = new EchoVerifier();
  let sent = 0;
  try {
    while (running) {
      const length = 1 + Math.floor(Math.random() * 512);
      socket.write(pattern(sent, length));
      sent += length;
      await readUntil(socket, verifier, () => verifier.received === sent);
      totals.pingpong++;
      totals.verifiedBytes += length;
      await sleep(1);
    }
  } finally {
    await endAndWait(socket);
  }
}

async function stream(port) {
  const socket = await connect(port);
  const verifier = new EchoVerifier();
  const total = 16 * MiB;
  const block = 16 * 1024;
  let sent = 0;
  let counted = 0;
  const started = Date.now();
  const reading = readUntil(socket, {
    get received() {
      return verifier.received;
    },
    get error() {
      return verifier.error;
    },
    push(chunk) {
      verifier.push(chunk);
      totals.streamBytes += verifier.received - counted;
      totals.verifiedBytes += verifier.received - counted;
      counted = verifier.received;
    },
  }, () => verifier.received === total);
  reading.catch(() => {});
  while (sent < total && running) {
    if (sent - verifier.received >= 256 * 1024) {
      await sleep(5);
      continue;
    }
    socket.write(pattern(sent, block));
    sent += block;
    const ahead = sent / (4 * MiB) * 1000 - (Date.now() - started); // ~4 MB/s
    if (ahead > 0) await sleep(ahead);
  }
  if (sent === total) await reading;
  await endAndWait(socket);
}

async function churn(port) {
  const socket = await connect(port);
  const verifier = new EchoVerifier();
  socket.write(pattern(0, 32));
  await readUntil(socket, verifier, () => verifier.received === 32);
  if (!(await endAndWait(socket))) throw new Error("the server did not close after our FIN");
  totals.churn++;
  totals.verifiedBytes += 32;
}

async function reset(port) {
  const socket = await connect(port);
  await new Promise((resolve) => {
    const timer = setTimeout(() => (socket.destroy(), fail("errors", "reset: no reply in 10 s"), resolve()), 10_000);
    socket.once("data", () => (clearTimeout(timer), socket.resetAndDestroy(), resolve()));
    socket.on("error", () => {}); // our own reset
    socket.write(pattern(0, 64 * 1024));
  });
  totals.resets++;
}

async function slowReader(port) {
  const socket = await connect(port);
  const verifier = new EchoVerifier();
  const total = 512 * 1024;
  socket.write(pattern(0, total));
  // Read 16 KiB at a time, pausing 20 ms after each read.
  const reading = readUntil(
    socket,
    {
      get received() {
        return verifier.received;
      },
      get error() {
        return verifier.error;
      },
      push(chunk) {
        for (let offset = 0; offset < chunk.length; offset += 16 * 1024) {
          verifier.push(chunk.subarray(offset, offset + 16 * 1024));
        }
        socket.pause();
        setTimeout(() => socket.resume(), 20);
      },
    },
    () => verifier.received === total,
    20_000,
  );
  await reading;
  await endAndWait(socket);
  totals.slow++;
  totals.verifiedBytes += total;
}

async function overlong(port) {
  const socket = await connect(port);
  let reply = "";
  socket.setEncoding("latin1");
  const closed = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("overlong: not closed in 10 s")), 10_000);
    socket.on("data", (chunk) => (reply += chunk));
    socket.on("error", () => {}); // closing with our line unread makes the server's kernel reset
    socket.once("end", () => socket.destroy()); // the server closed: so do we
    socket.once("close", () => (clearTimeout(timer), resolve()));
  });
  socket.write("good line\n");
  const end = Date.now() + 10_000;
  while (reply.length < "Echo=>good line\n".length && Date.now() < end) await sleep(2);
  socket.write(Buffer.alloc(4096, 120)); // 4 KiB of "x", no newline: over --max-line 1024
  await closed;
  if (reply !== "Echo=>good line\n") throw new Corruption(`overlong: reply ${JSON.stringify(reply.slice(0, 80))}`);
  totals.overlong++;
  totals.verifiedBytes += 10;
}

let knockTurn = 0;
async function knock(port) {
  const right = knockTurn++ % 2 === 0;
  const socket = await connect(port);
  let reply = "";
  socket.setEncoding("latin1");
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => (socket.destroy(), reject(new Error("knock: no reply in 10 s"))), 10_000);
    socket.on("data", (chunk) => (reply += chunk));
    socket.once("error", (error) => (clearTimeout(timer), reject(error)));
    socket.once("end", () => (clearTimeout(timer), socket.end(), resolve()));
    socket.write(right ? TOKEN : "wrong-token");
  });
  const expected = right ? "welcome to server!" : "please go out!";
  if (reply !== expected) throw new Corruption(`knock: ${JSON.stringify(reply)}, expected ${JSON.stringify(expected)}`);
  totals.knocks++;
}

// --- probes: the event-loop delay as a client sees it ---

async function echoProbe(port) {
  const socket = await connect(port);
  const verifier = new EchoVerifier();
  let sent = 0;
  return {
    async measure() {
      const started = performance.now();
      socket.write(pattern(sent, 1));
      sent++;
      await readUntil(socket, verifier, () => verifier.received === sent);
      return performance.now() - started;
    },
    close: () => endAndWait(socket),
  };
}

function knockProbe(port) {
  return {
    async measure() {
      const started = performance.now();
      const socket = await connect(port);
      await new Promise((resolve, reject) => {
        socket.once("data", resolve);
        socket.once("error", reject);
        socket.write(TOKEN);
      });
      const ms = performance.now() - started;
      await endAndWait(socket);
      return ms;
    },
    close: async () => {},
  };
}

// --- analysis and output ---

/** Least-squares slope of `ys` over `xs`. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * When RSS stopped warming up: the earliest sample time after which its peak rose by less than
 * the growth limit allows over the rest of the run (a leak never lets that happen before the end;
 * a heap or an allocator reaching its working size does, once). In seconds from the start.
 */
function warmupEnd(ts, values, limitPerMinute) {
  const end = ts.at(-1);
  let peakBefore = -Infinity;
  const peakAfter = values.map((_, i) => Math.max(...values.slice(i)));
  for (let i = 0; i < values.length; i++) {
    peakBefore = Math.max(peakBefore, values[i]);
    if (peakAfter[i] - peakBefore < limitPerMinute * ((end - ts[i]) / 60)) return ts[i];
  }
  return end;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c"];

/** An SVG of RSS and descriptors over time, one line per server, hand-written (no dependency). */
function plot(samples, servers, title) {
  const width = 760;
  const panel = { left: 60, right: 150, top: 40, height: 170, gap: 60 };
  const panels = [
    { key: "rss", label: "RSS (MiB)" },
    ...(samples[0]?.servers[servers[0]].heapCommitted !== undefined
      ? [
        { key: "heapCommitted", label: "V8 heap committed (MiB)" },
        { key: "external", label: "V8 external memory: ArrayBuffers and the like (MiB)" },
      ]
      : []),
    { key: "fds", label: "open descriptors" },
  ].map((p, i) => ({ ...p, top: panel.top + i * (panel.height + panel.gap) }));
  const height = panel.top + panels.length * panel.height + (panels.length - 1) * panel.gap + 40;
  const tMax = Math.max(1, samples.at(-1)?.t ?? 1);
  const plotWidth = width - panel.left - panel.right;
  const x = (t) => panel.left + (t / tMax) * plotWidth;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (const { key, label, top } of panels) {
    const values = samples.flatMap((s) => servers.map((server) => s.servers[server][key])).filter(Number.isFinite);
    const vMax = niceCeiling(Math.max(1, ...values));
    const y = (v) => top + panel.height - (v / vMax) * panel.height;
    parts.push(
      `<rect x="${panel.left}" y="${top}" width="${plotWidth}" height="${panel.height}" fill="none" stroke="#999"/>`,
    );
    for (let i = 0; i <= 4; i++) {
      const v = (vMax * i) / 4;
      parts.push(
        `<line x1="${panel.left}" x2="${panel.left + plotWidth}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`,
        `<text x="${panel.left - 6}" y="${y(v) + 4}" text-anchor="end">${round(v, 1)}</text>`,
      );
    }
    for (let i = 0; i <= 5; i++) {
      const t = (tMax * i) / 5;
      parts.push(
        `<text x="${x(t)}" y="${top + panel.height + 14}" text-anchor="middle">${round(t / 60, 1)} min</text>`,
      );
    }
    // The warm-up boundary: the verdict looks at what comes after.
    parts.push(
      `<line x1="${x(tMax / 2)}" x2="${x(tMax / 2)}" y1="${top}" y2="${
        top + panel.height
      }" stroke="#bbb" stroke-dasharray="4 3"/>`,
      `<text x="${panel.left}" y="${top - 6}">${label}</text>`,
    );
    servers.forEach((server, i) => {
      const points = samples.filter((s) => Number.isFinite(s.servers[server][key]))
        .map((s) => `${round(x(s.t), 1)},${round(y(s.servers[server][key]), 1)}`).join(" ");
      parts.push(`<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${points}"/>`);
      parts.push(
        `<line x1="${width - panel.right + 12}" x2="${width - panel.right + 30}" y1="${top + 14 + i * 16}" y2="${
          top + 14 + i * 16
        }" stroke="${COLORS[i % COLORS.length]}" stroke-width="2"/>`,
        `<text x="${width - panel.right + 34}" y="${top + 18 + i * 16}">${escapeXml(server)}</text>`,
      );
    });
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

function niceCeiling(v) {
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}

const round = (v, digits = 0) => Number(v.toFixed(digits));
const escapeXml = (s) => s.replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]);

// --- the run ---

async function main() {
  if (options.runtime === "node" && !existsSync(`${root}npm/bin/echogate.mjs`)) {
    usage("the node CLI runs the built package: run `npm run build` first");
  }
  const servers = {
    echo: startServer("echo", ["echo", "serve", "--port", "0"]),
    line: startServer("echo --mode line", ["echo", "serve", "--port", "0", "--mode", "line", "--max-line", "1024"]),
    gate: startServer("gate", ["gate", "serve", "--port", "0"]),
  };
  const names = Object.keys(servers);
  // Interrupted (Ctrl-C, a timeout's SIGTERM): the servers go too, not left running.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(signal, () => {
      for (const server of Object.values(servers)) server.child.kill("SIGKILL");
      process.exit(130);
    });
  }
  try {
    for (const server of Object.values(servers)) await waitListening(server);
  } catch (error) {
    for (const server of Object.values(servers)) server.child.kill("SIGKILL");
    throw error;
  }
  const echoPort = servers.echo.port;
  const probes = {
    echo: await echoProbe(echoPort),
    line: await lineProbe(servers.line.port),
    gate: knockProbe(servers.gate.port),
  };

  console.log(
    `soak: ${options.runtime}, ${options.minutes} min, a sample every ${options.interval} s; servers ` +
      names.map((name) => `${servers[name].name} (pid ${servers[name].child.pid})`).join(", "),
  );
  const inspectors = {};
  const baseline = {};
  if (options.heap) {
    for (const name of names) {
      inspectors[name] = await openInspector(servers[name].inspector);
      await inspectors[name].send("HeapProfiler.collectGarbage");
      baseline[name] = await memoryOf(name);
    }
  }
  const peers = {
    pingpong: () => Array.from({ length: 4 }, () => loop("pingpong", () => pingpong(echoPort))),
    stream: () => Array.from({ length: 2 }, () => loop("stream", () => stream(echoPort))),
    churn: () => Array.from({ length: 2 }, () => loop("churn", () => churn(echoPort), 10)),
    reset: () => [loop("reset", () => reset(echoPort), 20)],
    slow: () => [loop("slow", () => slowReader(echoPort))],
    overlong: () => [loop("overlong", () => overlong(servers.line.port), 50)],
    knock: () => [loop("knock", () => knock(servers.gate.port), 20)],
  };
  const workers = options.peers.flatMap((peer) => peers[peer]());

  /** RSS, its parts, descriptors, threads and (with --heap) the V8 heap of one server. */
  async function memoryOf(name) {
    const pid = servers[name].child.pid;
    const sample = { rss: NaN, fds: NaN };
    try {
      sample.rss = round(rssMiB(pid), 1);
      sample.fds = fdCount(pid);
      Object.assign(sample, rssParts(pid), { threads: threadCount(pid) });
    } catch {
      fail("errors", `${name} server is gone`);
    }
    if (options.heap) {
      try {
        Object.assign(sample, await heapSample(inspectors[name], options.runtime));
      } catch (error) {
        fail("errors", `heap of ${name}: ${error.message}`);
      }
    }
    return sample;
  }

  const samples = [];
  const started = Date.now();
  const end = started + options.minutes * 60_000;
  let previous = { ...totals };
  console.log(
    "  time   " + names.map((n) => `${n.padEnd(5)} RSS  fds probe`).join(" | ") +
      " | pingpong stream MB churn resets knocks errors",
  );
  while (Date.now() < end) {
    await sleep(Math.min(options.interval * 1000, end - Date.now()));
    const sample = { t: (Date.now() - started) / 1000, servers: {}, counts: {} };
    for (const name of names) {
      let probeMs;
      try {
        probeMs = await probes[name].measure();
      } catch (error) {
        classify(error, `probe ${name}`);
        probeMs = NaN;
      }
      sample.servers[name] = { ...(await memoryOf(name)), probeMs: round(probeMs, 2) };
    }
    for (const key of Object.keys(totals)) sample.counts[key] = totals[key] - previous[key];
    previous = { ...totals };
    sample.serverUnexpected = names.reduce((n, name) => n + servers[name].unexpected.length, 0);
    samples.push(sample);
    const c = sample.counts;
    console.log(
      `${(sample.t / 60).toFixed(2).padStart(6)}m ` +
        names.map((n) => {
          const s = sample.servers[n];
          const heap = options.heap ? ` heap ${s.heapUsed}/${s.heapCommitted} ext ${s.external} anon ${s.anon}` : "";
          return `${String(s.rss).padStart(10)} ${String(s.fds).padStart(4)} ${String(s.probeMs).padStart(5)}${heap}`;
        }).join(" | ") +
        ` | ${String(c.pingpong).padStart(8)} ${(c.streamBytes / 1e6).toFixed(1).padStart(9)} ${
          String(c.churn).padStart(5)
        } ${String(c.resets).padStart(6)} ${String(c.knocks).padStart(6)} ${
          String(c.errors + c.lost + c.corrupted + sample.serverUnexpected).padStart(6)
        }`,
    );
  }

  running = false;
  await Promise.race([Promise.all(workers), sleep(30_000)]);
  for (const probe of Object.values(probes)) await probe.close();
  // With --heap: the servers' memory once the load has stopped, then again after a full GC. What a
  // GC gives back was garbage; what stays in the heap is live; RSS that stays above the heap is
  // native memory (buffers, the allocator).
  const afterLoad = {};
  if (options.heap) {
    await sleep(options.interval * 1000);
    for (const name of names) afterLoad[name] = { idle: await memoryOf(name) };
    for (const name of names) {
      await inspectors[name].send("HeapProfiler.collectGarbage").catch((error) =>
        fail("errors", `GC of ${name}: ${error.message}`)
      );
    }
    await sleep(options.interval * 1000);
    for (const name of names) afterLoad[name].afterGc = await memoryOf(name);
    if (options.runtime === "deno") {
      // Then glibc's malloc_trim(0) (through Deno's FFI): what RSS gives back now was freed memory
      // the allocator kept (Deno allocates with glibc malloc), not memory anything still holds.
      for (const name of names) {
        await inspectors[name].send("Runtime.evaluate", { expression: MALLOC_TRIM, returnByValue: true })
          .catch((error) => fail("errors", `malloc_trim of ${name}: ${error.message}`));
      }
      await sleep(options.interval * 1000);
      for (const name of names) afterLoad[name].afterTrim = await memoryOf(name);
    }
    for (const name of names) inspectors[name].close();
    console.log(`after the load: ${JSON.stringify(afterLoad)}`);
  }
  const exits = {};
  for (const name of names) {
    servers[name].child.kill("SIGTERM");
    const code = await Promise.race([servers[name].exited, sleep(15_000).then(() => "timeout")]);
    if (code === "timeout") servers[name].child.kill("SIGKILL");
    exits[name] = code;
  }

  // --- verdict ---
  const second = samples.filter((s) => s.t >= samples.at(-1).t / 2);
  const minutes = second.map((s) => s.t / 60);
  const perServer = {};
  const checks = [];
  for (const name of names) {
    const rssSlope = slope(minutes, second.map((s) => s.servers[name].rss));
    const warmup = warmupEnd(samples.map((s) => s.t), samples.map((s) => s.servers[name].rss), RSS_SLOPE_LIMIT);
    const afterWarmup = samples.filter((s) => s.t >= warmup);
    const warmSlope = slope(afterWarmup.map((s) => s.t / 60), afterWarmup.map((s) => s.servers[name].rss));
    const fdSlope = slope(minutes, second.map((s) => s.servers[name].fds));
    const rss = samples.map((s) => s.servers[name].rss);
    const probesMs = samples.map((s) => s.servers[name].probeMs).filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
    perServer[name] = {
      rssFirst: rss[0],
      rssMax: Math.max(...rss),
      rssLast: rss.at(-1),
      rssSlopeMiBPerMin: round(rssSlope, 3),
      rssWarmupEndMin: round(warmup / 60, 2),
      rssSlopeAfterWarmupMiBPerMin: round(warmSlope, 3),
      fdsFirst: samples[0].servers[name].fds,
      fdsMax: Math.max(...samples.map((s) => s.servers[name].fds)),
      fdsLast: samples.at(-1).servers[name].fds,
      fdSlopePerMin: round(fdSlope, 3),
      probeMedianMs: probesMs[Math.floor(probesMs.length / 2)],
      probeMaxMs: probesMs.at(-1),
      events: servers[name].events,
      logLines: servers[name].lines,
      expectedErrors: servers[name].expectedErrors,
      unexpected: servers[name].unexpected.slice(0, 10),
      unexpectedCount: servers[name].unexpected.length,
      exit: exits[name],
      ...(options.heap && { heapBaseline: baseline[name], afterLoad: afterLoad[name] }),
    };
    const s = perServer[name];
    const half = samples.at(-1).t / 2;
    checks.push(
      [
        `${name}: RSS warm-up over by mid-run (its peak stopped rising at ${s.rssWarmupEndMin} min)`,
        warmup <= half,
      ],
      [
        `${name}: RSS slope after warm-up ${s.rssSlopeAfterWarmupMiBPerMin} MiB/min < ${RSS_SLOPE_LIMIT}`,
        warmSlope < RSS_SLOPE_LIMIT,
      ],
      [`${name}: descriptor slope ${s.fdSlopePerMin}/min < ${FD_SLOPE_LIMIT}`, fdSlope < FD_SLOPE_LIMIT],
      [`${name}: slowest probe ${s.probeMaxMs} ms < ${PROBE_LIMIT_MS}`, s.probeMaxMs < PROBE_LIMIT_MS],
      [`${name}: no unexpected server error (${s.unexpectedCount})`, s.unexpectedCount === 0],
      [`${name}: exits 0 on SIGTERM (${s.exit})`, s.exit === 0],
    );
    if (options.heap) {
      // The leak test proper: what the heap still holds after a full GC, before and after the load.
      const live = afterLoad[name].afterGc.heapUsed;
      checks.push([
        `${name}: live V8 heap after the load and a GC ${live} MiB <= ${
          baseline[name].heapUsed
        } + ${LIVE_HEAP_SLACK_MIB} MiB (before the load)`,
        live <= baseline[name].heapUsed + LIVE_HEAP_SLACK_MIB,
      ]);
    }
  }
  checks.push(
    [`no lost byte (${totals.lost})`, totals.lost === 0],
    [`no corrupted byte (${totals.corrupted})`, totals.corrupted === 0],
    [`no unexpected client error (${totals.errors})`, totals.errors === 0],
    [
      `every peer kind ran`,
      options.peers.every((peer) =>
        totals[{ stream: "streamBytes", reset: "resets", knock: "knocks" }[peer] ?? peer] > 0
      ),
    ],
  );
  const pass = checks.every(([, ok]) => ok);

  // --- output ---
  mkdirSync(options.out, { recursive: true });
  const base = `${options.out}/${options.runtime}`;
  const result = {
    runtime: options.runtime,
    minutes: options.minutes,
    intervalS: options.interval,
    peers: options.peers,
    serverFlags: runtimeFlags(),
    startedAt: new Date(started).toISOString(),
    load: readFileSync("/proc/loadavg", "utf8").trim(),
    totals,
    servers: perServer,
    clientUnexpected: unexpected,
    checks: checks.map(([what, ok]) => ({ what, ok })),
    verdict: pass ? "pass" : "fail",
    samples,
  };
  writeFileSync(`${base}.json`, JSON.stringify(result, null, 1) + "\n");
  writeFileSync(
    `${base}.svg`,
    plot(
      samples,
      names,
      `echogate soak on ${options.runtime}: ${options.minutes} min, RSS${
        options.heap ? ", V8 heap" : ""
      } and descriptors per server`,
    ),
  );
  const table = summaryTable(result, names);
  writeFileSync(`${base}.md`, table);
  console.log(`\n${table}`);
  console.log(`wrote ${base}.json, ${base}.svg, ${base}.md`);
  process.exit(pass ? 0 : 1);
}

async function lineProbe(port) {
  const socket = await connect(port);
  socket.setEncoding("latin1");
  let reply = "";
  socket.on("data", (chunk) => (reply += chunk));
  return {
    async measure() {
      const started = performance.now();
      reply = "";
      socket.write("p\n");
      const end = Date.now() + 10_000;
      while (reply !== "Echo=>p\n") {
        if (Date.now() > end || reply.length > 8) throw new Corruption(`line probe: ${JSON.stringify(reply)}`);
        await new Promise((resolve) => socket.once("data", resolve));
      }
      return performance.now() - started;
    },
    close: () => endAndWait(socket),
  };
}

/** With --heap: where each server's memory was at the end of the load, and what a GC and malloc_trim gave back. */
function heapTable(result, names) {
  const row = (name, what, m) =>
    m
      ? `| ${name} | ${what} | ${m.rss} | ${m.anon} | ${m.file} | ${m.heapUsed} / ${m.heapCommitted} | ${m.external} |`
      : undefined;
  return [
    "| server | when | RSS | anonymous | file-backed | V8 heap used / committed | V8 external |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...names.flatMap((name) => {
      const s = result.servers[name];
      const first = result.samples[0].servers[name];
      return [
        row(name, "first sample", first),
        row(name, "before the load, after a GC", s.heapBaseline),
        row(name, "load stopped", s.afterLoad.idle),
        row(name, "then a full GC", s.afterLoad.afterGc),
        row(name, "then malloc_trim(0)", s.afterLoad.afterTrim),
      ].filter(Boolean);
    }),
  ].join("\n");
}

function summaryTable(result, names) {
  const t = result.totals;
  const lines = [
    `### ${result.runtime}: ${result.minutes} min (${result.startedAt}), verdict: **${result.verdict}**`,
    "",
    "| server | RSS first / max / last (MiB) | RSS warm-up ends | RSS slope after it | RSS slope, 2nd half (not judged) | fds first / max / last | fd slope, 2nd half | probe median / max (ms) | log lines | exit |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...names.map((name) => {
      const s = result.servers[name];
      return `| ${name} | ${s.rssFirst} / ${s.rssMax} / ${s.rssLast} | ${s.rssWarmupEndMin} min | ${s.rssSlopeAfterWarmupMiBPerMin} MiB/min | ${s.rssSlopeMiBPerMin} MiB/min | ${s.fdsFirst} / ${s.fdsMax} / ${s.fdsLast} | ${s.fdSlopePerMin}/min | ${s.probeMedianMs} / ${s.probeMaxMs} | ${s.logLines} | ${s.exit} |`;
    }),
    "",
    `Traffic: ${t.pingpong} ping-pongs, ${
      (t.streamBytes / 1e6).toFixed(0)
    } MB streamed, ${t.churn} churned connections, ` +
    `${t.resets} resets mid-reply, ${t.slow} slow readers, ${t.overlong} over-long lines, ${t.knocks} knocks; ` +
    `${(t.verifiedBytes / 1e6).toFixed(0)} MB of echo verified byte for byte. ` +
    `Lost: ${t.lost}, corrupted: ${t.corrupted}, unexpected client errors: ${t.errors}; ` +
    `server errors expected from the resets: ${names.map((n) => result.servers[n].expectedErrors).join(" / ")}. ` +
    `Load average at the end: ${result.load}.`,
    "",
    ...(result.servers[names[0]].afterLoad ? [heapTable(result, names), ""] : []),
    ...result.checks.map((c) => `- ${c.ok ? "✓" : "✗"} ${c.what}`),
    "",
  ];
  return lines.join("\n");
}

main().catch((error) => {
  console.error(`soak: ${error?.stack ?? error}`);
  process.exit(1);
});
