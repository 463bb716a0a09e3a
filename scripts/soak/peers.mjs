// The soak's peers (plain node:net sockets), the verification of every echoed byte, the counters,
// and the probes that time the servers' event loops as a client sees them.

import net from "node:net";
import { EchoVerifier, patternBytes } from "../_echo_verifier.mjs";
import { sleep } from "./analysis.mjs";

/** The gate's token in the soak (the servers get it in ECHOGATE_TOKEN). */
export const TOKEN = "soak-token";
const MiB = 1024 * 1024;

// --- verification ---

/** Byte `i` of a connection's payload: lowercase letters only, never the prefix's "E". */
const patternByte = (i) => 97 + ((i * 7 + (i >>> 12)) % 26);

const pattern = (offset, length) => patternBytes(patternByte, offset, length);
const newVerifier = () => new EchoVerifier(patternByte);

// --- counters ---

export const totals = {
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
export const unexpected = [];

export function fail(kind, what) {
  totals[kind]++;
  if (unexpected.length < 20) unexpected.push(`${new Date().toISOString()} ${kind}: ${what}`);
}

/** Cleared when the soak ends: every loop stops. */
export const soak = { running: true };

/** A connected node:net socket, or a rejection after 10 s. */
export function connect(port) {
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

export function classify(error, what) {
  if (error instanceof Corruption) fail("corrupted", `${what}: ${error.message}`);
  else if (error instanceof Lost) fail("lost", `${what}: ${error.message}`);
  else fail("errors", `${what}: ${error?.message ?? error}`);
}

/** Closes gracefully: our FIN, then the server's. */
export function endAndWait(socket, ms = 10_000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => (socket.destroy(), resolve(false)), ms);
    socket.once("close", () => (clearTimeout(timer), resolve(true)));
    socket.resume(); // anything still arriving is read (and dropped), so our close sends no RST
    socket.end();
  });
}

/** Runs `body` in a loop until the soak ends, counting its failures as `what`. */
export async function loop(what, body, pause = 0) {
  while (soak.running) {
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

export async function pingpong(port) {
  const socket = await connect(port);
  const verifier = newVerifier();
  let sent = 0;
  try {
    while (soak.running) {
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

export async function stream(port) {
  const socket = await connect(port);
  const verifier = newVerifier();
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
  while (sent < total && soak.running) {
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

export async function churn(port) {
  const socket = await connect(port);
  const verifier = newVerifier();
  socket.write(pattern(0, 32));
  await readUntil(socket, verifier, () => verifier.received === 32);
  if (!(await endAndWait(socket))) throw new Error("the server did not close after our FIN");
  totals.churn++;
  totals.verifiedBytes += 32;
}

export async function reset(port) {
  const socket = await connect(port);
  await new Promise((resolve) => {
    const timer = setTimeout(() => (socket.destroy(), fail("errors", "reset: no reply in 10 s"), resolve()), 10_000);
    socket.once("data", () => (clearTimeout(timer), socket.resetAndDestroy(), resolve()));
    socket.on("error", () => {}); // our own reset
    socket.write(pattern(0, 64 * 1024));
  });
  totals.resets++;
}

export async function slowReader(port) {
  const socket = await connect(port);
  const verifier = newVerifier();
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

export async function overlong(port) {
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
export async function knock(port) {
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

export async function echoProbe(port) {
  const socket = await connect(port);
  const verifier = newVerifier();
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

export function knockProbe(port) {
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

export async function lineProbe(port) {
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
