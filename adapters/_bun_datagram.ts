// Datagram sockets on Bun's own UDP API, `Bun.udpSocket`, as _dgram.ts maps node:dgram and
// _deno_datagram.ts Deno's onto echogate's DatagramSocket.

import type { Address, DatagramHandlers, DatagramSocket } from "../src/mod.ts";
import { Bun, type BunUdpHandler, type BunUdpSocket } from "./_bun_api.ts";
import { toListenError } from "./_listen.ts";

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Tries per datagram when send() throws: pending errors of earlier datagrams (one per ICMP
 * error that arrived since) are taken first; more than one between two tries is rare.
 */
const SEND_ATTEMPTS = 3;

class BunDatagramSocket implements DatagramSocket {
  #socket: BunUdpSocket | undefined;
  #addr: Address | undefined;
  #drainWaiters: (() => void)[] = [];
  #full = false;
  #closed = false;
  #handlers: DatagramHandlers;
  readonly handler: BunUdpHandler;

  constructor(handlers: DatagramHandlers) {
    this.#handlers = handlers;
    this.handler = {
      data: (_socket, bytes, port, hostname) => {
        if (!this.#closed) handlers.onMessage(bytes, hostname, port);
      },
      drain: () => {
        this.#full = false;
        for (const waiter of this.#drainWaiters.splice(0)) waiter();
      },
      // Always installed: an unhandled UDP error (ECONNREFUSED from an ICMP port unreachable)
      // would be an uncaught exception. Bun does not say which peer it came from, and reports
      // each ICMP error twice: as the socket's pending error (a receive returned it), then read
      // from the error queue (`errqueue: true`). Passed on once, from the queue.
      error(error: Error & { code?: string; errqueue?: boolean }) {
        if (error.code === "ECONNREFUSED" && error.errqueue !== true) return;
        handlers.onError(error);
      },
    };
  }

  bind(socket: BunUdpSocket): void {
    this.#socket = socket;
    this.#addr = { transport: "udp", hostname: socket.address.address, port: socket.address.port };
  }

  get addr(): Address {
    return this.#addr!;
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    if (this.#closed) return false;
    // Bun's send() copies nothing it does not send at once: the bytes are free on return.
    for (let attempt = 1;; attempt++) {
      try {
        if (this.#socket!.send(bytes, port, hostname)) return true;
        this.#full = true;
        return false;
      } catch (error) {
        // Bun sets IP_RECVERR: an ICMP error for an earlier datagram, to another peer, stays
        // pending on the socket, and the next send() throws it instead of sending. Taking it
        // clears it, so the same datagram is sent again (the error is reported from the error
        // queue). One that still throws is this peer's own: reported, as node:dgram does.
        if (attempt < SEND_ATTEMPTS) continue;
        this.#handlers.onError(error, hostname, port);
        return true;
      }
    }
  }

  onDrain(callback: () => void): void {
    if (!this.#full || this.#closed) queueMicrotask(callback);
    else this.#drainWaiters.push(callback);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#socket!.close();
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    }
    return RESOLVED;
  }
}

/**
 * Binds a UDP socket with `Bun.udpSocket`.
 *
 * @param endpoint The address and port to bind (port 0 picks one).
 * @param handlers Where datagrams and errors go.
 * @returns The bound socket.
 *
 * @example
 * ```ts ignore
 * import { bindBunDatagram } from "./_bun_datagram.ts";
 *
 * const socket = await bindBunDatagram({ hostname: "127.0.0.1", port: 0 }, { onMessage() {}, onError() {} });
 * await socket.close();
 * ```
 */
export async function bindBunDatagram(
  endpoint: { hostname: string; port: number },
  handlers: DatagramHandlers,
): Promise<DatagramSocket> {
  const wrapper = new BunDatagramSocket(handlers);
  try {
    wrapper.bind(await Bun.udpSocket({ ...endpoint, socket: wrapper.handler }));
  } catch (error) {
    throw toListenError(error, endpoint, "udp");
  }
  return wrapper;
}
