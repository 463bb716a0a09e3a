// The Bun adapter's socket: a Bun.listen / Bun.connect socket as echogate's StreamSocket, and
// the handler that maps Bun's events onto it.

import type { Address, Endpoint, StreamSocket, TlsInfo } from "../src/mod.ts";
import { PushStreamSocket } from "../src/read_queue.ts";
import { WriteQueue } from "../src/write_queue.ts";
import type { BunEndpoint, BunSocket, BunSocketHandler } from "./_bun_api.ts";
import { tlsInfo } from "./_tls_common.ts";

const RESOLVED: Promise<void> = Promise.resolve();

// --- socket ---

/** A Bun socket as echogate's {@linkcode StreamSocket}: Bun calls its `on*` methods from the handler. */
export class BunStreamSocket extends PushStreamSocket {
  readonly remoteAddr: Address;
  readonly localAddr: Address;
  #socket: BunSocket;
  // Bun's write() buffers nothing (it returns the bytes taken), so the rest waits here for drain.
  // Made on the first write the kernel does not take whole: most sockets never need one.
  #writes: WriteQueue | undefined;
  #isClosed = false; // by us or by Bun
  #bunClosed = false; // Bun's close callback ran
  #closed: Promise<void> | undefined;
  #markClosed: (() => void) | undefined;

  constructor(socket: BunSocket, known: KnownAddresses) {
    super(socket);
    this.#socket = socket;
    this.remoteAddr = known.unix ?? { transport: "tcp", hostname: socket.remoteAddress, port: socket.remotePort ?? 0 };
    this.localAddr = known.unix ?? known.local ??
      { transport: "tcp", hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
  }

  get closed(): Promise<void> {
    return this.#closed ??= this.#bunClosed ? RESOLVED : new Promise((resolve) => (this.#markClosed = resolve));
  }

  onData(chunk: Uint8Array): void {
    this.push(chunk);
  }

  onDrained(): void {
    this.#writes?.flush();
  }

  onEnd(error?: Error): void {
    this.end(error);
  }

  onClose(error?: Error): void {
    this.#isClosed = true;
    this.#bunClosed = true;
    this.onEnd(error);
    // Only a queue can have writers waiting to be told (an Error is dear: it captures a stack).
    this.#writes?.fail(error ?? new Error("Socket is closed"));
    this.#markClosed?.();
    this.#markClosed = undefined;
  }

  writeNow(bytes: Uint8Array): boolean {
    if (this.#isClosed) throw new Error("Socket is closed");
    if (this.#writes === undefined) {
      const n = this.#socket.write(bytes);
      if (n === bytes.length) return true; // the common case: no queue needed
      if (n < 0) throw new Error("Socket is closed");
      bytes = bytes.subarray(n);
    }
    return this.#writeQueue().writeNow(bytes);
  }

  onDrain(callback: (error?: unknown) => void): void {
    this.#writeQueue().onDrain(callback);
  }

  closeWrite(): Promise<void> {
    if (this.#isClosed) return RESOLVED;
    // Nothing queued (the kernel took every write): FIN now, with no queue made just for it.
    if (this.#writes === undefined) {
      this.#socket.shutdown();
      return RESOLVED;
    }
    // Bun's end() has dropped queued bytes on large writes: flush first, then shutdown().
    return this.#writes.closeWrite();
  }

  #writeQueue(): WriteQueue {
    return this.#writes ??= new WriteQueue(this.#socket);
  }

  close(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#socket.end();
    this.onEnd();
  }

  reset(): void {
    if (this.#isClosed) return;
    this.#isClosed = true;
    this.#socket.terminate!(); // an RST (uSockets closes with SO_LINGER 0)
    this.onEnd();
  }
}

/** A TLS socket: handed out only once its handshake is done (and, with a client CA, the client verified). */
export class BunTlsStreamSocket extends BunStreamSocket {
  #bun: BunSocket;
  handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settled by the handshake: `undefined` while it runs, then whether it succeeded. */
  handshakeDone: boolean | undefined;
  /** A client's wait for the handshake. */
  handshaken: { resolve(): void; reject(error: Error): void } | undefined;

  constructor(socket: BunSocket, known: KnownAddresses) {
    super(socket, known);
    this.#bun = socket;
  }

  get tls(): TlsInfo {
    const socket = this.#bun;
    return tlsInfo({
      version: socket.getTLSVersion?.(),
      cipher: socket.getCipher?.()?.name,
      alpn: socket.alpnProtocol,
      servername: socket.getServername?.(),
      peerSubject: socket.getPeerCertificate?.()?.subject,
      authorized: socket.authorized,
    });
  }
}

/** Addresses shared by every socket of a listener rather than built per socket. */
export interface KnownAddresses {
  /** A unix socket's path, reported as both ends' address. */
  unix?: Address;
  /** The local address, when the listener is bound to one. */
  local?: Address;
}

/** The handler that wraps each socket Bun opens in a {@linkcode BunStreamSocket} and feeds it Bun's events. */
export function handlerFor(known: KnownAddresses, onSocket?: (socket: StreamSocket) => void): BunSocketHandler {
  return {
    open(socket) {
      socket.data = new BunStreamSocket(socket, known);
      if (known.unix === undefined) socket.setNoDelay?.(true);
      onSocket?.(socket.data);
    },
    data: (socket, chunk) => socket.data.onData(chunk),
    drain: (socket) => socket.data.onDrained(),
    end: (socket) => socket.data.onEnd(),
    close: (socket, error) => socket.data?.onClose(error),
    error: (socket, error) => socket.data?.onEnd(error),
  };
}

/** The addresses known for every socket to `endpoint` before any opens: a unix socket's path. */
export function knownAddresses(endpoint: Endpoint): KnownAddresses {
  return "path" in endpoint ? { unix: { transport: "unix", path: endpoint.path } } : {};
}

/** An endpoint as Bun names it. */
export function bunEndpoint(endpoint: Endpoint): BunEndpoint {
  return "path" in endpoint ? { unix: endpoint.path } : endpoint;
}

/** Settles a client's wait for its handshake (`handshaken`), with `failure` or without. */
export function settleHandshake(wrapper: BunTlsStreamSocket, failure?: Error): void {
  wrapper.handshakeDone = failure === undefined;
  if (failure) wrapper.handshaken?.reject(failure);
  else wrapper.handshaken?.resolve();
}
