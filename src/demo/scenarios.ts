// The tutorial's scenarios, each a server and its clients on loopback in this process, every
// socket step traced. The servers are echogate's own; the clients are echogate's where the
// tutorial's client does what they do, and the tutorial's few lines otherwise.

import { pythonRepr, utf8 } from "../_bytes.ts";
import { within } from "../_timers.ts";
import { knockGate, sendEcho } from "../client/stream.ts";
import { serveEcho } from "../echo/stream.ts";
import { serveGate } from "../gate/mod.ts";
import { createLogger, type LogEvent, type Logger } from "../log.ts";
import type { EchogateServer } from "../server.ts";
import { previewOf, type Tracer, traceTransport } from "../trace/mod.ts";
import type { Listener, StreamSocket, Transport } from "../types.ts";
import type { Narrator, Side } from "./narrator.ts";
import { ReceiveBuffer } from "./receive_buffer.ts";
import { fill } from "./text.ts";

/** What a scenario runs with. */
export interface ScenarioContext {
  /** The runtime's transport (untraced). */
  transport: Transport;
  /** Where its lines go. */
  narrator: Narrator;
  /** How long the gate waits for a token here, in ms (the tutorial's 5 s, shortened). */
  gateTimeoutMs: number;
}

const LOOPBACK = "127.0.0.1";

/** The longest the demo waits for a server's connections to close before it goes on, in ms. */
const IDLE_WAIT_MS = 5000;

/**
 * The gate: one server (the tutorial's server.py, its timeout shortened), three clients: the
 * right token, a wrong one, and one that sends nothing in time.
 */
export async function gateScenario(context: ScenarioContext): Promise<void> {
  const { narrator } = context;
  const text = narrator.text;
  const side = traced(context.transport, narrator.tracers());
  narrator.heading(text.gateTitle);
  narrator.paragraph(fill(text.gateIntro, { timeout: context.gateTimeoutMs / 1000 }));
  const server = await serveGate({
    transport: side.server,
    hostname: LOOPBACK,
    port: 0,
    timeoutMs: context.gateTimeoutMs,
    penalties: false,
    logger: side.logger(narrator, ["timeout"]),
  });
  try {
    const port = portOf(server);
    const knocks = [[text.gateWelcomeTitle, text.gateWelcomeIntro, "1"], [
      text.gateRefusedTitle,
      text.gateRefusedIntro,
      "2",
    ]] as const;
    for (const [title, intro, token] of knocks) {
      narrator.subheading(title);
      narrator.paragraph(intro);
      const { reply } = await knockGate({ transport: side.client, hostname: LOOPBACK, port, token, delayMs: 0 });
      await side.serverIdle();
      narrator.prints("client", reply);
    }
    narrator.subheading(text.gateTimeoutTitle);
    narrator.paragraph(text.gateTimeoutIntro);
    // The tutorial's client with a sleep longer than the server's timeout: it connects, then the
    // server gives up on it; its recv(1024) finds the server's close.
    const socket = await side.client.connect({ hostname: LOOPBACK, port });
    try {
      while (await socket.read() !== null);
    } finally {
      socket.close();
    }
    await socket.closed;
    await side.serverIdle();
    narrator.paragraph(text.gateTimeoutEnd);
  } finally {
    await server.close();
  }
}

/** The echo server and the tutorial's echo client with its message. */
export async function echoScenario(context: ScenarioContext): Promise<void> {
  const side = traced(context.transport, context.narrator.tracers());
  const { narrator } = context;
  narrator.heading(narrator.text.echoTitle);
  narrator.paragraph(narrator.text.echoIntro);
  const server = await serveEcho({
    transport: side.server,
    hostname: LOOPBACK,
    port: 0,
    logger: side.logger(narrator, ["connect"]),
  });
  try {
    await sendEcho({
      transport: side.client,
      hostname: LOOPBACK,
      port: portOf(server),
      onReply: (reply) => narrator.prints("client", `Client received: ${pythonRepr(reply)}`),
    });
    await side.serverIdle();
  } finally {
    await server.close();
  }
}

/** The size of the recv scenario's large message: over 1024 bytes, three reads. */
const LARGE_MESSAGE_BYTES = 2500;

/**
 * recv's point, with the tutorial's reader (`recv(1024)` in a loop) as the server: a message over
 * 1024 bytes takes several reads, and two quick sends can arrive as one read.
 */
export async function recvScenario(context: ScenarioContext): Promise<void> {
  const { narrator, transport } = context;
  const text = narrator.text;
  const tracers = narrator.tracers();
  const client = traceTransport(transport, tracers.client);
  const reader = new TutorialReader(transport, tracers.server);
  narrator.heading(text.recvLargeTitle);
  narrator.paragraph(fill(text.recvLargeIntro, { bytes: LARGE_MESSAGE_BYTES }));
  await reader.listen();
  try {
    const large = utf8("abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(LARGE_MESSAGE_BYTES / 26)))
      .subarray(0, LARGE_MESSAGE_BYTES);
    const reads = await reader.exchange(client, [large]);
    narrator.paragraph(fill(text.recvLargeEnd, { reads: reads.length, sizes: reads.join(" + "), bytes: large.length }));

    narrator.heading(text.recvMergedTitle);
    narrator.paragraph(text.recvMergedIntro);
    const merged = await reader.exchange(client, [utf8("Hello"), utf8(" world")]);
    narrator.paragraph(fill(text.recvMergedEnd, { bytes: merged[0]! }));
  } finally {
    await reader.close();
  }
}

/**
 * The tutorial's server loop, `data = conn.recv(1024)` until `b''`, over a {@linkcode ReceiveBuffer}
 * (the runtime's own reads come in sizes of its choosing). It waits until a client's whole
 * message is buffered before its first recv, so that every run shows the same reads.
 */
class TutorialReader {
  #transport: Transport;
  #tracer: Tracer;
  #listener: Listener | undefined;
  #conn = 0;
  #accepted: ((accepted: Accepted) => void)[] = [];
  #waiting: Accepted[] = [];

  constructor(transport: Transport, tracer: Tracer) {
    // The wrapper traces listen, accept and close. The reads it would trace are the runtime's
    // own, in sizes of its choosing: the reader traces its recv(1024) calls instead.
    const listening: Tracer = {
      connection: () => tracer.connection(),
      trace: (event) => event.step === "recv" ? undefined : tracer.trace(event),
    };
    this.#transport = traceTransport(transport, listening, {
      onConnection: (conn, remote) => {
        if (remote !== undefined) this.#conn = conn;
      },
    });
    this.#tracer = tracer;
  }

  async listen(): Promise<void> {
    this.#listener = await this.#transport.listen({ hostname: LOOPBACK, port: 0 }, {
      onSocket: (socket) => {
        const accepted = { socket, conn: this.#conn };
        const taker = this.#accepted.shift();
        if (taker) taker(accepted);
        else this.#waiting.push(accepted);
      },
      onError: () => {},
    });
  }

  /**
   * A client connects, sends each message and shuts down; the server reads until EOF and closes.
   * Resolves with the sizes of the reads that returned data.
   */
  async exchange(client: Transport, messages: Uint8Array[]): Promise<number[]> {
    const addr = this.#listener!.addr as { hostname: string; port: number };
    const accepted = this.#accept();
    const socket = await client.connect({ hostname: addr.hostname, port: addr.port });
    const total = messages.reduce((sum, message) => sum + message.length, 0);
    const sending = (async () => {
      for (const message of messages) await socket.write(message);
      await socket.closeWrite();
    })();
    sending.catch(() => {}); // awaited below, once the server has read: a failure is thrown there
    const server = await accepted;
    const buffer = new ReceiveBuffer(server.socket);
    await within(buffer.waitFor(total), IDLE_WAIT_MS);
    const sizes: number[] = [];
    while (true) {
      const data = await buffer.recv(1024);
      this.#tracer.trace({ step: "recv", conn: server.conn, bytes: data.length, preview: previewOf(data) });
      if (data.length === 0) break;
      sizes.push(data.length);
    }
    server.socket.close();
    await server.socket.closed;
    await sending;
    while (await socket.read() !== null);
    socket.close();
    await socket.closed;
    return sizes;
  }

  #accept(): Promise<Accepted> {
    const waiting = this.#waiting.shift();
    if (waiting) return Promise.resolve(waiting);
    return new Promise((resolve) => this.#accepted.push(resolve));
  }

  async close(): Promise<void> {
    await this.#listener?.close();
  }
}

interface Accepted {
  socket: StreamSocket;
  conn: number;
}

/** A scenario's two traced transports, and a server logger that ties its events to the trace. */
function traced(transport: Transport, tracers: Record<Side, Tracer>) {
  const { server: serverTracer, client: clientTracer } = tracers;
  const connections = new Map<string, number>();
  let open = 0;
  let idle: (() => void) | undefined;
  const server = traceTransport(transport, serverTracer, {
    onConnection: (conn, remote) => {
      if (remote !== undefined) {
        connections.set(remote, conn);
        open++;
      } else if (--open === 0) {
        idle?.();
      }
    },
  });
  return {
    server,
    /**
     * Resolves once every connection the server accepted is closed, so that its steps are told
     * before what comes next; after {@linkcode IDLE_WAIT_MS} at most, so a stuck peer never hangs the demo.
     */
    serverIdle: async (): Promise<void> => {
      if (open > 0) await within(new Promise<void>((resolve) => idle = resolve), IDLE_WAIT_MS);
    },
    client: traceTransport(transport, clientTracer),
    /** Shows the server's `shown` events as the tutorial's server prints them; a timeout is traced too. */
    logger(narrator: Narrator, shown: readonly LogEvent["event"][]): Logger {
      const printer = createLogger({
        writeOut: (line) => narrator.prints("server" satisfies Side, line),
        writeErr: (line) => narrator.prints("server", line),
      });
      return {
        log(event) {
          if (event.event === "timeout") {
            const conn = connections.get(event.remote);
            if (conn !== undefined) serverTracer.trace({ step: "timeout", conn, afterMs: event.durationMs });
          }
          if (shown.includes(event.event) || event.event === "error") printer.log(event);
        },
      };
    },
  };
}

function portOf(server: EchogateServer): number {
  return server.addr.transport === "tcp" ? server.addr.port : 0;
}
