// The Node adapter's socket: a node:net or node:tls socket as echogate's StreamSocket, its
// listeners shared by all sockets so an idle connection holds no closures.

import type * as net from "node:net";
import type * as tls from "node:tls";
import { Buffer } from "node:buffer";
import type { Address, ReadQueueSource, TlsInfo } from "../src/mod.ts";
import { PushStreamSocket } from "../src/read_queue.ts";
import { toRetainable } from "../src/write_queue.ts";
import { tlsInfo } from "./_tls_common.ts";

const RESOLVED: Promise<void> = Promise.resolve();

const WRAPPER: unique symbol = Symbol("echogate.NodeStreamSocket");
type TaggedSocket = net.Socket & { [WRAPPER]: NodeStreamSocket };

/** A `node:net` (or `node:tls`) socket as echogate's {@linkcode StreamSocket}. */
export class NodeStreamSocket extends PushStreamSocket {
  readonly localAddr: Address;
  #socket: net.Socket;
  #error: Error | undefined;
  #drainWaiters: ((error?: unknown) => void)[] | undefined; // made, with its listeners, on first use
  #closed: Promise<void> | undefined;

  /**
   * @param local The local address when the listener already knows it (shared, not per socket);
   *   for a unix socket, its path, which is then reported as both ends' address.
   */
  constructor(socket: net.Socket, local?: Address) {
    super(readSource(socket));
    this.#socket = socket;
    if (local?.transport !== "unix") void socket.remotePort; // makes Node cache the peer's address now, while it is known
    this.localAddr = local ?? localTcpAddress(socket);
    // Listeners shared by all sockets (they find this object through the socket), so an idle
    // connection holds no closures.
    (socket as TaggedSocket)[WRAPPER] = this;
    socket.on("data", NodeStreamSocket.#onData);
    socket.on("error", NodeStreamSocket.#onError);
    // Node has an "end" listener of its own on every socket (the same function for all); adding a
    // second would turn that event's slot into an array (64 bytes per connection). Ours takes its
    // place and calls it.
    const nodeOnEnd = NodeStreamSocket.#nodeOnEnd ??= soleListener(socket, "end");
    const ends = socket.listenerCount("end");
    if (nodeOnEnd !== undefined) socket.off("end", nodeOnEnd);
    socket.on("end", socket.listenerCount("end") < ends ? NodeStreamSocket.#onEndForNode : NodeStreamSocket.#onEnd);
  }

  static #nodeOnEnd: ((this: net.Socket) => void) | undefined;

  static #onData(this: TaggedSocket, chunk: Buffer): void {
    this[WRAPPER].push(chunk);
  }

  static #onEndForNode(this: TaggedSocket): void {
    NodeStreamSocket.#nodeOnEnd!.call(this);
    this[WRAPPER].end();
  }

  static #onEnd(this: TaggedSocket): void {
    this[WRAPPER].end();
  }

  static #onError(this: TaggedSocket, error: Error): void {
    const wrapper = this[WRAPPER];
    wrapper.#error ??= error;
    wrapper.end(error);
  }

  static #onClose(this: TaggedSocket): void {
    const wrapper = this[WRAPPER];
    wrapper.end();
    wrapper.#callDrainWaiters(wrapper.#error ?? new Error("Socket is closed"));
  }

  static #onDrain(this: TaggedSocket): void {
    this[WRAPPER].#callDrainWaiters();
  }

  #callDrainWaiters(error?: Error): void {
    for (const waiter of this.#drainWaiters!.splice(0)) waiter(error);
  }

  // Built on demand from what Node caches on the socket (still there after close): an object
  // fewer per idle connection.
  get remoteAddr(): Address {
    const socket = this.#socket;
    return this.localAddr.transport === "unix" ? this.localAddr : remoteTcpAddress(socket);
  }

  // Only TLS sockets have a session to report.
  get tls(): TlsInfo | undefined {
    const socket = this.#socket as tls.TLSSocket;
    if (!socket.encrypted) return undefined;
    return tlsInfo({
      version: socket.getProtocol(),
      cipher: socket.getCipher()?.name,
      alpn: socket.alpnProtocol,
      servername: (socket as { servername?: string | false }).servername,
      peerSubject: socket.getPeerCertificate()?.subject,
      authorized: socket.authorized,
    });
  }

  get closed(): Promise<void> {
    const socket = this.#socket;
    return this.#closed ??= socket.closed ? RESOLVED : new Promise((resolve) => socket.once("close", () => resolve()));
  }

  writeNow(bytes: Uint8Array): boolean {
    const socket = this.#socket;
    if (socket.destroyed) throw new Error("Socket is closed");
    // Behind a backlog Node keeps what it is given until it drains: hand it bytes it may keep.
    return socket.write(socket.writableLength > 0 ? toRetainable(bytes) : bytes);
  }

  onDrain(callback: (error?: unknown) => void): void {
    if (this.#socket.destroyed) queueMicrotask(() => callback(this.#error ?? new Error("Socket is closed")));
    else if (!this.#socket.writableNeedDrain) queueMicrotask(() => callback());
    else {
      if (this.#drainWaiters === undefined) {
        // The first wait for drain: only now do the drain and close listeners go on.
        this.#drainWaiters = [];
        this.#socket.on("drain", NodeStreamSocket.#onDrain);
        this.#socket.on("close", NodeStreamSocket.#onClose);
      }
      this.#drainWaiters.push(callback);
    }
  }

  closeWrite(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableFinished) return RESOLVED;
    // end()'s callback runs once the FIN is out, or with an error if the socket is destroyed
    // first: no listeners to add and remove.
    return new Promise((resolve) => socket.end(() => resolve()));
  }

  close(): void {
    this.#socket.destroy();
    this.end();
  }

  reset(): void {
    try {
      this.#socket.resetAndDestroy(); // SO_LINGER 0: an RST, not a FIN
    } catch {
      this.#socket.destroy(); // not connected (yet or any more): nothing to reset
    }
    this.end();
  }

  /**
   * Hands the connection over to another reader (a TLS handshake): our data listener off, input
   * paused, and `buffered` plus whatever was queued put back in front of the socket's input,
   * where a TLSSocket wrapping it reads first. Error and end listeners stay: they only settle this
   * wrapper, and keep a late error from going unhandled.
   */
  release(buffered: Uint8Array | undefined): net.Socket {
    const socket = this.#socket;
    socket.pause();
    socket.off("data", NodeStreamSocket.#onData);
    const queued = this.takeQueued();
    if (buffered !== undefined && buffered.length > 0) queued.unshift(buffered);
    if (queued.length > 0) socket.unshift(Buffer.concat(queued));
    return socket;
  }
}

/** This end of a TCP socket, from what Node caches on it. */
export function localTcpAddress(socket: net.Socket): Address {
  return { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
}

/** The peer of a TCP socket, from what Node caches on it. */
export function remoteTcpAddress(socket: net.Socket): Address {
  return { transport: "tcp", hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
}

/** The one listener for `event` on `socket`, if there is exactly one. */
function soleListener(socket: net.Socket, event: string): ((this: net.Socket) => void) | undefined {
  const listeners = socket.listeners(event);
  return listeners.length === 1 ? listeners[0] as (this: net.Socket) => void : undefined;
}

/** What Deno's node:tls puts on a TLS socket's handle: the TCP connection underneath. */
interface DenoTlsHandle {
  _nativeTcpHandle?: { readStart(): number; readStop(): number };
}

/**
 * What pauses `socket`'s input: the socket itself, except on Deno's node:tls. There, pausing a
 * TLS socket only holds its decrypted bytes back while the TCP connection is still read, without
 * bound (measured: 286 MB taken in 4 s from a peer that never read its echo), and end of input
 * that arrives meanwhile is lost (its TLSWrap drops the EOF it held when a resume pauses again).
 * Pausing the TCP connection underneath does neither: the peer is held back by TCP.
 */
function readSource(socket: net.Socket): ReadQueueSource {
  const tcp = (socket as { _handle?: DenoTlsHandle })._handle?._nativeTcpHandle;
  if (tcp === undefined) return socket;
  return { pause: () => void tcp.readStop(), resume: () => void tcp.readStart() };
}
