// A pass-through TCP forwarder on node:net, written the plain, fast, idiomatic way: what the
// faults cells compare `echogate faults` (a proxy with no toxics) with. Each client gets its own
// connection to the upstream; bytes are piped both ways, with TCP_NODELAY, a FIN carried as a FIN.
//
//   node bench/baseline/forward_node.mjs forward --upstream HOST:PORT [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits.

import * as net from "node:net";
import { baselineOptions } from "./_options.mjs";

const { values } = baselineOptions(process.argv.slice(2));
const [upstreamHost, upstreamPort] = values.upstream.split(/:(?=\d+$)/);

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const upstream = net.connect({ host: upstreamHost, port: Number(upstreamPort), allowHalfOpen: true, noDelay: true });
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) socket.on("error", close).on("close", close);
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(Number(values.port), values.host, () => {
  console.log(`listening on ${values.host}:${server.address().port}`);
});
