// Baseline servers on Deno.listen, written the plain, fast, idiomatic way, for `npm run bench`:
// a conn.read loop over one reused buffer per connection.
//
//   deno run -A bench/baseline/deno.ts echo [--mode raw|chunk] [--prefix 'Echo=>'] [--port 0]
//   deno run -A bench/baseline/deno.ts gate [--token 1] [--port 0]
//   ... [--tls-cert F --tls-key F]   the same over TLS (Deno.listenTls)
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import { baselineOptions } from "./_options.mjs";

const { protocol, values } = baselineOptions(Deno.args);
const encoder = new TextEncoder();
const prefix = values.mode === "raw" ? new Uint8Array(0) : encoder.encode(values.prefix);
const token = encoder.encode(values.token);
const WELCOME = encoder.encode("welcome to server!");
const REFUSAL = encoder.encode("please go out!");
const BUFFER = 64 * 1024;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
}

async function echo(conn: Deno.Conn): Promise<void> {
  // The prefix sits at the front of the buffer once; each read lands right behind it.
  const buffer = new Uint8Array(prefix.length + BUFFER);
  buffer.set(prefix);
  const space = buffer.subarray(prefix.length);
  try {
    while (true) {
      const n = await conn.read(space);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, prefix.length + n));
    }
  } catch {
    // reset by the peer (or, over TLS, a FIN without close_notify)
  } finally {
    close(conn);
  }
}

async function gate(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1024);
  const timer = setTimeout(() => close(conn), 5000);
  try {
    const n = await conn.read(buffer);
    clearTimeout(timer);
    if (n === null) return;
    let end = n;
    if (end > 0 && buffer[end - 1] === 0x0a) end--;
    if (end > 0 && buffer[end - 1] === 0x0d) end--;
    const welcomed = end === token.length && token.every((byte, i) => buffer[i] === byte);
    await writeAll(conn, welcomed ? WELCOME : REFUSAL);
  } catch {
    // reset, or closed by the timer
  } finally {
    clearTimeout(timer);
    close(conn);
  }
}

function close(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

const where = { hostname: values.host, port: Number(values.port) };
const listener = values["tls-cert"]
  ? Deno.listenTls({
    ...where,
    cert: Deno.readTextFileSync(values["tls-cert"]),
    key: Deno.readTextFileSync(values["tls-key"]!),
  })
  : Deno.listen(where);
console.log(`deno baseline ${protocol} listening on ${values.host}:${listener.addr.port}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, () => Deno.exit(0));
for await (const conn of listener) {
  (conn as Deno.Conn & { setNoDelay?(on: boolean): void }).setNoDelay?.(true); // a TlsConn has none
  if (protocol === "gate") gate(conn);
  else echo(conn);
}
