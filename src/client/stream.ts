/**
 * The clients: `sendEcho` (the seed's echo client) and `knockGate` (the seed's first client).
 *
 * @module
 */

import { concatAll, utf8 } from "../_bytes.ts";
import { sleep, TIMED_OUT, within } from "../_timers.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "../echo/stream.ts";
import { DEFAULT_GATE_PORT, DEFAULT_TOKEN, WELCOME } from "../gate/mod.ts";
import type { ProxyHeaderInit } from "../proxy_protocol/mod.ts";
import { connectOptionsFor, proxyHeaderFor, unbracketed } from "./_connect.ts";
import type { TlsClientOptions } from "../tls.ts";
import type { Endpoint, StreamSocket, Transport } from "../types.ts";
import { formatEndpoint } from "../address.ts";
import { looksLikeTlsRecord, ServerSpeaksTlsError } from "./connect_errors.ts";
import { DEFAULT_UDP_TIMEOUT_MS, sendDatagrams } from "./datagram.ts";

export { proxyHeaderFor };

/**
 * Where a client connects. Give `path` for a unix socket, else `hostname`/`port`.
 *
 * @example
 * ```ts
 * import type { ClientOptions } from "../mod.ts";
 *
 * const options: Omit<ClientOptions, "transport"> = { hostname: "localhost", port: 50007 };
 * ```
 */
export interface ClientOptions {
  /** The runtime's socket API (each adapter exports one as `transport`). */
  transport: Transport;
  /** Host to connect to. @default {"localhost"} */
  hostname?: string;
  /** Port to connect to. The protocol sets the default. */
  port?: number;
  /** Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** How long to wait for each reply, in ms. @default {5000} */
  timeoutMs?: number;
  /** Speak TLS: verify the server (system roots plus `ca`) and optionally present a client certificate. */
  tls?: TlsClientOptions;
  /**
   * Send a PROXY protocol header first, as a load balancer would (to try a `proxyProtocol`
   * server without one). `source` and `destination` default to this connection's own endpoints.
   * With `tls`, it goes in clear text before the handshake.
   */
  proxyHeader?: ProxyHeaderInit;
}

/** Options for {@linkcode sendEcho}. */
export interface SendEchoOptions extends ClientOptions {
  /**
   * Messages to send, one at a time: a list, or an async iterable (lines as a user types them;
   * each is sent once the previous reply came). UDP takes a list only. @default {["Hello network world"]}
   */
  messages?: readonly (string | Uint8Array)[] | AsyncIterable<string | Uint8Array>;
  /**
   * The prefix the server puts before each answer; used to tell when a reply split across
   * several answers is complete. Use `""` for a raw echo server. @default {"Echo=>"}
   */
  prefix?: string | Uint8Array;
  /** Called with each reply as it arrives. */
  onReply?: (reply: Uint8Array, message: Uint8Array) => void;
  /**
   * Send each message as one UDP datagram (see {@linkcode sendDatagrams}); `timeoutMs` is then
   * the wait per try (default 1000) and `prefix` is not needed. @default {false}
   */
  udp?: boolean;
  /** With `udp`: how many times a message is sent again when no reply came. @default {3} */
  retries?: number;
}

/** The seed client's message. */
export const DEFAULT_MESSAGE = "Hello network world";

/** A reply can be at most this much longer than its message (its prefixes); past that we stop reading. */
const MAX_REPLY_OVERHEAD = 64 * 1024;

/**
 * Sends each message and reads its reply, the way the seed's echo client does.
 *
 * A reply is complete once every byte of the message came back behind `prefix` (in one frame
 * or several, see {@linkcode echoReplyState}), once it takes another shape (taken as it is,
 * like the seed's single `recv`), or when the server closes.
 *
 * @param options Where to connect and what to send.
 * @returns The replies, one per message.
 *
 * @example
 * ```ts ignore
 * import { sendEcho } from "../mod.ts";
 * import { transport } from "../../adapters/deno.ts";
 *
 * const [reply] = await sendEcho({ transport, port: 50007, messages: ["hi"] });
 * console.log(new TextDecoder().decode(reply)); // "Echo=>hi"
 * ```
 */
export async function sendEcho(options: SendEchoOptions): Promise<Uint8Array[]> {
  const given = options.messages ?? [DEFAULT_MESSAGE];
  const bytesOf = (message: string | Uint8Array) => typeof message === "string" ? utf8(message) : message;
  if (options.udp) {
    if (options.path !== undefined) throw new TypeError("A UDP echo server has a host and port, not a path");
    if (Symbol.asyncIterator in given) throw new TypeError("A UDP echo client takes a list of messages");
    const messages = given.map(bytesOf);
    return await sendDatagrams({
      ...options,
      port: options.port ?? DEFAULT_ECHO_PORT,
      messages,
      timeoutMs: options.timeoutMs ?? DEFAULT_UDP_TIMEOUT_MS,
    });
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const prefix = typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX);
  const endpoint = endpointOf(options, DEFAULT_ECHO_PORT);
  const socket = await connectClient(options, endpoint);
  const replies: Uint8Array[] = [];
  try {
    for await (const each of given) {
      const message = bytesOf(each);
      await writeOrExplain(socket, message);
      const reply = await readReply(socket, message, prefix, timeoutMs);
      // A TLS server's answer to plain text (an alert), unless the message itself was one.
      if (!options.tls && looksLikeTlsRecord(reply) && !looksLikeTlsRecord(message)) {
        throw new ServerSpeaksTlsError(formatEndpoint(endpoint));
      }
      replies.push(reply);
      options.onReply?.(reply, message);
    }
    await socket.closeWrite();
  } catch (error) {
    throw explained(options, endpoint, error);
  } finally {
    socket.close();
  }
  return replies;
}

async function readReply(
  socket: StreamSocket,
  message: Uint8Array,
  prefix: Uint8Array,
  timeoutMs: number,
): Promise<Uint8Array> {
  let reply: Uint8Array = new Uint8Array(0);
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const chunk = await within(socket.read(), deadline - Date.now());
    if (chunk === TIMED_OUT) throw new Error(`No complete reply within ${timeoutMs / 1000} s`);
    if (chunk === null) {
      if (reply.length === 0) throw new Error("Server closed the connection without replying");
      return reply;
    }
    reply = reply.length === 0 ? chunk : concatAll([reply, chunk]);
    if (echoReplyState(reply, message, prefix) !== "partial") return reply;
    if (reply.length >= message.length + MAX_REPLY_OVERHEAD) return reply;
  }
}

/**
 * Decides whether `reply` is the whole echo of `message`. A chunk-mode server answers every
 * read it makes, so a large message may come back as several `prefix + piece` frames whose
 * pieces join up to the message. Returns `"partial"` while more bytes are expected,
 * `"complete"` once every byte of the message came back, and `"other"` when the reply does
 * not follow that shape (then the caller takes it as it is, like the seed's single recv).
 *
 * @param reply The bytes received so far.
 * @param message The message sent.
 * @param prefix The prefix each frame is expected to start with (may be empty).
 * @returns The state of the reply.
 *
 * @example
 * ```ts
 * import { echoReplyState } from "./stream.ts";
 *
 * const enc = new TextEncoder();
 * console.log(echoReplyState(enc.encode("Echo=>ab"), enc.encode("abc"), enc.encode("Echo=>"))); // "partial"
 * console.log(echoReplyState(enc.encode("Echo=>abEcho=>c"), enc.encode("abc"), enc.encode("Echo=>"))); // "complete"
 * ```
 */
export function echoReplyState(
  reply: Uint8Array,
  message: Uint8Array,
  prefix: Uint8Array,
): "partial" | "complete" | "other" {
  // A frame may end wherever the next bytes could start a prefix, so when the message itself
  // contains the prefix's first byte there is more than one way to read the reply: try each
  // (memoised by position) and keep the best outcome.
  const RANK = { other: 0, partial: 1, complete: 2 } as const;
  const memo = new Map<number, "partial" | "complete" | "other">();
  const best = (a: "partial" | "complete" | "other", b: "partial" | "complete" | "other") => RANK[a] >= RANK[b] ? a : b;

  function frameFrom(start: number, matched: number): "partial" | "complete" | "other" {
    const key = start * (message.length + 1) + matched;
    const known = memo.get(key);
    if (known) return known;
    let at = start;
    let outcome: "partial" | "complete" | "other" = "other";
    for (let k = 0; k < prefix.length; k++, at++) {
      if (at === reply.length) return remember(key, "partial");
      if (reply[at] !== prefix[k]) return remember(key, "other");
    }
    if (at === reply.length) return remember(key, "partial");
    while (matched < message.length && at < reply.length && reply[at] === message[matched]) {
      at++;
      matched++;
      if (at === reply.length) return remember(key, best(outcome, matched === message.length ? "complete" : "partial"));
      // The frame could also end here, with a new prefix starting.
      if (prefix.length > 0 && matched < message.length && reply[at] === prefix[0]) {
        outcome = best(outcome, frameFrom(at, matched));
        if (outcome === "complete") return remember(key, outcome);
      }
    }
    if (at === start + prefix.length) return remember(key, outcome); // an empty frame: not an echo of ours
    if (matched === message.length) return remember(key, outcome); // bytes left over after the whole message
    if (prefix.length === 0) return remember(key, outcome);
    return remember(key, best(outcome, frameFrom(at, matched)));
  }
  function remember(key: number, outcome: "partial" | "complete" | "other") {
    memo.set(key, outcome);
    return outcome;
  }
  return frameFrom(0, 0);
}

/** Options for {@linkcode knockGate}. */
export interface KnockGateOptions extends ClientOptions {
  /** The token to send. @default {"1"} */
  token?: string | Uint8Array;
  /** How long to wait after connecting before sending, in ms (the seed waits 2 s). @default {2000} */
  delayMs?: number;
}

/**
 * The outcome of a knock.
 *
 * @example
 * ```ts
 * import type { KnockResult } from "../mod.ts";
 *
 * const result: KnockResult = { welcomed: true, reply: "welcome to server!" };
 * ```
 */
export interface KnockResult {
  /** True only when the server answered `welcome to server!`. */
  welcomed: boolean;
  /** The server's reply, decoded as UTF-8 (empty when it closed without one). */
  reply: string;
}

/**
 * Knocks on a gate: connects, waits `delayMs`, sends the token and reads the reply.
 *
 * @param options Where to knock and with what.
 * @returns Whether the gate welcomed us, and what it said.
 *
 * @example
 * ```ts ignore
 * import { knockGate } from "../mod.ts";
 * import { transport } from "../../adapters/node.ts";
 *
 * const { welcomed } = await knockGate({ transport, port: 8001, token: "1", delayMs: 0 });
 * ```
 */
export async function knockGate(options: KnockGateOptions): Promise<KnockResult> {
  const token = typeof options.token === "string" ? utf8(options.token) : options.token ?? utf8(DEFAULT_TOKEN);
  const timeoutMs = options.timeoutMs ?? 5000;
  const endpoint = endpointOf(options, DEFAULT_GATE_PORT);
  const socket = await connectClient(options, endpoint);
  try {
    await sleep(options.delayMs ?? 2000);
    await writeOrExplain(socket, token);
    const parts: Uint8Array[] = [];
    let total = 0;
    const deadline = Date.now() + timeoutMs;
    // The gate replies once and closes: read to end of input, keeping at most 1024 bytes.
    while (total < 1024) {
      const chunk = await within(socket.read(), deadline - Date.now());
      if (chunk === TIMED_OUT) throw new Error(`No reply within ${timeoutMs / 1000} s`);
      if (chunk === null) break;
      // A TLS server's answer to plain text (an alert): some keep the connection open after it.
      if (!options.tls && total === 0 && looksLikeTlsRecord(chunk)) {
        throw new ServerSpeaksTlsError(formatEndpoint(endpoint));
      }
      parts.push(chunk);
      total += chunk.length;
    }
    const reply = new TextDecoder().decode(concatAll(parts, total));
    return { welcomed: reply === WELCOME, reply };
  } catch (error) {
    throw explained(options, endpoint, error);
  } finally {
    socket.close();
  }
}

/** Connects, and sends the PROXY header first when asked to. */
async function connectClient(options: ClientOptions, endpoint: Endpoint): Promise<StreamSocket> {
  const connectOptions = connectOptionsFor(options.tls, options.proxyHeader);
  const socket = await options.transport.connect(endpoint, connectOptions);
  // Over TLS the header went out before the handshake (connectOptions.beforeTls).
  if (!options.proxyHeader || options.tls) return socket;
  try {
    await socket.write(proxyHeaderFor(socket, options.proxyHeader));
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}

function endpointOf(options: ClientOptions, defaultPort: number): Endpoint {
  if (options.path !== undefined) return { path: options.path };
  return { hostname: unbracketed(options.hostname ?? "localhost"), port: options.port ?? defaultPort };
}

/**
 * Writes `bytes`; when that fails, the reason the socket reports to a read instead, if any: a
 * write on a connection the server has just refused (a TLS alert) fails with a bare "closed".
 */
async function writeOrExplain(socket: StreamSocket, bytes: Uint8Array): Promise<void> {
  try {
    await socket.write(bytes);
  } catch (error) {
    const reason = await within(socket.read().then(() => error, (readError) => readError), 1000);
    throw reason === TIMED_OUT ? error : reason;
  }
}

/** `error` in the transport's connect-error words, where it has them. */
function explained(options: ClientOptions, endpoint: Endpoint, error: unknown): unknown {
  return options.transport.explainError?.(error, endpoint, options.tls) ?? error;
}
