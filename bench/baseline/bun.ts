// Baseline servers on Bun.listen, written the plain, fast, idiomatic way, for `npm run bench`:
// socket handlers, with what the kernel did not take kept until `drain`.
//
//   bun bench/baseline/bun.ts echo [--mode raw|chunk] [--prefix 'Echo=>'] [--port 0]
//   bun bench/baseline/bun.ts gate [--token 1] [--port 0]
//   ... [--tls-cert F --tls-key F]   the same over TLS (Bun.listen's tls option)
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits: just the protocol.

import process from "node:process";
import { readFileSync } from "node:fs";
import { baselineOptions } from "./_options.mjs";

const { protocol, values } = baselineOptions(process.argv.slice(2));
const encoder = new TextEncoder();
const prefix = values.mode === "raw" ? new Uint8Array(0) : encoder.encode(values.prefix);
const token = encoder.encode(values.token);
const WELCOME = encoder.encode("welcome to server!");
const REFUSAL = encoder.encode("please go out!");

/** Per connection: bytes the kernel has not taken yet, and whether the peer has finished. */
interface State {
  pending: Uint8Array | undefined;
  ended: boolean;
}
// The part of Bun's socket API used here (structural, so no @types/bun is needed).
interface Socket {
  data: State;
  write(bytes: Uint8Array): number;
  end(bytes?: Uint8Array): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay: boolean): void;
  timeout(seconds: number): void;
}
interface Handlers {
  open(socket: Socket): void;
  data(socket: Socket, chunk: Uint8Array): void;
  drain?(socket: Socket): void;
  end?(socket: Socket): void;
  timeout?(socket: Socket): void;
  error(socket: Socket, error: Error): void;
}
const Bun = (globalThis as unknown as {
  Bun: {
    listen(
      options: {
        hostname: string;
        port: number;
        allowHalfOpen: boolean;
        socket: Handlers;
        tls?: { cert: string; key: string };
      },
    ): { port: number };
  };
}).Bun;

function send(socket: Socket, bytes: Uint8Array): void {
  const n = socket.write(bytes);
  if (n < bytes.length) {
    socket.data.pending = bytes.subarray(Math.max(n, 0));
    socket.pause(); // read no more until drained
  }
}

const echoHandlers: Handlers = {
  open(socket) {
    socket.setNoDelay(true);
    socket.data = { pending: undefined, ended: false };
  },
  data(socket, chunk) {
    if (prefix.length === 0) return send(socket, chunk);
    const reply = new Uint8Array(prefix.length + chunk.length);
    reply.set(prefix);
    reply.set(chunk, prefix.length);
    send(socket, reply);
  },
  drain(socket) {
    const pending = socket.data.pending;
    if (!pending) return;
    socket.data.pending = undefined;
    send(socket, pending);
    if (socket.data.pending) return;
    if (socket.data.ended) socket.end();
    else socket.resume();
  },
  end(socket) {
    socket.data.ended = true;
    if (!socket.data.pending) socket.end();
  },
  error() {},
};

const gateHandlers: Handlers = {
  open(socket) {
    socket.setNoDelay(true);
    socket.data = { pending: undefined, ended: false };
    socket.timeout(5);
  },
  data(socket, chunk) {
    if (socket.data.ended) return; // only the first chunk counts
    socket.data.ended = true;
    let end = Math.min(chunk.length, 1024);
    if (end > 0 && chunk[end - 1] === 0x0a) end--;
    if (end > 0 && chunk[end - 1] === 0x0d) end--;
    const welcomed = end === token.length && token.every((byte, i) => chunk[i] === byte);
    socket.timeout(0);
    socket.end(welcomed ? WELCOME : REFUSAL);
  },
  timeout(socket) {
    socket.end();
  },
  error() {},
};

const listener = Bun.listen({
  hostname: values.host,
  port: Number(values.port),
  allowHalfOpen: true,
  socket: protocol === "gate" ? gateHandlers : echoHandlers,
  ...(values["tls-cert"] && {
    tls: { cert: readFileSync(values["tls-cert"], "utf8"), key: readFileSync(values["tls-key"]!, "utf8") },
  }),
});
console.log(`bun baseline ${protocol} listening on ${values.host}:${listener.port}`);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
