// The gate's own per-connection work with and without --proxy-protocol, in one process, over
// in-memory sockets: accept, (header,) token, reply, close sequence and the CLI's log lines, as
// `serveGate` runs them, without the kernel, the adapter's socket calls or a load generator.
// Rounds alternate; the fastest round of each kind is reported (other load on the machine only
// ever adds time). Runs on Node (after `npm run build`, from npm/esm), Deno and Bun:
//
//   node scripts/bench/proxy_path.mjs [--conns 20000] [--rounds 7] [--root DIR]
//   deno run -A scripts/bench/proxy_path.mjs
//   bun scripts/bench/proxy_path.mjs
//
// --root runs another checkout's code (e.g. a copy of the tree before a change).

import { parseCommandLine } from "../_args.mjs";

const { values } = parseCommandLine(
  "bench_proxy_path",
  "Usage: node scripts/bench/proxy_path.mjs [--conns 20000] [--rounds 7] [--only plain|proxy] [--root DIR]\n" +
    "       (or under deno run -A, or bun)",
  {
    strings: {
      conns: "20000",
      rounds: "7",
      only: "", // "plain" or "proxy": run only those rounds (to profile one kind)
      root: new URL("../..", import.meta.url).pathname,
    },
  },
);
const CONNS = Number(values.conns);
const ROUNDS = Number(values.rounds);
const ONLY = values.only;
const ROOT = values.root;
const isNode = !("Deno" in globalThis) && !("Bun" in globalThis);
const mod = await import(isNode ? `${ROOT}/npm/esm/src/mod.js` : `${ROOT}/src/mod.ts`);

const SERVER = { transport: "tcp", hostname: "127.0.0.1", port: 8001 };
const PROXY_HOST = "127.0.0.1";

class MemorySocket extends mod.PushStreamSocket {
  localAddr = SERVER;
  remoteAddr;
  closed;
  #markClosed;
  #isClosed = false;
  written = 0;
  constructor(port) {
    super({ pause() {}, resume() {} });
    this.remoteAddr = { transport: "tcp", hostname: PROXY_HOST, port };
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
  }
  writeNow(bytes) {
    this.written += bytes.length;
    return true;
  }
  onDrain(callback) {
    queueMicrotask(() => callback());
  }
  // The peer (a knocking client) closes its side once it has the reply and our FIN.
  closeWrite() {
    queueMicrotask(() => this.end());
    return Promise.resolve();
  }
  close() {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.end();
    this.#markClosed();
  }
}

async function startGate(proxy) {
  let handlers;
  const transport = {
    runtime: "node",
    listen(_endpoint, given) {
      handlers = given;
      return Promise.resolve({ addr: SERVER, close: () => Promise.resolve() });
    },
  };
  // The CLI's human log lines (the bench cell runs without --json), written nowhere.
  const logger = mod.createLogger({ writeOut() {}, writeErr() {} });
  const server = await mod.serveGate({ transport, port: 0, logger, ...(proxy && { proxyProtocol: {} }) });
  return { handlers, close: () => server.close() };
}

const TOKEN = new TextEncoder().encode("1");

// What each connection sends, made before the clock starts: the header is the generator's cost.
const portOf = (i) => 10000 + (i % 50000);
// Each chunk a view into one shared buffer, as a runtime hands them out (Node's and Bun's Buffer
// pool, Deno's read buffer): a small typed array of its own would be kept inline by the engine
// and made to move out at the first view taken of it, a cost real sockets do not have.
const pool = new Uint8Array(2 * CONNS * 64);
const inPool = (i, bytes) => {
  const chunk = pool.subarray(i * 64, i * 64 + bytes.length);
  chunk.set(bytes);
  return chunk;
};
const plainChunks = Array.from({ length: CONNS }, (_, i) => inPool(i, TOKEN));
const proxyChunks = Array.from({ length: CONNS }, (_, i) => {
  const header = mod.encodeProxyHeader({
    version: 2,
    source: { transport: "tcp", hostname: PROXY_HOST, port: portOf(i) },
    destination: SERVER,
  });
  const bytes = new Uint8Array(header.length + TOKEN.length);
  bytes.set(header);
  bytes.set(TOKEN, header.length);
  return inPool(CONNS + i, bytes);
});

async function round(proxy) {
  const gate = await startGate(proxy);
  const chunks = proxy ? proxyChunks : plainChunks;
  const started = performance.now();
  for (let i = 0; i < CONNS; i++) {
    const socket = new MemorySocket(portOf(i));
    gate.handlers.onSocket(socket);
    socket.push(chunks[i]);
    await socket.closed;
    if (socket.written !== 18) throw new Error(`connection ${i}: ${socket.written} bytes written, not the welcome`);
  }
  const elapsed = performance.now() - started;
  await gate.close();
  return (elapsed * 1000) / CONNS;
}

const best = { plain: Infinity, proxy: Infinity };
const kinds = ONLY === "" ? [false, true] : [ONLY === "proxy"];
for (const proxy of kinds) await round(proxy); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const proxy of kinds) {
    const us = await round(proxy);
    if (proxy) best.proxy = Math.min(best.proxy, us);
    else best.plain = Math.min(best.plain, us);
  }
}
const runtime = isNode ? "node" : "Deno" in globalThis ? "deno" : "bun";
console.log(JSON.stringify({
  runtime,
  conns: CONNS,
  rounds: ROUNDS,
  plainUs: +best.plain.toFixed(2),
  proxyUs: +best.proxy.toFixed(2),
  ...(ONLY === "" && { extraUs: +(best.proxy - best.plain).toFixed(2) }),
}));
