// Baseline UDP echo server on Deno's own datagram API (Deno.listenDatagram, which needs
// --unstable-net), written the plain, idiomatic way, for `npm run bench`: receive, then await
// the send of prefix + datagram.
//
//   deno run -A --unstable-net bench/baseline/udp_deno.ts udp [--mode raw|chunk] [--prefix 'Echo=>'] [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import { baselineOptions } from "./_options.mjs";

interface DatagramConn {
  readonly addr: { hostname: string; port: number };
  receive(buffer?: Uint8Array): Promise<[Uint8Array, { transport: "udp"; hostname: string; port: number }]>;
  send(bytes: Uint8Array, to: { transport: "udp"; hostname: string; port: number }): Promise<number>;
}
const D = Deno as unknown as {
  listenDatagram(options: { transport: "udp"; hostname: string; port: number }): DatagramConn;
};

const { values } = baselineOptions(Deno.args);
const prefix = new TextEncoder().encode(values.mode === "raw" ? "" : values.prefix);
const conn = D.listenDatagram({ transport: "udp", hostname: values.host, port: Number(values.port) });
console.log(`deno baseline udp listening on ${values.host}:${conn.addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
// The prefix sits at the front of the buffer once; each datagram lands right behind it.
const buffer = new Uint8Array(prefix.length + 65_536);
buffer.set(prefix);
const space = buffer.subarray(prefix.length);
while (true) {
  const [data, peer] = await conn.receive(space);
  try {
    await conn.send(buffer.subarray(0, prefix.length + data.length), peer);
  } catch {
    // ICMP errors and the like: the next datagram goes on
  }
}
