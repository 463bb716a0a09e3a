// Datagram sockets on Deno's own UDP API, `Deno.listenDatagram`, which exists only when Deno
// runs with `--unstable-net`. The Deno adapter uses it then, and `node:dgram` otherwise: in
// docs/udp.md's measurements Deno's `node:dgram` spends about twice the CPU per datagram, and
// its heap grows with the number of peers.

import type { DatagramHandlers, DatagramSocket } from "../src/mod.ts";
import { toListenError } from "./_listen.ts";
import { prefixedBuffer } from "./_prefixed_buffer.ts";

type UdpAddr = { transport: "udp"; hostname: string; port: number };

/** @see https://docs.deno.com/api/deno/~/Deno.DatagramConn */
export interface DenoDatagramConn {
  readonly addr: UdpAddr;
  receive(buffer?: Uint8Array): Promise<[Uint8Array, UdpAddr]>;
  send(bytes: Uint8Array, to: UdpAddr): Promise<number>;
  close(): void;
}
/** @see https://docs.deno.com/api/deno/~/Deno.listenDatagram */
export type ListenDatagram = (options: UdpAddr) => DenoDatagramConn;

// Sends whose promise has not settled yet: past this many, send() refuses (returns false).
const MAX_IN_FLIGHT = 1024;
// The largest UDP payload: every datagram fits the one receive buffer.
const MAX_PAYLOAD = 65_535;
// Datagrams up to this size are copied out of the receive buffer into a shared slab (a view, no
// ArrayBuffer of their own); bigger ones get their own copy. As ReplySlabs does for replies.
const SLAB_VIEW_MAX = 1024;
const SLAB_BYTES = 16 * 1024;
const EMPTY = new Uint8Array(0);

class DenoDatagramSocket implements DatagramSocket {
  readonly addr: UdpAddr;
  #conn: DenoDatagramConn;
  #handlers: DatagramHandlers;
  #inFlight = 0;
  #drainWaiters: (() => void)[] = [];
  #closed = false;
  // The sender of the datagram last received, its address read once (a megamorphic load each:
  // Deno makes a new address object per datagram).
  #from: UdpAddr | undefined;
  #fromHost = "";
  #fromPort = -1;
  // While onMessage runs, the first send() it makes is the answer, awaited by the receive loop.
  #inMessage = false;
  #answer: Promise<number> | undefined;
  #answerHost = "";
  #answerPort = 0;
  #sent = (): void => {
    this.#inFlight--;
    if (this.#drainWaiters.length > 0 && this.#inFlight <= MAX_IN_FLIGHT / 2) {
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
  };

  constructor(conn: DenoDatagramConn, handlers: DatagramHandlers) {
    this.#conn = conn;
    this.#handlers = handlers;
    this.addr = { transport: "udp", hostname: conn.addr.hostname, port: conn.addr.port };
    void this.#receive();
  }

  async #receive(): Promise<void> {
    // One buffer for every receive. Each datagram is copied out at its own size (handlers may
    // keep it), unless the handlers said they copy what they keep (`lent`); then it lands right
    // behind a copy of their reply prefix, written once, and prefix + datagram is one view.
    const lent = this.#handlers.lent === true;
    const prefix = lent ? this.#handlers.replyPrefix ?? EMPTY : EMPTY;
    const buffer = prefixedBuffer(prefix, MAX_PAYLOAD);
    const space = buffer.subarray(prefix.length);
    const framed = prefix.length > 0;
    while (!this.#closed) {
      let data: Uint8Array;
      let from: UdpAddr;
      try {
        [data, from] = await this.#conn.receive(space);
      } catch (error) {
        if (this.#closed) return;
        this.#handlers.onError(error);
        continue;
      }
      if (this.#closed) return;
      const hostname = from.hostname;
      const port = from.port;
      this.#from = from;
      this.#fromHost = hostname;
      this.#fromPort = port;
      this.#inMessage = true;
      try {
        if (!lent) this.#handlers.onMessage(this.#copyOut(data), hostname, port);
        else if (framed) {
          this.#handlers.onMessage(data, hostname, port, buffer.subarray(0, prefix.length + data.length));
        } else this.#handlers.onMessage(data, hostname, port);
      } finally {
        this.#inMessage = false;
      }
      // Receive the next datagram once the answer to this one was sent, as the baseline does:
      // one op at a time costs less CPU per datagram than a receive and sends in flight together.
      // The answer's own promise is awaited here (no then(), no closure, no extra turn).
      const answer = this.#answer;
      if (answer !== undefined) {
        this.#answer = undefined;
        try {
          await answer;
        } catch (error) {
          this.#failed(error, this.#answerHost, this.#answerPort);
        }
        this.#sent();
      }
    }
  }

  // A send error goes to the handlers with its peer; a throwing handler never stops receiving.
  #failed(error: unknown, hostname: string, port: number): void {
    if (this.#closed) return;
    try {
      this.#handlers.onError(error, hostname, port);
    } catch {
      // the handler's own problem: the socket goes on
    }
  }

  // A fresh ArrayBuffer per datagram (data.slice()) was a measurable part of the CPU per datagram
  // (docs/udp.md): small datagrams are cut from a slab that is never written twice.
  #slab = new Uint8Array(0);
  #slabUsed = 0;
  #copyOut(data: Uint8Array): Uint8Array {
    const length = data.length;
    if (length > SLAB_VIEW_MAX) return data.slice();
    if (this.#slabUsed + length > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const start = this.#slabUsed;
    this.#slab.set(data, start);
    this.#slabUsed = (start + length + 7) & ~7;
    return this.#slab.subarray(start, start + length);
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.#inFlight >= MAX_IN_FLIGHT || this.#closed) return false;
    this.#inFlight++;
    // An answer goes to the sender of the datagram just received: its address object serves again.
    const to = port === this.#fromPort && hostname === this.#fromHost && this.#from !== undefined
      ? this.#from
      : { transport: "udp" as const, hostname, port };
    const sending = this.#conn.send(bytes, to);
    if (this.#inMessage && this.#answer === undefined) {
      // The answer to the datagram being handled: the receive loop awaits it.
      this.#answer = sending;
      this.#answerHost = hostname;
      this.#answerPort = port;
    } else {
      this.#track(sending, hostname, port);
    }
    return true;
  }

  // Any other send: settles on its own (out of send(), which stays small for the answer's path).
  #track(sending: Promise<number>, hostname: string, port: number): void {
    sending.then(this.#sent, (error) => {
      this.#sent();
      this.#failed(error, hostname, port);
    });
  }

  onDrain(callback: () => void): void {
    if (this.#inFlight < MAX_IN_FLIGHT || this.#closed) queueMicrotask(callback);
    else this.#drainWaiters.push(callback);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
    return Promise.resolve();
  }
}

/** Binds a UDP socket with `Deno.listenDatagram`. */
export function bindDenoDatagram(
  listenDatagram: ListenDatagram,
  endpoint: { hostname: string; port: number },
  handlers: DatagramHandlers,
): Promise<DatagramSocket> {
  let conn: DenoDatagramConn;
  try {
    conn = listenDatagram({ transport: "udp", hostname: endpoint.hostname, port: endpoint.port });
  } catch (error) {
    return Promise.reject(toListenError(error, endpoint, "udp"));
  }
  return Promise.resolve(new DenoDatagramSocket(conn, handlers));
}
