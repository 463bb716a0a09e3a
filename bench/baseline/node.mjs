// Baseline servers on node:net, written the plain, fast, idiomatic way, for `npm run bench`.
//
//   node bench/baseline/node.mjs echo [--mode raw|chunk] [--prefix 'Echo=>'] [--port 0]
//   node bench/baseline/node.mjs gate [--token 1] [--port 0]
//   ... [--tls-cert F --tls-key F]   the same over TLS (node:tls)
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import * as net from "node:net";
import * as tls from "node:tls";
import { readFileSync } from "node:fs";
import { baselineOptions } from "./_options.mjs";

const { protocol, values } = baselineOptions(process.argv.slice(2));
const prefix = Buffer.from(values.prefix);
const token = Buffer.from(values.token);
const WELCOME = Buffer.from("welcome to server!");
const REFUSAL = Buffer.from("please go out!");

function echoRaw(socket) {
  socket.on("error", () => {});
  socket.pipe(socket); // backpressure and the final FIN handled by the stream
}

function echoChunk(socket) {
  socket.on("error", () => {});
  socket.on("data", (chunk) => {
    if (!socket.write(Buffer.concat([prefix, chunk], prefix.length + chunk.length))) {
      socket.pause();
      socket.once("drain", () => socket.resume());
    }
  });
}

function gate(socket) {
  socket.on("error", () => {});
  socket.setTimeout(5000, () => socket.destroy());
  socket.once("data", (chunk) => {
    let end = Math.min(chunk.length, 1024);
    if (end > 0 && chunk[end - 1] === 0x0a) end--;
    if (end > 0 && chunk[end - 1] === 0x0d) end--;
    socket.setTimeout(0);
    socket.end(chunk.subarray(0, end).equals(token) ? WELCOME : REFUSAL);
  });
}

const handler = protocol === "gate" ? gate : values.mode === "raw" ? echoRaw : echoChunk;
const server = values["tls-cert"]
  ? tls.createServer(
    { noDelay: true, cert: readFileSync(values["tls-cert"]), key: readFileSync(values["tls-key"]) },
    handler,
  )
  : net.createServer({ noDelay: true }, handler);
server.listen({ host: values.host, port: Number(values.port) }, () => {
  const { address, port } = server.address();
  console.log(`node baseline ${protocol} listening on ${address}:${port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
