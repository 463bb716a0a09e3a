/**
 * Tracing as a wrapper: a {@linkcode Transport} whose listeners, connections and datagram sockets
 * report every step to a {@linkcode Tracer}. Installed only with `--trace`, so the servers' and
 * clients' own code (and its fast paths) is the same whether tracing or not.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import type {
  ChunkResponder,
  ConnectOptions,
  DatagramHandlers,
  DatagramSocket,
  Endpoint,
  Listener,
  ListenHandlers,
  ListenOptions,
  StreamSocket,
  Transport,
} from "../types.ts";
import { previewOf, type TraceStep } from "./events.ts";
import type { Tracer } from "./tracer.ts";

const LISTEN_STEPS: readonly TraceStep[] = ["socket", "bind"];
const CONNECT_STEPS: readonly TraceStep[] = ["socket"];

/** Options for {@linkcode traceTransport}. */
export interface TraceTransportOptions {
  /**
   * Called with each accepted or connected socket's number and remote address (formatted), so a
   * logger can tie its events (the gate's timeout, a PROXY header's client) to the connection;
   * called with `undefined` for the address when it closed.
   */
  onConnection?(conn: number, remote: string | undefined): void;
  /**
   * How many of each connection's first received and sent chunks carry a secret (a gate token):
   * their bytes are counted but not shown. @default {{ recv: 0, send: 0 }}
   */
  hide?: { recv?: number; send?: number };
}

/**
 * Wraps `transport` so every step its sockets take is reported to `tracer`: `listen` (with
 * `socket` and `bind`, the same call), `accept`, `connect`, `recv`, `send`, `shutdown`, `close`,
 * the TLS handshake, and UDP's `bind`, `recvfrom` and `sendto`. The wrapped sockets keep the fast
 * path (`answerEach`) where the transport's have it, each chunk traced on its way.
 *
 * @param transport The runtime's transport.
 * @param tracer Where the steps go.
 * @param options A hook for tying connections to their log events.
 * @returns A transport that traces.
 *
 * @example
 * ```ts
 * import { transport } from "../../adapters/deno.ts";
 * import { createTracer, renderTraceLine, traceTransport } from "./mod.ts";
 *
 * const traced = traceTransport(transport, createTracer((record) => console.error(renderTraceLine(record))));
 * const listener = await traced.listen({ hostname: "127.0.0.1", port: 0 }, {
 *   onSocket: (socket) => socket.close(),
 *   onError: () => {},
 * });
 * await listener.close();
 * ```
 */
export function traceTransport(
  transport: Transport,
  tracer: Tracer,
  options: TraceTransportOptions = {},
): Transport {
  const { runtime, calls = {} } = transport;
  const wrap = (socket: StreamSocket, conn: number): StreamSocket => {
    const state: ConnectionState = {
      conn,
      tracer,
      closed: false,
      onConnection: options.onConnection,
      hideRecv: options.hide?.recv ?? 0,
      hideSend: options.hide?.send ?? 0,
    };
    options.onConnection?.(conn, formatAddress(socket.remoteAddr));
    if (socket.tls) traceTls(tracer, conn, socket);
    return new TracedSocket(socket, state);
  };
  const traced: Transport = {
    runtime,
    calls,
    removeSocketFile: (path) => transport.removeSocketFile(path),
    async listen(endpoint: Endpoint, handlers: ListenHandlers, listenOptions?: ListenOptions): Promise<Listener> {
      const listener = await transport.listen(endpoint, {
        onSocket(socket) {
          const conn = tracer.connection();
          tracer.trace({ step: "accept", conn, peer: formatAddress(socket.remoteAddr) });
          handlers.onSocket(wrap(socket, conn));
        },
        onError: (error) => handlers.onError(error),
        ...(handlers.onHandshakeError && { onHandshakeError: (failure) => handlers.onHandshakeError!(failure) }),
      }, listenOptions);
      const { backlog } = calls;
      tracer.trace({
        step: "listen",
        conn: 0,
        address: formatAddress(listener.addr),
        ...(backlog !== undefined && { backlog }),
        together: LISTEN_STEPS,
        ...(!listenOptions?.tls && calls.listen !== undefined && { api: calls.listen }),
      });
      return listener;
    },
    async connect(endpoint: Endpoint, connectOptions?: ConnectOptions): Promise<StreamSocket> {
      const socket = await transport.connect(endpoint, connectOptions);
      const conn = tracer.connection();
      tracer.trace({
        step: "connect",
        conn,
        peer: formatAddress(socket.remoteAddr),
        together: CONNECT_STEPS,
        ...(!connectOptions?.tls && calls.connect !== undefined && { api: calls.connect }),
      });
      return wrap(socket, conn);
    },
  };
  if (transport.allocate) traced.allocate = (size) => transport.allocate!(size);
  if (transport.lookup) traced.lookup = (hostname) => transport.lookup!(hostname);
  if (transport.explainError) {
    traced.explainError = (error, endpoint, tls) => transport.explainError!(error, endpoint, tls);
  }
  if (transport.serveHttp) {
    traced.serveHttp = (endpoint, handler, limits) => transport.serveHttp!(endpoint, handler, limits);
  }
  if (transport.bindDatagram) {
    const bindDatagram = transport.bindDatagram.bind(transport);
    traced.bindDatagram = async (endpoint, handlers) => {
      const socket = await bindDatagram(endpoint, traceDatagramHandlers(handlers, tracer));
      tracer.trace({
        step: "bind",
        conn: 0,
        address: formatAddress(socket.addr),
        together: CONNECT_STEPS,
        ...(calls.bindDatagram !== undefined && { api: calls.bindDatagram }),
      });
      return new TracedDatagramSocket(socket, tracer);
    };
  }
  return traced;
}

function traceTls(tracer: Tracer, conn: number, socket: StreamSocket): void {
  tracer.trace({
    step: "tls",
    conn,
    ...(socket.tls?.version !== undefined && { version: socket.tls.version }),
    ...(socket.tls?.cipher !== undefined && { cipher: socket.tls.cipher }),
  });
}

interface ConnectionState {
  readonly conn: number;
  readonly tracer: Tracer;
  /** Whether `close` was traced (a socket replaced by its TLS socket shares it). */
  closed: boolean;
  /** Whether this side closed the socket: then the end of answering is no EOF. */
  closedHere?: boolean;
  /** Whether the end of input was traced (a graceful close reads it again). */
  eof?: boolean;
  onConnection?(conn: number, remote: string | undefined): void;
  /** How many more received (sent) chunks to show without their bytes. */
  hideRecv: number;
  hideSend: number;
}

const NO_PREVIEW = new Uint8Array(0);

// Reports a chunk received or sent: its bytes, unless it is one of the first the state hides.
function traceData(state: ConnectionState, step: "recv" | "send", chunk: Uint8Array): void {
  const hidden = step === "recv" ? state.hideRecv > 0 : state.hideSend > 0;
  if (!hidden) {
    state.tracer.trace({ step, conn: state.conn, bytes: chunk.length, preview: previewOf(chunk) });
    return;
  }
  if (step === "recv") state.hideRecv--;
  else state.hideSend--;
  state.tracer.trace({ step, conn: state.conn, bytes: chunk.length, preview: NO_PREVIEW, hidden: true });
}

function traceEof(state: ConnectionState): void {
  if (state.eof) return;
  state.eof = true;
  state.tracer.trace({ step: "recv", conn: state.conn, bytes: 0, preview: NO_PREVIEW });
}

function traceClose(state: ConnectionState): void {
  if (state.closed) return;
  state.closed = true;
  state.tracer.trace({ step: "close", conn: state.conn });
  state.onConnection?.(state.conn, undefined);
}

// A StreamSocket that reports its steps. `answerEach`, `reset` and `startTls` exist only where
// the wrapped socket has them (callers test for them).
class TracedSocket implements StreamSocket {
  readonly closed: Promise<void>;
  answerEach?: (responder: ChunkResponder) => void;
  reset?: () => void;
  startTls?: (buffered?: Uint8Array) => Promise<StreamSocket>;
  #socket: StreamSocket;
  #state: ConnectionState;

  constructor(socket: StreamSocket, state: ConnectionState) {
    this.#socket = socket;
    this.#state = state;
    this.closed = socket.closed.then(() => traceClose(state));
    if (socket.answerEach) {
      this.answerEach = (responder) => socket.answerEach!(new TracedResponder(responder, state));
    }
    if (socket.reset) {
      this.reset = () => {
        state.closedHere = true;
        socket.reset!();
        traceClose(state);
      };
    }
    if (socket.startTls) {
      this.startTls = async (buffered) => {
        const secure = await socket.startTls!(buffered);
        traceTls(state.tracer, state.conn, secure);
        return new TracedSocket(secure, state);
      };
    }
  }

  get remoteAddr() {
    return this.#socket.remoteAddr;
  }

  get localAddr() {
    return this.#socket.localAddr;
  }

  get tls() {
    return this.#socket.tls;
  }

  async read(): Promise<Uint8Array | null> {
    const chunk = await this.#socket.read();
    if (chunk) traceData(this.#state, "recv", chunk);
    else if (!this.#state.closedHere) traceEof(this.#state);
    return chunk;
  }

  write(bytes: Uint8Array): Promise<void> {
    traceData(this.#state, "send", bytes);
    return this.#socket.write(bytes);
  }

  closeWrite(): Promise<void> {
    this.#state.tracer.trace({ step: "shutdown", conn: this.#state.conn });
    return this.#socket.closeWrite();
  }

  close(): void {
    this.#state.closedHere = true;
    this.#socket.close();
    traceClose(this.#state);
  }
}

// Traces each chunk answered on the fast path, and its answer.
class TracedResponder implements ChunkResponder {
  readonly replyPrefix?: Uint8Array;
  readonly readBytes?: number;
  #responder: ChunkResponder;
  #state: ConnectionState;
  #stopped = false;

  constructor(responder: ChunkResponder, state: ConnectionState) {
    this.#responder = responder;
    this.#state = state;
    if (responder.replyPrefix) this.replyPrefix = responder.replyPrefix;
    if (responder.readBytes !== undefined) this.readBytes = responder.readBytes;
  }

  answered(): void {
    this.#responder.answered?.();
  }

  answer(chunk: Uint8Array, framed?: Uint8Array): Uint8Array | null | undefined {
    traceData(this.#state, "recv", chunk);
    const answer = this.#responder.answer(chunk, framed);
    if (answer) traceData(this.#state, "send", answer);
    else if (answer === null) this.#stopped = true;
    return answer;
  }

  ended(error?: unknown): void {
    if (error === undefined && !this.#stopped && !this.#state.closedHere) traceEof(this.#state);
    this.#responder.ended(error);
  }
}

function traceDatagramHandlers(handlers: DatagramHandlers, tracer: Tracer): DatagramHandlers {
  return {
    onMessage(bytes, hostname, port, framed) {
      const peer = formatAddress({ transport: "udp", hostname, port });
      tracer.trace({ step: "recvfrom", conn: 0, peer, bytes: bytes.length, preview: previewOf(bytes) });
      handlers.onMessage(bytes, hostname, port, framed);
    },
    onError: (error, hostname, port) => handlers.onError(error, hostname, port),
    ...(handlers.lent !== undefined && { lent: handlers.lent }),
    ...(handlers.replyPrefix !== undefined && { replyPrefix: handlers.replyPrefix }),
  };
}

// A DatagramSocket that reports each sendto and its close.
class TracedDatagramSocket implements DatagramSocket {
  #socket: DatagramSocket;
  #tracer: Tracer;

  constructor(socket: DatagramSocket, tracer: Tracer) {
    this.#socket = socket;
    this.#tracer = tracer;
  }

  get addr() {
    return this.#socket.addr;
  }

  send(bytes: Uint8Array, hostname: string, port: number): boolean {
    const peer = formatAddress({ transport: "udp", hostname, port });
    this.#tracer.trace({ step: "sendto", conn: 0, peer, bytes: bytes.length, preview: previewOf(bytes) });
    return this.#socket.send(bytes, hostname, port);
  }

  onDrain(callback: () => void): void {
    this.#socket.onDrain(callback);
  }

  async close(): Promise<void> {
    await this.#socket.close();
    this.#tracer.trace({ step: "close", conn: 0 });
  }
}
