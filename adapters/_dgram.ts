// Datagram sockets over `node:dgram`, shared by the Node and Deno adapters. Deno's own
// `Deno.listenDatagram` exists only with `--unstable-net`; its `node:dgram` works under a plain
// `deno run -A` (test/udp.test.ts runs it so), hence one implementation for both.

import dgram from "node:dgram";
import type { DatagramHandlers, DatagramSocket } from "../src/mod.ts";
import { toListenError } from "./_listen.ts";

// Sends handed to the runtime whose completion has not been reported yet. Node's libuv queue
// and Deno's pending send ops both grow without bound when the kernel's buffer is full; past
// this many, send() refuses (returns false) instead. Sends that complete at once are reported
// in the same turn (a nextTick), so only a backlog ever gets near the bound.
const MAX_IN_FLIGHT = 1024;

interface SendError extends Error {
  address?: string;
  port?: number;
}

class NodeDatagramSocket implements DatagramSocket {
  readonly addr: { transport: "udp"; hostname: string; port: number };
  #socket: dgram.Socket;
  #handlers: DatagramHandlers;
  #inFlight = 0;
  #drainWaiters: (() => void)[] = [];
  #closed: Promise<void> | undefined;
  // One callback for every send (no closure per datagram): a failed send's error names the peer.
  #afterSend = (error: SendError | null): void => {
    this.#inFlight--;
    if (error) this.#handlers.onError(error, error.address, error.port);
    if (this.#drainWaiters.length > 0 && this.#inFlight <= MAX_IN_FLIGHT / 2) {
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
  };

  constructor(socket: dgram.Socket, handlers: DatagramHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
    const { address, port } = socket.address();
    this.addr = { transport: "udp", hostname: address, port };
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.#inFlight >= MAX_IN_FLIGHT || this.#closed) return false;
    this.#inFlight++;
    try {
      this.#socket.send(bytes, port, hostname, this.#afterSend);
    } catch (error) {
      // Thrown synchronously for a bad argument or a closed socket.
      this.#inFlight--;
      this.#handlers.onError(error, hostname, port);
      return false;
    }
    return true;
  }

  onDrain(callback: () => void): void {
    if (this.#inFlight < MAX_IN_FLIGHT || this.#closed) queueMicrotask(callback);
    else this.#drainWaiters.push(callback);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#socket.removeAllListeners("message");
      try {
        // Stops receiving at once; nothing waits on the close callback, so shutdown never
        // depends on it.
        this.#socket.close();
      } catch {
        // already closed
      }
      this.#closed = Promise.resolve();
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
    return this.#closed;
  }
}

/** Binds a `node:dgram` socket: `udp6` for a hostname with a `:`, else `udp4`. */
export function bindNodeDatagram(
  endpoint: { hostname: string; port: number },
  handlers: DatagramHandlers,
): Promise<DatagramSocket> {
  const socket = dgram.createSocket({ type: endpoint.hostname.includes(":") ? "udp6" : "udp4" });
  return new Promise((resolve, reject) => {
    socket.once("error", (error: Error & { code?: string }) => {
      socket.close();
      reject(toListenError(error, endpoint, "udp"));
    });
    socket.bind({ address: endpoint.hostname, port: endpoint.port, exclusive: true }, () => {
      socket.removeAllListeners("error");
      const wrapper = new NodeDatagramSocket(socket, handlers);
      // After binding, an error event is the socket's own (not a send's): report it, keep going.
      socket.on("error", (error) => handlers.onError(error));
      socket.on("message", (bytes: Uint8Array, rinfo: dgram.RemoteInfo) => {
        handlers.onMessage(bytes, rinfo.address, rinfo.port);
      });
      resolve(wrapper);
    });
  });
}
