/**
 * The receiving side on a listener: which peers may send a header, reading it within a
 * deadline, and the socket the protocol then sees (the client's address, the bytes after the
 * header first).
 *
 * @module
 */

import { errorMessage } from "../log.ts";
import { type Cidr, cidrContains, parseCidr, parseIp } from "../ip.ts";
import { TIMED_OUT, within } from "../_timers.ts";
import { type ChunkListener, ReadQueue } from "../read_queue.ts";
import type { TlsInfo } from "../tls.ts";
import type { Address, ChunkResponder, StreamSocket } from "../types.ts";
import type { ProxyHeader } from "./header.ts";
import { ProxyHeaderParser, type ProxyParseResult } from "./parser.ts";

/**
 * How a listener takes PROXY protocol headers. With this option set, every connection must
 * begin with a v1 or v2 header (never guessed per connection), sent by a trusted proxy.
 *
 * @example HAProxy on this host, with the spec's suggested wait
 * ```ts
 * import type { ProxyProtocolOptions } from "./mod.ts";
 *
 * const proxyProtocol: ProxyProtocolOptions = { trusted: ["127.0.0.0/8", "::1/128"], timeoutMs: 5000 };
 * ```
 */
export interface ProxyProtocolOptions {
  /**
   * CIDR blocks of the proxies allowed to connect; any other TCP peer is refused at accept.
   * Peers on a unix socket are trusted (the socket file's permissions decide who connects).
   * @default {["127.0.0.0/8", "::1/128"]}
   */
  trusted?: readonly string[];
  /** How long a connection may take to send its complete header, in ms (the spec asks for at least 3 s). @default {5000} */
  timeoutMs?: number;
}

/** The default trusted proxies: this host. */
export const DEFAULT_PROXY_TRUSTED: readonly string[] = ["127.0.0.0/8", "::1/128"];

/** The default header timeout: 5 s. */
export const DEFAULT_PROXY_TIMEOUT_MS = 5000;

/**
 * A check of a peer against the trusted blocks.
 *
 * @param trusted CIDR blocks.
 * @returns A predicate over a connection's real peer address.
 * @throws {TypeError} When a block is not CIDR.
 *
 * @example
 * ```ts
 * import { createProxyTrust } from "./mod.ts";
 *
 * const trusts = createProxyTrust(["10.0.0.0/8"]);
 * console.log(trusts({ transport: "tcp", hostname: "10.1.2.3", port: 5000 })); // true
 * console.log(trusts({ transport: "tcp", hostname: "192.0.2.1", port: 5000 })); // false
 * ```
 */
export function createProxyTrust(trusted: readonly string[] = DEFAULT_PROXY_TRUSTED): (peer: Address) => boolean {
  const blocks: Cidr[] = trusted.map(parseCidr);
  // Connections come from a few proxies: the last trusted one is remembered, so most accepts
  // compare one string instead of parsing the address (the blocks never change).
  let lastTrusted: string | undefined;
  return (peer) => {
    if (peer.transport === "unix" || peer.hostname === lastTrusted) return true;
    const bytes = parseIp(peer.hostname);
    const trusts = bytes !== undefined && blocks.some((block) => cidrContains(block, bytes));
    if (trusts) lastTrusted = peer.hostname;
    return trusts;
  };
}

/**
 * A connection that came through a proxy: `remoteAddr` is the client the header named (or the
 * real peer for `LOCAL`/`UNKNOWN`), `proxy` the proxy's own address, and the first read (or
 * answered chunk) is whatever followed the header in its chunk.
 *
 * @example
 * ```ts ignore
 * import { ProxiedSocket } from "./mod.ts";
 *
 * if (socket instanceof ProxiedSocket) console.log(`client ${socket.remoteAddr}, via ${socket.proxy}`);
 * ```
 */
export class ProxiedSocket implements StreamSocket {
  /** The client, from the header; the real peer when the header names none. */
  readonly remoteAddr: Address;
  /** This side's real address. */
  readonly localAddr: Address;
  /** The proxy's own address: the connection's real peer. */
  readonly proxy: Address;
  /** The header as parsed. */
  readonly header: ProxyHeader;
  /** The TLS session, when the connection went on in TLS after its header (set only then). */
  declare readonly tls?: TlsInfo;
  readonly #socket: StreamSocket;
  #leftover: Uint8Array | undefined;

  /**
   * Wraps `socket` after its header.
   *
   * @param socket The accepted connection.
   * @param header Its parsed header.
   * @param leftover The bytes that followed the header in the same read.
   * @param tls The TLS session of `socket`, when TLS ran after the header.
   */
  constructor(socket: StreamSocket, header: ProxyHeader, leftover: Uint8Array, tls?: TlsInfo) {
    this.#socket = socket;
    this.header = header;
    this.proxy = socket.remoteAddr;
    this.localAddr = socket.localAddr;
    this.remoteAddr = header.source ?? socket.remoteAddr;
    this.#leftover = leftover.length > 0 ? leftover : undefined;
    if (tls) (this as { tls?: TlsInfo }).tls = tls;
    // Keep the fast path only where the transport has one, so answerAll falls back the same way.
    if (!socket.answerEach) Object.defineProperty(this, "answerEach", { value: undefined });
  }

  /** True when the client the header names is the proxy itself (or none is named): a proxy's own connection. */
  get fromProxyItself(): boolean {
    const client = this.header.source;
    if (!client || client.transport !== "tcp" || this.proxy.transport !== "tcp") return true;
    const a = parseIp(client.hostname);
    const b = parseIp(this.proxy.hostname);
    return a !== undefined && b !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i]);
  }

  /**
   * The bytes that followed the header, taken now (the next read then goes to the socket), or
   * `undefined` when there were none or they were read already: a protocol whose first input
   * came with the header needs neither a read nor a timer for it.
   */
  takeBuffered(): Uint8Array | undefined {
    const leftover = this.#leftover;
    this.#leftover = undefined;
    return leftover;
  }

  /** The bytes after the header first, then the socket's own reads. */
  read(): Promise<Uint8Array | null> {
    const leftover = this.#leftover;
    if (leftover === undefined) return this.#socket.read();
    this.#leftover = undefined;
    return Promise.resolve(leftover);
  }

  /** Writes to the socket. */
  write(bytes: Uint8Array): Promise<void> {
    return this.#socket.write(bytes);
  }

  /** Half-closes the socket. */
  closeWrite(): Promise<void> {
    return this.#socket.closeWrite();
  }

  /** Closes the socket. */
  close(): void {
    this.#socket.close();
  }

  /** Resolves once the socket is closed. */
  get closed(): Promise<void> {
    return this.#socket.closed;
  }

  /** Answers the bytes after the header as the first chunk, then hands over to the socket's own fast path. */
  answerEach(responder: ChunkResponder): void {
    const socket = this.#socket;
    const leftover = this.#leftover;
    this.#leftover = undefined;
    if (leftover === undefined) return socket.answerEach!(responder);
    let reply: Uint8Array | null | undefined;
    try {
      reply = responder.answer(leftover);
    } catch (error) {
      return responder.ended(error);
    }
    if (reply === null) return responder.ended();
    if (reply === undefined || reply.length === 0) return socket.answerEach!(responder);
    socket.write(reply).then(() => {
      responder.answered?.();
      socket.answerEach!(responder);
    }).catch((error) => responder.ended(error));
  }
}

/**
 * Reads a connection's PROXY header within `timeoutMs`.
 *
 * @param socket The accepted connection (from a trusted proxy).
 * @param timeoutMs The deadline for the complete header.
 * @returns The wrapped socket, or why the connection must be refused.
 *
 * @example
 * ```ts ignore
 * import { readProxyHeader } from "./mod.ts";
 *
 * const outcome = await readProxyHeader(socket, 5000);
 * if ("reason" in outcome) socket.close();
 * ```
 */
export async function readProxyHeader(
  socket: StreamSocket,
  timeoutMs: number,
): Promise<ProxiedSocket | { reason: string }> {
  const parser = new ProxyHeaderParser();
  const deadline = Date.now() + timeoutMs;
  try {
    while (true) {
      const chunk = await within(socket.read(), deadline - Date.now());
      if (chunk === TIMED_OUT) return { reason: `no complete PROXY header within ${timeoutMs / 1000} s` };
      if (chunk === null) return { reason: "closed before a complete PROXY header" };
      const result = parser.push(chunk);
      if (result.status === "invalid") return { reason: `bad PROXY header: ${result.reason}` };
      if (result.status === "header") return new ProxiedSocket(socket, result.header, result.rest);
    }
  } catch (error) {
    return { reason: `reading the PROXY header failed: ${errorMessage(error)}` };
  }
}

/** What reading a connection's header came to: the wrapped socket, or why it is refused. */
export type ProxyHeaderOutcome = ProxiedSocket | { reason: string };

/**
 * A listener's header reads: every connection's header is read as its bytes arrive (from the
 * socket's data callback where it has a {@linkcode ReadQueue}: no promise, no async frame), and
 * one timer serves every connection's deadline. The timeout is the same for all, so the oldest
 * read always has the nearest deadline: the timer is armed for it alone and, when it fires,
 * refuses whatever is overdue and re-arms for the next. A connection costs one small object,
 * linked into the listener's list of reads, never a timer of its own; it gets a parser only when
 * its first chunk does not hold a whole v2 header.
 *
 * @example
 * ```ts ignore
 * import { ProxyHeaderReads } from "./mod.ts";
 *
 * const reads = new ProxyHeaderReads(5000, (socket, outcome) => {
 *   if ("reason" in outcome) socket.close();
 *   else console.log(`client ${outcome.remoteAddr.transport}`);
 * });
 * reads.start(socket);
 * ```
 */
export class ProxyHeaderReads {
  readonly #timeoutMs: number;
  readonly #onOutcome: (socket: StreamSocket, outcome: ProxyHeaderOutcome) => void;
  // In start order, which is deadline order (one timeout for all): linked through the reads
  // themselves, oldest first, so a read joins and leaves with no table to hash into or grow.
  #oldest: HeaderRead | undefined;
  #newest: HeaderRead | undefined;
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * A listener's reads, none started yet.
   *
   * @param timeoutMs How long each connection has for its complete header.
   * @param onOutcome Called once per connection, with the wrapped socket or the refusal reason
   *   (from the socket's data callback: the protocol can start at once).
   */
  constructor(timeoutMs: number, onOutcome: (socket: StreamSocket, outcome: ProxyHeaderOutcome) => void) {
    this.#timeoutMs = timeoutMs;
    this.#onOutcome = onOutcome;
  }

  /** Connections whose header is still being read. */
  get size(): number {
    return this.#size;
  }

  /**
   * Starts reading `socket`'s header.
   *
   * @param socket An accepted connection, from a trusted proxy.
   */
  start(socket: StreamSocket): void {
    const read = new HeaderRead(this, socket, Date.now() + this.#timeoutMs);
    read.previous = this.#newest;
    if (this.#newest) this.#newest.next = read;
    else this.#oldest = read;
    this.#newest = read;
    this.#size++;
    this.#timer ??= setTimeout(this.#expire, this.#timeoutMs);
    // A push-style socket's chunks are its own (not lent, as answerEach's may be): the bytes
    // after the header are kept as they came, with no copy.
    if (socket instanceof ReadQueue) socket.subscribe(read);
    else read.readLoop();
  }

  /** Closes every connection still sending its header (without an outcome) and stops the timer. */
  closeAll(): void {
    for (let read = this.#oldest; read; read = read.next) {
      read.settled = true;
      read.socket.close();
    }
    this.#oldest = this.#newest = undefined;
    this.#size = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** @internal Called by a read once it has its outcome. */
  settle(read: HeaderRead, outcome: ProxyHeaderOutcome): void {
    if (read.settled) return;
    read.settled = true;
    this.#unlink(read);
    this.#onOutcome(read.socket, outcome);
  }

  #unlink(read: HeaderRead): void {
    const { previous, next } = read;
    if (previous) previous.next = next;
    else this.#oldest = next;
    if (next) next.previous = previous;
    else this.#newest = previous;
    read.previous = read.next = undefined;
    this.#size--;
  }

  #expire = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    for (let read = this.#oldest; read; read = this.#oldest) {
      if (read.deadline > now) {
        this.#timer = setTimeout(this.#expire, read.deadline - now);
        return;
      }
      this.settle(read, { reason: `no complete PROXY header within ${this.#timeoutMs / 1000} s` });
    }
  };
}

// One connection's header read: the listener its socket's read queue hands chunks to.
class HeaderRead implements ChunkListener {
  readonly #reads: ProxyHeaderReads;
  readonly socket: StreamSocket;
  readonly deadline: number;
  // Made at the first chunk that does not hold a whole header (most never need one).
  #parser: ProxyHeaderParser | undefined = undefined;
  settled = false;
  // Links in the listener's list of reads, in start order.
  previous: HeaderRead | undefined = undefined;
  next: HeaderRead | undefined = undefined;

  constructor(reads: ProxyHeaderReads, socket: StreamSocket, deadline: number) {
    this.#reads = reads;
    this.socket = socket;
    this.deadline = deadline;
  }

  /** Takes a chunk; true while the header is incomplete (later chunks then come here too). */
  onChunk(chunk: Uint8Array | null, error?: unknown): boolean {
    if (this.settled) return false;
    if (chunk === null) {
      this.ended(error);
      return false;
    }
    let parser = this.#parser;
    if (parser === undefined) {
      const whole = ProxyHeaderParser.parseWhole(chunk);
      if (whole !== undefined) {
        this.#reads.settle(this, outcomeOf(this.socket, whole));
        return false;
      }
      parser = this.#parser = new ProxyHeaderParser();
    }
    const result = parser.push(chunk);
    if (result.status === "partial") return true;
    this.#reads.settle(this, outcomeOf(this.socket, result));
    return false;
  }

  ended(error?: unknown): void {
    if (this.settled) return;
    this.#reads.settle(
      this,
      error === undefined
        ? { reason: "closed before a complete PROXY header" }
        : { reason: `reading the PROXY header failed: ${errorMessage(error)}` },
    );
  }

  // For other sockets: read() until the header is complete (or the input is over), one promise
  // per read and no async frame.
  readLoop(): void {
    this.socket.read().then(
      (chunk) => {
        if (this.onChunk(chunk)) this.readLoop();
      },
      (error) => this.ended(error ?? new Error("Read failed")),
    );
  }
}

function outcomeOf(socket: StreamSocket, result: Exclude<ProxyParseResult, { status: "partial" }>): ProxyHeaderOutcome {
  if (result.status === "invalid") return { reason: `bad PROXY header: ${result.reason}` };
  return new ProxiedSocket(socket, result.header, result.rest);
}
