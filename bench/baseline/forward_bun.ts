// A pass-through TCP forwarder on Bun.listen / Bun.connect, written the plain, fast, idiomatic
// way: what the faults cells compare `echogate faults` (a proxy with no toxics) with. Each client
// gets its own connection to the upstream; what a socket's kernel buffer does not take waits for
// its `drain`, and the other side is paused meanwhile.
//
//   bun bench/baseline/forward_bun.ts forward --upstream HOST:PORT [--port 0]
//
// Prints "listening on HOST:PORT" once ready. No logging, no limits.

import process from "node:process";
import { baselineOptions } from "./_options.mjs";

const { values } = baselineOptions(process.argv.slice(2));
const [upstreamHost, upstreamPort] = values.upstream.split(/:(?=\d+$)/);

/** One side of a forwarded connection: its socket once open, what waits to be written to it, its peer. */
interface Side {
  socket?: Socket;
  pending: Uint8Array[];
  ended: boolean;
  peer?: Side;
}
// The part of Bun's socket API used here (structural, so no @types/bun is needed).
interface Socket {
  data: Side;
  write(bytes: Uint8Array): number;
  end(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay: boolean): void;
}
interface Handlers {
  open?(socket: Socket): void;
  data(socket: Socket, chunk: Uint8Array): void;
  drain(socket: Socket): void;
  end(socket: Socket): void;
  close(socket: Socket): void;
  error(socket: Socket): void;
}
declare const Bun: {
  listen(options: { hostname: string; port: number; allowHalfOpen: boolean; socket: Handlers }): { port: number };
  connect(
    options: { hostname: string; port: number; allowHalfOpen: boolean; data: Side; socket: Handlers },
  ): Promise<Socket>;
};

/** Writes to `side` what its kernel buffer takes, keeps the rest (pausing the peer) until `drain`. */
function send(side: Side, bytes: Uint8Array): void {
  if (!side.socket || side.pending.length > 0) {
    side.pending.push(bytes.slice());
    side.peer?.socket?.pause();
    return;
  }
  const written = side.socket.write(bytes);
  if (written < bytes.length) {
    side.pending.push(bytes.slice(written));
    side.peer?.socket?.pause();
  }
}

function flush(side: Side): void {
  while (side.socket && side.pending.length > 0) {
    const bytes = side.pending[0]!;
    const written = side.socket.write(bytes);
    if (written < bytes.length) {
      side.pending[0] = bytes.slice(written);
      return;
    }
    side.pending.shift();
  }
  if (side.ended) side.socket?.end();
  side.peer?.socket?.resume();
}

/** `socket` has ended (or failed): its peer ends too, once what waits for it is written. */
function ended(socket: Socket): void {
  const peer = socket.data.peer;
  if (!peer || peer.ended) return;
  peer.ended = true;
  if (peer.pending.length === 0) peer.socket?.end();
}

const handlers: Handlers = {
  data: (socket, chunk) => send(socket.data.peer!, chunk),
  drain: (socket) => flush(socket.data),
  end: ended,
  close: ended,
  error: ended,
};

// allowHalfOpen: a peer's FIN is passed on, and the other way keeps flowing until its own end.
const server = Bun.listen({
  allowHalfOpen: true,
  hostname: values.host,
  port: Number(values.port),
  socket: {
    ...handlers,
    open(client) {
      const clientSide: Side = { socket: client, pending: [], ended: false };
      const upstreamSide: Side = { pending: [], ended: false, peer: clientSide };
      clientSide.peer = upstreamSide;
      client.data = clientSide;
      client.setNoDelay(true);
      const options = { hostname: upstreamHost!, port: Number(upstreamPort), allowHalfOpen: true };
      Bun.connect({ ...options, data: upstreamSide, socket: handlers })
        .then((upstream) => {
          upstream.setNoDelay(true);
          upstreamSide.socket = upstream;
          flush(upstreamSide);
        })
        .catch(() => client.end());
    },
  },
});
console.log(`listening on ${values.host}:${server.port}`);
