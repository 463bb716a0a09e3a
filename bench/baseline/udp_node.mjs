// Baseline UDP echo server on node:dgram, written the plain, fast, idiomatic way, for `npm run bench`:
// every datagram answered with prefix + datagram (a two-buffer send, no copy).
//
//   node bench/baseline/udp_node.mjs udp [--mode raw|chunk] [--prefix 'Echo=>'] [--host 127.0.0.1] [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import dgram from "node:dgram";
import { baselineOptions } from "./_options.mjs";

const { values } = baselineOptions(process.argv.slice(2));
const prefix = Buffer.from(values.mode === "raw" ? "" : values.prefix);
const socket = dgram.createSocket(values.host.includes(":") ? "udp6" : "udp4");
socket.on("error", () => {});
socket.on("message", (message, peer) => {
  socket.send(prefix.length > 0 ? [prefix, message] : message, peer.port, peer.address);
});
socket.bind(Number(values.port), values.host, () => {
  console.log(`node baseline udp listening on ${values.host}:${socket.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
