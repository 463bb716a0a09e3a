// Holds N idle connections open to an echo server, for the idle-memory scenario of
// `npm run bench`. Each connection does one exchange first ("hi\n" and its echo, raw or
// prefixed), so the server has set it up fully; then all of them stay quiet.
//
//   node scripts/bench/hold.mjs --port PORT [--host 127.0.0.1] [--conns 5000]
//
// Prints "held N" once every connection is open and has had its answer, then waits until it
// is killed (or its standard input closes). Any failure prints one line and exits 1.

import * as net from "node:net";
import process from "node:process";
import { parseCommandLine } from "../_args.mjs";

const USAGE = "usage: node scripts/bench/hold.mjs --port PORT [--host 127.0.0.1] [--conns 5000]";
const { values } = parseCommandLine("hold", USAGE, {
  strings: {
    host: "127.0.0.1",
    port: undefined,
    conns: "5000",
  },
});
const total = Number(values.conns);
const port = Number(values.port);
if (!(total >= 1) || !(port >= 1)) {
  console.error(USAGE);
  process.exit(2);
}

const sockets = [];
const OPENING_AT_ONCE = 200; // more would overflow the server's listen backlog

function openOne() {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: values.host, port, noDelay: true });
    let received = 0;
    socket.once("error", reject);
    socket.once("connect", () => socket.write("hi\n"));
    socket.on("data", (chunk) => {
      received += chunk.length;
      if (received >= 3) {
        socket.removeAllListeners("data");
        socket.off("error", reject);
        socket.on("error", (error) => fail(`a held connection failed: ${error.message}`));
        resolve(socket);
      }
    });
    socket.once("end", () => reject(new Error("the server closed a connection")));
  });
}

function fail(message) {
  console.error(`hold: ${message}`);
  process.exit(1);
}

let next = 0;
async function opener() {
  while (next < total) {
    next++;
    sockets.push(await openOne());
  }
}
try {
  await Promise.all(Array.from({ length: Math.min(OPENING_AT_ONCE, total) }, opener));
} catch (error) {
  fail(`${error.message} after ${sockets.length} connections`);
}
console.log(`held ${sockets.length}`);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
