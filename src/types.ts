/**
 * The abstract stream socket and transport that every runtime adapter implements.
 *
 * The core in `src/` speaks only these interfaces; `adapters/node.ts`, `adapters/deno.ts`
 * and `adapters/bun.ts` map them onto each runtime's socket API.
 *
 * @module
 */

import type { TlsClientOptions, TlsHandshakeFailure, TlsInfo, TlsServerOptions } from "./tls.ts";

/**
 * Where a socket is bound or connected: a TCP host and port, or a unix socket path.
 *
 * @example Formatting an address
 * ```ts
 * import { type Address, formatAddress } from "./mod.ts";
 *
 * const addr: Address = { transport: "tcp", hostname: "127.0.0.1", port: 8001 };
 * console.log(formatAddress(addr)); // "127.0.0.1:8001"
 * ```
 */
export type Address =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string }
  | { transport: "udp"; hostname: string; port: number };

/**
 * Where to listen or connect: `{ hostname, port }` for TCP, `{ path }` for a unix socket.
 *
 * @example A TCP endpoint on a free port
 * ```ts
 * import type { Endpoint } from "./mod.ts";
 *
 * const endpoint: Endpoint = { hostname: "127.0.0.1", port: 0 };
 * ```
 */
export type Endpoint = { hostname: string; port: number } | { path: string };

/**
 * A connected, bidirectional byte stream with pull-style reads and backpressured writes.
 *
 * Contract for adapters:
 * - `read()` resolves with the next chunk, or `null` once the peer finished sending (or the
 *   socket was closed). A chunk stays valid after the next `read()`.
 * - `write()` resolves once the bytes are accepted and the adapter's queue is under its
 *   high-water mark; it writes everything (partial writes are handled inside).
 * - `closeWrite()` flushes queued bytes, then half-closes (sends FIN); reading goes on.
 * - `close()` releases the socket at once and settles every pending `read()` with `null`.
 * - `closed` resolves (never rejects) once the socket is fully closed.
 *
 * @example Echo one chunk back
 * ```ts
 * import type { StreamSocket } from "./mod.ts";
 *
 * async function echoOnce(socket: StreamSocket): Promise<void> {
 *   const chunk = await socket.read();
 *   if (chunk) await socket.write(chunk);
 *   await socket.closeWrite();
 * }
 * ```
 */
export interface StreamSocket {
  /** The peer's address, known at accept or connect time. */
  readonly remoteAddr: Address;
  /** This side's address. */
  readonly localAddr: Address;
  /** Resolves with the next chunk, or `null` at end of input. Rejects on a socket error. */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `bytes`; resolves when the write queue is under its high-water mark. */
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes pending writes and sends FIN; the read side stays open. */
  closeWrite(): Promise<void>;
  /** Closes both directions now. Safe to call more than once. */
  close(): void;
  /**
   * Closes both directions now with a TCP RST (SO_LINGER 0) instead of a FIN, dropping unsent
   * bytes: the peer sees "connection reset". Present where the runtime can; see
   * {@linkcode ListenOptions.resettable}.
   */
  reset?(): void;
  /** Resolves once the socket is closed; never rejects. */
  readonly closed: Promise<void>;
  /**
   * Optional fast path for protocols that answer each chunk as it arrives (echo's `chunk` and
   * `raw` modes, the gate's knock): reads chunk after chunk and writes what `responder.answer` returns, with no
   * promise per chunk (or per connection) where the runtime's API allows. The next chunk is
   * delivered only once the answer is accepted (the write queue is under its high-water mark),
   * so backpressure holds as with `read()` and `write()`. No `read()` may be pending meanwhile.
   * {@linkcode answerAll} wraps it in a promise, with a read/write loop where it is missing.
   */
  answerEach?(responder: ChunkResponder): void;
  /** The TLS session, on a TLS socket (its handshake is done before the socket is handed out). */
  readonly tls?: TlsInfo;
  /**
   * On a connection accepted by a listener with `tls` and `deferTls` (see {@linkcode ListenOptions}):
   * runs the listener's TLS handshake over it now, `buffered` (bytes already read past what came
   * in clear text) first. Resolves with the TLS socket, which replaces this one; rejects with a
   * {@linkcode TlsHandshakeError}, the connection closed, when the handshake fails or times out.
   * The listener's handshake timeout, client CA, ALPN and current certificate apply. No read may
   * be pending, nor `answerEach` running.
   */
  startTls?(buffered?: Uint8Array): Promise<StreamSocket>;
}

/**
 * What {@linkcode StreamSocket.answerEach} reports to. An object rather than callbacks, so a
 * long-lived responder (one per connection) needs no closures.
 *
 * @example Answer every chunk with its length, until the peer finishes
 * ```ts
 * import type { ChunkResponder } from "./mod.ts";
 *
 * const responder: ChunkResponder = {
 *   answer: (chunk) => new TextEncoder().encode(`${chunk.length}\n`),
 *   ended: (error) => console.log(error === undefined ? "done" : `failed: ${error}`),
 * };
 * ```
 */
export interface ChunkResponder {
  /**
   * Returns the bytes to write for `chunk` (the chunk itself may be returned), `undefined` to
   * write nothing, or `null` to stop: that chunk's answer is dropped and later input is left for
   * `read()`. The chunk is lent: it is valid only until `answer` returns (an adapter may read
   * every chunk into one reused buffer), unless it is returned as the answer.
   */
  answer(chunk: Uint8Array, framed?: Uint8Array): Uint8Array | null | undefined;
  /**
   * Bytes every answer begins with, when each answer is exactly these bytes and then the chunk
   * (echo's prefix). An adapter that reads every chunk into one buffer of its own may keep a copy
   * of them in front of where it reads and pass both as one view, `framed`, to `answer`, which
   * then returns it: the answer costs no copy and no allocation. `framed` is lent like the chunk.
   * Adapters may ignore it.
   */
  readonly replyPrefix?: Uint8Array;
  /**
   * Called after an answer was written (taken by the write side), before the next chunk: a
   * protocol that answers once and then closes (the gate) closes from here.
   */
  answered?(): void;
  /**
   * The least a read should take at once: a protocol that judges its first chunk whole (the
   * gate's token, up to 1024 bytes and more to tell it is too long) sees it as `read()` would.
   * Adapters that read into a buffer of their own size it at least this. @default {512}
   */
  readonly readBytes?: number;
  /**
   * Called once when answering is over: at end of input, after `answer` returned `null`, or
   * with the error when the socket failed or `answer` threw.
   */
  ended(error?: unknown): void;
}

/**
 * Callbacks a transport calls while a listener runs.
 *
 * @example Count connections
 * ```ts
 * import type { ListenHandlers } from "./mod.ts";
 *
 * let count = 0;
 * const handlers: ListenHandlers = {
 *   onSocket: (socket) => { count++; socket.close(); },
 *   onError: (error) => console.error(error),
 * };
 * ```
 */
export interface ListenHandlers {
  /** Called once per accepted connection. */
  onSocket(socket: StreamSocket): void;
  /** Called when accepting fails (e.g. out of file descriptors); the listener keeps going. */
  onError(error: unknown): void;
  /**
   * Called (on a TLS listener) for a connection whose handshake failed or timed out; it is
   * closed already and never reaches `onSocket`.
   */
  onHandshakeError?(failure: TlsHandshakeFailure): void;
}

/**
 * How to listen, beyond where.
 *
 * @example
 * ```ts
 * import type { ListenOptions } from "./mod.ts";
 *
 * const options: ListenOptions = { tls: { cert: "-----BEGIN CERTIFICATE-----…", key: "…" } };
 * ```
 */
export interface ListenOptions {
  /** Serve TLS with this certificate and key. */
  tls?: TlsServerOptions;
  /**
   * With `tls`: hand connections out before their handshake, as plain TCP sockets that have
   * {@linkcode StreamSocket.startTls}, so the server can first read what a proxy sends in clear
   * text (a PROXY protocol header). Handshake failures then reject `startTls` instead of
   * reaching `onHandshakeError`. @default {false}
   */
  deferTls?: boolean;
  /**
   * Share the port with other processes of this program, as `--workers` does: `SO_REUSEPORT`
   * (Bun; Deno with `--unstable-net`; Node 22.12+), or in a `node:cluster` worker the primary's socket
   * (what `--workers` uses on older Node).
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * A unix socket only: the socket file's permission bits. Connecting needs write permission, so
   * the default lets only this user (and root) in; 0o660 adds the file's group. The file is
   * created with this mode (through the umask), never wider for a moment. @default {0o600}
   */
  unixMode?: number;
  /**
   * Hand out sockets that have {@linkcode StreamSocket.reset} (a fault proxy's `reset_peer`):
   * on Deno, whose own sockets cannot send an RST, the listener then runs on its `node:net`.
   * @default {false}
   */
  resettable?: boolean;
}

/**
 * How to connect, beyond where.
 *
 * @example
 * ```ts
 * import type { ConnectOptions } from "./mod.ts";
 *
 * const options: ConnectOptions = { tls: { servername: "localhost" } };
 * ```
 */
export interface ConnectOptions {
  /** Speak TLS, verifying the server as these options say. */
  tls?: TlsClientOptions;
  /**
   * With `tls`: bytes to send in clear text before the handshake, as a TLS-passthrough balancer
   * sends a PROXY protocol header; made from the connection's addresses once it is open.
   */
  beforeTls?: (connection: { readonly localAddr: Address; readonly remoteAddr: Address }) => Uint8Array;
  /** Return a socket that has {@linkcode StreamSocket.reset}, as {@linkcode ListenOptions.resettable}. */
  resettable?: boolean;
}

/**
 * A bound, accepting listener.
 *
 * @example Stop accepting
 * ```ts
 * import type { Listener } from "./mod.ts";
 *
 * async function stop(listener: Listener): Promise<void> {
 *   await listener.close();
 * }
 * ```
 */
export interface Listener {
  /** The address actually bound (the real port when port 0 was asked for). */
  readonly addr: Address;
  /** Stops accepting new connections; open sockets are left alone. */
  close(): Promise<void>;
  /**
   * How many sockets the process can hold open before it runs out of file descriptors, where
   * the adapter knows and the runtime does not report failed accepts itself. The server refuses
   * (and logs) connections beyond it rather than letting accept fail.
   */
  readonly maxSockets?: number;
  /**
   * On a TLS listener: serves new connections with these certificate, key and client CA from now
   * on (open ones keep theirs). Rejects, keeping the old ones, when the runtime refuses them.
   */
  reloadTls?(tls: TlsServerOptions): Promise<void>;
}

/**
 * How a runtime's own socket calls are named, for `--trace`: the one call that does
 * socket+bind+listen, socket+connect, and socket+bind for UDP, on plain sockets (TLS ones differ
 * by options), and the listen backlog it asks for. Each is left out where it is not always the
 * same call.
 *
 * @example
 * ```ts
 * import type { TransportCalls } from "./types.ts";
 *
 * const calls: TransportCalls = { listen: "Deno.listen()", connect: "Deno.connect()", backlog: 511 };
 * ```
 */
export interface TransportCalls {
  /** The call that creates, binds and listens. */
  readonly listen?: string;
  /** The call that creates and connects. */
  readonly connect?: string;
  /** The call that creates and binds a datagram socket. */
  readonly bindDatagram?: string;
  /** The backlog that call asks for (Linux caps it at net.core.somaxconn). */
  readonly backlog?: number;
}

/**
 * One runtime's socket API, as the core needs it. Each adapter exports one.
 *
 * @example Connect with whatever transport the caller hands in
 * ```ts
 * import type { StreamSocket, Transport } from "./mod.ts";
 *
 * function dial(transport: Transport, port: number): Promise<StreamSocket> {
 *   return transport.connect({ hostname: "127.0.0.1", port });
 * }
 * ```
 */
export interface Transport {
  /** The runtime name: `"node"`, `"deno"` or `"bun"`. */
  readonly runtime: string;
  /** What this runtime's socket calls are named, for `--trace` (src/trace/). */
  readonly calls?: TransportCalls;
  /**
   * Binds and starts accepting. Rejects with {@linkcode AddrInUseError} when the address is taken.
   */
  listen(endpoint: Endpoint, handlers: ListenHandlers, options?: ListenOptions): Promise<Listener>;
  /** Opens a connection; with `options.tls`, resolves once the handshake is done and the server verified. */
  connect(endpoint: Endpoint, options?: ConnectOptions): Promise<StreamSocket>;
  /**
   * Removes a stale unix socket file; resolves when it is gone (or was never there). Anything but
   * a socket at `path` (a regular file, a directory, a symlink) is left alone: rejects with
   * {@linkcode NotASocketError}.
   */
  removeSocketFile(path: string): Promise<void>;
  /**
   * Allocates `size` bytes (uninitialized) in the form the runtime writes as is; replies are cut
   * from these. Node's sockets convert any other Uint8Array into a Buffer on every write, so
   * Node's transport hands out Buffers. @default {new Uint8Array(size)}
   */
  allocate?(size: number): Uint8Array;
  /**
   * Binds a UDP socket (IPv4 or IPv6, chosen from `endpoint.hostname`: a name or an IPv4
   * address binds IPv4, an address with a `:` IPv6). Rejects with {@linkcode AddrInUseError}
   * when the address is taken. Missing on transports without datagrams.
   */
  bindDatagram?(endpoint: { hostname: string; port: number }, handlers: DatagramHandlers): Promise<DatagramSocket>;
  /**
   * Resolves a host name to one IP address (the system resolver's first answer), for datagram
   * sockets whose `send()` takes addresses only (Bun's). Where missing, names go to `send()`
   * as they are and the runtime looks them up.
   */
  lookup?(hostname: string): Promise<string>;
  /**
   * Turns what the runtime threw on a client connection (connecting, or a TLS client's read that
   * brings the server's verdict on it) into a `ConnectError` (`src/client/connect_errors.ts`) where it is one, in the
   * same words on every runtime; returns anything else as it is. `connect` applies it already.
   */
  explainError?(error: unknown, endpoint: Endpoint, tls?: TlsClientOptions): unknown;
  /**
   * Serves HTTP/1.1 on the runtime's own HTTP server, every request answered by `handler`
   * (`echogate faults`' control API, `--metrics`). Missing on transports without an HTTP server.
   * `limits` bound its peers where the runtime's server allows it (see {@linkcode HttpLimits}).
   */
  serveHttp?(
    endpoint: { hostname: string; port: number },
    handler: HttpHandler,
    limits?: HttpLimits,
  ): Promise<HttpServer>;
}

/**
 * Bounds on the peers of an HTTP server started by {@linkcode Transport.serveHttp}. Every runtime
 * applies all three: Node on node:http, Deno on its node:http, Bun on its node:http behind a
 * connection-counting node:net listener.
 *
 * @example
 * ```ts
 * import type { HttpLimits } from "./mod.ts";
 *
 * const limits: HttpLimits = { maxConnections: 16, maxRequestBytes: 16_384, idleTimeoutMs: 10_000 };
 * ```
 */
export interface HttpLimits {
  /** Connections open at once; more are closed as they come. */
  maxConnections?: number;
  /** Bytes of a request's head (and body). */
  maxRequestBytes?: number;
  /** A connection idle (or a request incomplete) this long is closed. */
  idleTimeoutMs?: number;
}

/**
 * A fetch-style HTTP request handler, as {@linkcode Transport.serveHttp} calls it.
 *
 * @example
 * ```ts
 * import type { HttpHandler } from "./mod.ts";
 *
 * const hello: HttpHandler = () => Promise.resolve(new Response("hello"));
 * ```
 */
export type HttpHandler = (request: Request) => Promise<Response>;

/**
 * A running HTTP server started by {@linkcode Transport.serveHttp}.
 *
 * @example
 * ```ts
 * import type { HttpServer } from "./mod.ts";
 *
 * async function stop(server: HttpServer): Promise<void> {
 *   await server.close();
 * }
 * ```
 */
export interface HttpServer {
  /** The address actually bound (the real port when 0 was asked for). */
  readonly addr: Address;
  /** Stops the server and closes its open connections. */
  close(): Promise<void>;
}

/**
 * Callbacks a bound {@linkcode DatagramSocket} calls. Positional arguments rather than an
 * address object: nothing is allocated per datagram beyond the bytes themselves.
 *
 * @example Count datagrams per port
 * ```ts
 * import type { DatagramHandlers } from "./mod.ts";
 *
 * const seen = new Map<number, number>();
 * const handlers: DatagramHandlers = {
 *   onMessage: (_bytes, _hostname, port) => void seen.set(port, (seen.get(port) ?? 0) + 1),
 *   onError: (error) => console.error(error),
 * };
 * ```
 */
export interface DatagramHandlers {
  /**
   * One datagram arrived from `hostname` (an IP address, IPv4-mapped on a dual-stack socket)
   * and `port`. The bytes are the caller's to keep (adapters hand over a fresh array), unless `lent`.
   */
  onMessage(bytes: Uint8Array, hostname: string, port: number, framed?: Uint8Array): void;
  /**
   * True when `onMessage` copies what it keeps past the call. An adapter may then hand over a view
   * into its receive buffer instead of a fresh array, a copy per datagram saved; that view stays
   * unchanged until the first `send()` made during the call has completed, so an answer made of
   * the bytes themselves is safe. @default {false}
   */
  readonly lent?: boolean;
  /**
   * With `lent`: bytes every answer begins with, when each answer is exactly these bytes and then
   * the datagram (echo's prefix), as {@linkcode ChunkResponder.replyPrefix} for streams. An
   * adapter that receives into one buffer of its own may keep a copy of them in front of where
   * each datagram lands and pass both as one view, `framed`, to `onMessage`: the answer costs no
   * copy and no allocation. `framed` is lent like the datagram. Adapters may ignore it.
   */
  readonly replyPrefix?: Uint8Array;
  /**
   * A send failed (`hostname` and `port` say to whom, where the runtime tells), or the socket
   * reported an error of its own: an ICMP port unreachable arriving as `ECONNREFUSED` (Bun
   * reports these without the peer's address). The socket keeps going.
   */
  onError(error: unknown, hostname?: string, port?: number): void;
}

/**
 * A bound UDP socket.
 *
 * Backpressure: `send()` never queues without bound. It returns `false` when the datagram was
 * not taken because the socket's send buffer is full (Bun's `send()` returned false; Node's
 * libuv queue holds more than a high-water mark; Deno's `node:dgram` has more than a bound of
 * sends in flight): that datagram is dropped, as the network itself may drop it, and
 * `onDrain` says when sending may resume. A server drops and counts; a client waits.
 *
 * @example Answer every datagram with itself
 * ```ts
 * import type { DatagramSocket, Transport } from "./mod.ts";
 *
 * async function reflect(transport: Transport): Promise<DatagramSocket> {
 *   let socket: DatagramSocket | undefined;
 *   socket = await transport.bindDatagram!({ hostname: "127.0.0.1", port: 0 }, {
 *     onMessage: (bytes, hostname, port) => void socket?.send(bytes, hostname, port),
 *     onError: () => {},
 *   });
 *   return socket;
 * }
 * ```
 */
export interface DatagramSocket {
  /** The address actually bound (`transport: "udp"`, with the real port when 0 was asked for). */
  readonly addr: Address;
  /**
   * Sends `bytes` as one datagram to `hostname` (an IP address; a name is looked up by the
   * runtime, slower) and `port`. Returns `false` when the send buffer is full and the datagram
   * was dropped. The bytes must not change until the send completed: hand over bytes nothing
   * else writes to.
   */
  send(bytes: Uint8Array, hostname: string, port: number): boolean;
  /** Calls `callback` once sending may resume (at once, in a microtask, when it already may). */
  onDrain(callback: () => void): void;
  /** Closes the socket; no handler is called afterwards. Safe to call more than once. */
  close(): Promise<void>;
}
