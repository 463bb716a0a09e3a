// A pass-through TCP forwarder on Deno.listen / Deno.connect, written the plain, fast, idiomatic
// way: what the faults cells compare `echogate faults` (a proxy with no toxics) with. Each client
// gets its own connection to the upstream; each direction is one pipeTo, with TCP_NODELAY, a FIN
// passed on as a FIN.
//
//   deno run -A bench/baseline/forward_deno.ts forward --upstream HOST:PORT [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits.

import { baselineOptions } from "./_options.mjs";

const { values } = baselineOptions(Deno.args);
const [upstreamHost, upstreamPort] = values.upstream.split(/:(?=\d+$)/);

/** Copies `from` to `to`, then passes the end of input on as a FIN (the other way keeps flowing). */
async function pipe(from: Deno.TcpConn, to: Deno.TcpConn): Promise<void> {
  await from.readable.pipeTo(to.writable, { preventClose: true });
  await to.closeWrite();
}

async function forward(client: Deno.TcpConn): Promise<void> {
  let upstream: Deno.TcpConn | undefined;
  try {
    upstream = await Deno.connect({ hostname: upstreamHost, port: Number(upstreamPort) });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
  } catch {
    // a side reset or closed: the connection is over
  } finally {
    for (const conn of [client, upstream]) {
      try {
        conn?.close();
      } catch {
        // already closed by pipeTo
      }
    }
  }
}

const listener = Deno.listen({ hostname: values.host, port: Number(values.port) });
console.log(`listening on ${values.host}:${listener.addr.port}`);
for await (const client of listener) void forward(client);
