/**
 * The echo protocol: answer what the peer sends until it closes.
 *
 * - `chunk` (the seed's behaviour): every read is answered with prefix + chunk in one write.
 * - `line`: every `\n`-terminated line is answered with prefix + line (its `\n` included);
 *   an unterminated tail is answered when the peer finishes sending.
 * - `raw`: bytes come back unchanged.
 *
 * @module
 */

import { concatAll, ReplySlabs, utf8 } from "../_bytes.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "./defaults.ts";
import { answerAll } from "../answer.ts";
import type { ChunkAnswering, ConnectionContext, ConnectionHandler, EchogateServer, ServerOptions } from "../server.ts";
import { serve } from "../server.ts";
import type { StreamSocket } from "../types.ts";
import { serveDatagramEcho } from "./datagram.ts";
import type { DatagramLimits } from "./sources.ts";

/** The echo modes. */
export type EchoMode = "chunk" | "line" | "raw";

/** The list of echo modes, for validation. */
export const ECHO_MODES: readonly EchoMode[] = ["chunk", "line", "raw"];

export { DEFAULT_ECHO_PORT, DEFAULT_PREFIX };

/** Default bound on one line in `line` mode: 64 KiB. */
export const DEFAULT_MAX_LINE = 64 * 1024;

/**
 * How an echo server answers.
 *
 * @example
 * ```ts
 * import type { EchoOptions } from "../mod.ts";
 *
 * const options: EchoOptions = { mode: "line", prefix: "> ", maxLine: 1024 };
 * ```
 */
export interface EchoOptions {
  /** How input is framed. @default {"chunk"} */
  mode?: EchoMode;
  /** Put before every answer in `chunk` and `line` mode; ignored in `raw` mode. @default {"Echo=>"} */
  prefix?: string | Uint8Array;
  /** In `line` mode, a line longer than this many bytes closes the connection. @default {65536} */
  maxLine?: number;
  /** Close a connection after this many ms without a read or write. @default {Infinity} */
  idleTimeoutMs?: number;
  /**
   * Makes the (uninitialized) buffers replies are cut from. {@linkcode serveEcho} uses the
   * transport's `allocate`. @default {new Uint8Array(size)}
   */
  allocate?: (size: number) => Uint8Array;
}

/**
 * Options for {@linkcode serveEcho}: where to listen plus how to answer.
 *
 * @example
 * ```ts
 * import type { ServeEchoOptions } from "../mod.ts";
 *
 * const options: Omit<ServeEchoOptions, "transport"> = { port: 0, mode: "raw" };
 * ```
 */
export interface ServeEchoOptions extends ServerOptions, EchoOptions {
  /**
   * Serve UDP (RFC 862 over datagrams) instead of TCP: every datagram is answered with prefix +
   * datagram (see {@linkcode serveDatagramEcho}). `path`, `maxConns`, `lingerMs`, `admit`,
   * `idleTimeoutMs`, `maxLine` do not apply; `mode` may be `chunk` or `raw`. @default {false}
   */
  udp?: boolean;
  /** With `udp`: datagrams longer than this are dropped and counted. @default {1472} */
  maxDatagram?: number;
  /** With `udp`: the per-source rate and global budget, or `false` for none. @default {{}} */
  limits?: DatagramLimits | false;
}

/**
 * Starts an echo server.
 *
 * @param options The transport, the address (default `127.0.0.1:50007`) and the echo mode.
 * @returns The running server; `close()` it when done.
 *
 * @example Serve on a free port
 * ```ts ignore
 * import { serveEcho } from "../mod.ts";
 * import { transport } from "../../adapters/deno.ts";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export function serveEcho(options: ServeEchoOptions): Promise<EchogateServer> {
  if (options.udp) {
    if (options.path !== undefined) throw new TypeError("A UDP echo server listens on a host and port, not a path");
    if (options.mode === "line") throw new TypeError(`Echo mode "line" is for streams; UDP answers each datagram`);
    return serveDatagramEcho({
      ...options,
      prefix: options.mode === "raw" ? "" : options.prefix,
    });
  }
  const handler = createEchoHandler({ ...options, allocate: options.allocate ?? options.transport.allocate });
  return serve({ ...options, port: options.port ?? DEFAULT_ECHO_PORT }, handler, "echo");
}

/**
 * Builds the per-connection echo handler for {@linkcode serve}.
 *
 * @param options The echo mode and its settings.
 * @returns A connection handler.
 *
 * @example
 * ```ts ignore
 * import { serve } from "../mod.ts";
 * import { createEchoHandler } from "./stream.ts";
 * import { transport } from "../../adapters/bun.ts";
 *
 * const server = await serve({ transport, port: 0 }, createEchoHandler({ mode: "raw" }), "echo");
 * ```
 */
export function createEchoHandler(options: EchoOptions = {}): ConnectionHandler & Partial<ChunkAnswering> {
  const mode = options.mode ?? "chunk";
  if (!ECHO_MODES.includes(mode)) throw new TypeError(`Unknown echo mode "${mode}"`);
  const prefix = typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX);
  const maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
  const idleTimeoutMs = options.idleTimeoutMs ?? Infinity;

  if (mode === "line") {
    return withIdleTimeout((socket, context) => echoLines(socket, context, prefix, maxLine), idleTimeoutMs);
  }
  const replyPrefix = mode === "raw" || prefix.length === 0 ? undefined : prefix;
  const answerChunk = chunkAnswerer(replyPrefix, new ReplySlabs(options.allocate));
  const echoChunks: ConnectionHandler = (socket, context) => {
    // Every chunk is answered before the next is read, so nothing is ever left unanswered here:
    // a graceful shutdown may send FIN at any time (queued answers go first).
    context.idle = true;
    return answerAll(socket, (chunk) => answerChunk(chunk, context));
  };
  // Without an idle timeout, the server may run it chunk by chunk (see ChunkAnswering).
  if (!Number.isFinite(idleTimeoutMs)) return Object.assign(echoChunks, { answerChunk, replyPrefix });
  return withIdleTimeout(echoChunks, idleTimeoutMs);
}

/** Echo's answer to one chunk in `chunk` and `raw` modes: prefix + chunk, or the chunk itself. */
function chunkAnswerer(prefix: Uint8Array | undefined, slabs: ReplySlabs): ChunkAnswering["answerChunk"] {
  return (chunk, context, framed) => {
    if (context.stopping) return null;
    // `framed` is the prefix and the chunk already side by side in the socket's read buffer.
    const reply = prefix ? framed ?? slabs.join(prefix, chunk) : chunk;
    context.bytesIn += chunk.length;
    context.bytesOut += reply.length;
    context.lastActivity = Date.now();
    return reply;
  };
}

function withIdleTimeout(handler: ConnectionHandler, idleTimeoutMs: number): ConnectionHandler {
  if (!Number.isFinite(idleTimeoutMs)) return handler;
  return async (socket, context) => {
    const stopWatchdog = watchIdle(socket, context, idleTimeoutMs);
    try {
      await handler(socket, context);
    } finally {
      stopWatchdog();
    }
  };
}

async function echoLines(
  socket: StreamSocket,
  context: ConnectionContext,
  prefix: Uint8Array,
  maxLine: number,
): Promise<void> {
  const splitter = new LineSplitter(maxLine);
  while (!context.stopping) {
    context.idle = true;
    const chunk = await socket.read();
    context.idle = false;
    context.lastActivity = Date.now();
    if (context.stopping) return;
    if (chunk === null) {
      const tail = splitter.flush();
      if (tail) await writeLines(socket, context, prefix, [tail]);
      return;
    }
    context.bytesIn += chunk.length;
    const lines = splitter.push(chunk);
    if (lines === undefined) {
      context.logger.log({ event: "line-too-long", remote: context.remote, maxLine });
      socket.close();
      return;
    }
    if (lines.length > 0) await writeLines(socket, context, prefix, lines);
  }
}

async function writeLines(
  socket: StreamSocket,
  context: ConnectionContext,
  prefix: Uint8Array,
  lines: Uint8Array[],
): Promise<void> {
  const parts: Uint8Array[] = [];
  for (const line of lines) parts.push(prefix, line);
  const reply = concatAll(parts);
  await socket.write(reply);
  context.bytesOut += reply.length;
  context.lastActivity = Date.now();
}

/** Closes the socket once it has seen no traffic for `idleMs`; returns a function that stops watching. */
function watchIdle(socket: StreamSocket, context: ConnectionContext, idleMs: number): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const check = () => {
    const idle = Date.now() - context.lastActivity;
    if (idle < idleMs) {
      timer = setTimeout(check, idleMs - idle);
      return;
    }
    context.logger.log({ event: "idle-timeout", remote: context.remote, idleMs });
    socket.close();
  };
  timer = setTimeout(check, idleMs);
  return () => clearTimeout(timer);
}

/**
 * Splits a byte stream into `\n`-terminated lines, whatever the chunk boundaries, holding at
 * most `maxLine` bytes of an unfinished line.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./stream.ts";
 *
 * const splitter = new LineSplitter(1024);
 * const enc = new TextEncoder();
 * console.log(splitter.push(enc.encode("a\nb"))?.length); // 1 ("a\n")
 * console.log(splitter.push(enc.encode("c\n"))?.length); // 1 ("bc\n")
 * ```
 */
export class LineSplitter {
  #maxLine: number;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  /**
   * Creates a splitter.
   *
   * @param maxLine The longest line (terminator included) this splitter accepts, in bytes.
   */
  constructor(maxLine: number = DEFAULT_MAX_LINE) {
    this.#maxLine = maxLine;
  }

  /**
   * Feeds a chunk. Returns the lines it completes, each with its `\n`, or `undefined` when an
   * unfinished line grew past `maxLine` (the splitter should then be dropped).
   */
  push(chunk: Uint8Array): Uint8Array[] | undefined {
    const lines: Uint8Array[] = [];
    let start = 0;
    let newline = chunk.indexOf(0x0a);
    while (newline !== -1) {
      const piece = chunk.subarray(start, newline + 1);
      if (this.#pendingBytes + piece.length > this.#maxLine) return undefined;
      if (this.#pending.length > 0) {
        this.#pending.push(piece);
        lines.push(concatAll(this.#pending, this.#pendingBytes + piece.length));
        this.#pending = [];
        this.#pendingBytes = 0;
      } else {
        lines.push(piece);
      }
      start = newline + 1;
      newline = chunk.indexOf(0x0a, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (this.#pendingBytes + rest.length > this.#maxLine) return undefined;
      this.#pending.push(rest);
      this.#pendingBytes += rest.length;
    }
    return lines;
  }

  /** Returns the unterminated tail (if any) and empties the splitter. */
  flush(): Uint8Array | undefined {
    if (this.#pendingBytes === 0) return undefined;
    const tail = concatAll(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    return tail;
  }
}
