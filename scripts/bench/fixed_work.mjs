// Fixed work in one process, to be timed from outside (`/usr/bin/time -v`, alternating two builds):
// echogate's server from the built package of the checkout DIR, and a client doing COUNT UDP round
// trips (32 in flight) or COUNT gate knocks (a new connection each, 32 at a time). Made to show
// what a change on the hot path costs in CPU (docs/metrics.md: the counters' cost).
//
//   npm run build && /usr/bin/time -v node scripts/bench/fixed_work.mjs DIR udp 40000
//   /usr/bin/time -v node_modules/.bin/deno run -A scripts/bench/fixed_work.mjs DIR connect 4000

import process from "node:process";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const [dir, cell, countText] = process.argv.slice(2);
const count = Number(countText);
if (!dir || (cell !== "udp" && cell !== "connect") || !(count > 0)) {
  console.error("Usage: fixed_work.mjs DIR udp|connect COUNT");
  process.exit(2);
}
const mod = await import(pathToFileURL(resolve(dir, "npm/esm/adapters/mod.js")).href);
const { transport } = await mod.loadAdapter();
const message = new TextEncoder().encode("ping ping ping");

if (cell === "udp") {
  const server = await mod.serveEcho({ transport, udp: true, port: 0, limits: false });
  const port = server.addr.port;
  let answered = 0;
  let sent = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const send = () => (sent++, client.send(message, "127.0.0.1", port));
  const client = await transport.bindDatagram({ hostname: "127.0.0.1", port: 0 }, {
    onMessage() {
      if (++answered === count) finish();
      else if (sent < count) send();
    },
    onError() {},
  });
  for (let i = 0; i < 32 && sent < count; i++) send();
  await finished;
  await client.close();
  await server.close();
} else {
  const server = await mod.serveGate({ transport, port: 0 });
  const token = new TextEncoder().encode("1");
  let next = 0;
  const knocker = async () => {
    while (next++ < count) {
      const socket = await transport.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await socket.write(token);
      while ((await socket.read()) !== null);
      socket.close();
    }
  };
  await Promise.all(Array.from({ length: 32 }, knocker));
  await server.close();
}
process.exit(0);
