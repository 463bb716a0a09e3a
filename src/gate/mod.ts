/**
 * The gate protocol (the seed's first server): each connection has `timeoutMs` to send one
 * token chunk of up to 1024 bytes. The right token gets `welcome to server!`, anything else
 * `please go out!`; no data in time logs `time out` and closes without a reply.
 *
 * @module
 */

import { utf8 } from "../_bytes.ts";
import { LogThrottle } from "../_log_throttle.ts";
import { matchesAnySlot } from "./_constant_time.ts";
import { TIMED_OUT, within } from "../_timers.ts";
import { formatAddress } from "../address.ts";
import { silentLogger } from "../log.ts";
import { PenaltyBox, type PenaltyKind, type PenaltyOptions } from "./penalties.ts";
import { Knock, type KnockOutcome, type KnockSteps } from "./_knock.ts";
import { PendingPerSource } from "./_pending_sources.ts";
import type {
  ConnectionContext,
  ConnectionHandler,
  ConnectionResponding,
  EchogateServer,
  ServerOptions,
} from "../server.ts";
import { serve } from "../server.ts";
import type { ChunkResponder, StreamSocket } from "../types.ts";
import { ProxiedSocket } from "../proxy_protocol/mod.ts";

/**
 * The seed's gate port.
 *
 * @example
 * ```ts
 * import { DEFAULT_GATE_PORT } from "../mod.ts";
 *
 * console.log(DEFAULT_GATE_PORT); // 8001
 * ```
 */
export const DEFAULT_GATE_PORT = 8001;
/** The seed's token. */
export const DEFAULT_TOKEN = "1";
/** The seed's timeout: 5 s. */
export const DEFAULT_GATE_TIMEOUT_MS = 5000;
/** The reply to the right token. */
export const WELCOME = "welcome to server!";
/** The reply to anything else. */
export const REFUSAL = "please go out!";
/** The seed reads the token with one `recv(1024)`. */
export const MAX_TOKEN_BYTES = 1024;
/**
 * How many connections one source may have waiting for their token by default: enough for a
 * busy NAT or a load test from one host (the bench knocks 32 at a time), far from the descriptors
 * a process has (1,024 by default).
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_PENDING_PER_SOURCE } from "./mod.ts";
 *
 * console.log(DEFAULT_MAX_PENDING_PER_SOURCE); // 64
 * ```
 */
export const DEFAULT_MAX_PENDING_PER_SOURCE = 64;

/**
 * Options for {@linkcode serveGate}.
 *
 * @example
 * ```ts
 * import type { ServeGateOptions } from "../mod.ts";
 *
 * const options: Omit<ServeGateOptions, "transport"> = { port: 0, tokens: ["s3cret"], timeoutMs: 2000 };
 * ```
 */
export interface ServeGateOptions extends ServerOptions {
  /**
   * Accepted tokens; any one of them opens the gate. Each is at most 1024 bytes in UTF-8 (the gate
   * reads one 1024-byte chunk), else `serveGate` rejects with a `RangeError`. @default {["1"]}
   */
  tokens?: readonly string[];
  /** How long a connection may take to send its token, in ms. @default {5000} */
  timeoutMs?: number;
  /**
   * Per-source penalties (OpenSSH's `PerSourcePenalties`): a wrong token, a timeout or leaving
   * without a byte add seconds to the source, which is refused at accept once it has accrued
   * more than 15 s. `false` turns them off. With `proxyProtocol`, the source is the client the
   * header names; the proxies' own connections (such as health checks) accrue nothing. @default {{}}
   */
  penalties?: PenaltyOptions | false;
  /** At most this many connections may wait for their token; more are refused at once. @default {Infinity} */
  maxPending?: number;
  /**
   * At most this many connections from one source (IPv4 address, IPv6 /64) may wait for their
   * token; more from it are refused at once (OpenSSH's `PerSourceMaxStartups`), while other
   * sources are served. Every source counts, penalty-exempt ones too. With `proxyProtocol`, the
   * source is the client the header names; the proxies' own connections are not counted. A whole
   * number from 1, or `Infinity` for no limit. @default {64}
   */
  maxPendingPerSource?: number;
  /**
   * What a welcomed connection does next, instead of closing: e.g. `createEchoHandler()` to
   * continue as an echo session, or `createForwardHandler({ transport, upstream })` to forward it.
   * (Not named `then`: an options object with a `then` method would be taken for a promise.)
   */
  handoff?: ConnectionHandler;
}

/**
 * Starts a gate server.
 *
 * @param options The transport, the address (default `127.0.0.1:8001`), tokens, timeout,
 *   penalties and what welcomed connections do next.
 * @returns The running server.
 *
 * @example
 * ```ts ignore
 * import { serveGate } from "../mod.ts";
 * import { transport } from "../../adapters/deno.ts";
 *
 * const server = await serveGate({ transport, port: 0, tokens: ["s3cret"] });
 * await server.close();
 * ```
 */
export async function serveGate(options: ServeGateOptions): Promise<EchogateServer> {
  const matches = createTokenMatcher(options.tokens ?? [DEFAULT_TOKEN]);
  const timeoutMs = options.timeoutMs ?? DEFAULT_GATE_TIMEOUT_MS;
  const maxPending = options.maxPending ?? Infinity;
  const maxPendingPerSource = options.maxPendingPerSource ?? DEFAULT_MAX_PENDING_PER_SOURCE;
  if (!(maxPendingPerSource >= 1) || (maxPendingPerSource !== Infinity && !Number.isInteger(maxPendingPerSource))) {
    throw new RangeError(`maxPendingPerSource must be a whole number from 1, or Infinity; got ${maxPendingPerSource}`);
  }
  const pendingPerSource = maxPendingPerSource === Infinity ? undefined : new PendingPerSource(maxPendingPerSource);
  const logger = options.logger ?? silentLogger;
  const logsKnock = logger.wants?.("knock") ?? true;
  // In the runtime's preferred kind (Node: a Buffer, which it writes without wrapping it in one).
  const welcome = preferred(utf8(WELCOME), options.transport);
  const refusal = preferred(utf8(REFUSAL), options.transport);
  // A full table overflows on every new source: one line per interval, counting the rest.
  const overflows = new LogThrottle<"ipv4" | "ipv6">((family, more) =>
    logger.log({ event: "penalty-overflow", family, ...(more ? { more } : {}) })
  );
  const box = options.penalties === false ? undefined : new PenaltyBox({
    ...options.penalties,
    onOverflow: (family) => {
      overflows.add(family);
      options.penalties && options.penalties.onOverflow?.(family);
    },
  });
  let pending = 0;
  const knockCounts = { welcome: 0, refused: 0, timeout: 0 };

  function penalize(socket: StreamSocket, context: ConnectionContext, kind: PenaltyKind): void {
    if (!box || socket.remoteAddr.transport !== "tcp") return;
    // Behind a PROXY protocol listener the source is the client the header names. A proxy's own
    // connections (v2 LOCAL and v1 UNKNOWN health checks, or v1 checks naming the proxy itself)
    // are never penalised: that would lock out the whole balancer.
    if (socket instanceof ProxiedSocket && socket.fromProxyItself) return;
    const accrued = box.penalize(socket.remoteAddr.hostname, kind);
    if (accrued > 0) context.logger.log({ event: "penalty", remote: context.remote, kind, accruedSeconds: accrued });
  }

  // Where a knock's outcome is decided, on either path: its log lines and its penalty.
  function settle(socket: StreamSocket, context: ConnectionContext, outcome: KnockOutcome, started: number): void {
    if (outcome !== "no-token") knockCounts[outcome]++;
    switch (outcome) {
      case "timeout":
        context.logger.log({ event: "timeout", remote: context.remote, durationMs: Date.now() - started });
        return penalize(socket, context, "grace-exceeded");
      case "no-token":
        return penalize(socket, context, "noauth");
      case "welcome":
      case "refused":
        if (logsKnock) {
          const welcomed = outcome === "welcome";
          context.logger.log({ event: "knock", remote: context.remote, welcomed, durationMs: Date.now() - started });
        }
        if (outcome === "refused") penalize(socket, context, "authfail");
    }
  }

  /** The reply to a token chunk, logging one too long. */
  function judge(chunk: Uint8Array, context: ConnectionContext): boolean {
    const welcomed = matches(tokenFromChunk(chunk));
    // More than the seed's recv(1024) would take (and a newline): worth a line of its own.
    if (!welcomed && chunk.length > MAX_TOKEN_BYTES + 2) {
      context.logger.log({ event: "token-too-long", remote: context.remote, maxToken: MAX_TOKEN_BYTES });
    }
    return welcomed;
  }

  /** Counts a connection as waiting for its token; returns what `release` needs. */
  function startWaiting(socket: StreamSocket): string | undefined {
    pending++;
    const source = pendingPerSource && countedSource(socket);
    return source === undefined ? undefined : pendingPerSource!.add(source);
  }

  function stopWaiting(counted: string | undefined): void {
    pending--;
    pendingPerSource?.release(counted);
  }

  const knocks: KnockSteps = { timeoutMs, welcome, refusal, settle, judge, startWaiting, stopWaiting };

  // The promise path: behind a PROXY header, with a handoff, or where the socket has no answerEach.
  const gateHandler: ConnectionHandler & ConnectionResponding = Object.assign(
    async (socket: StreamSocket, context: ConnectionContext) => {
      const started = Date.now();
      // Behind a proxy the token usually came in the header's chunk: no read, no timer to wait.
      let first: Uint8Array | null | typeof TIMED_OUT | undefined = socket instanceof ProxiedSocket
        ? socket.takeBuffered()
        : undefined;
      if (first === undefined) {
        const counted = startWaiting(socket);
        context.idle = true;
        const read = socket.read();
        try {
          first = await within(read, timeoutMs);
        } finally {
          stopWaiting(counted);
          context.idle = false;
        }
        if (first === TIMED_OUT) context.pendingRead = read;
      }
      if (first === TIMED_OUT) return settle(socket, context, "timeout", started);
      if (first === null) return settle(socket, context, "no-token", started);
      context.bytesIn += first.length;
      const welcomed = judge(first, context);
      const reply = welcomed ? welcome : refusal;
      await socket.write(reply);
      context.bytesOut += reply.length;
      settle(socket, context, welcomed ? "welcome" : "refused", started);
      if (welcomed && options.handoff) await options.handoff(socket, context);
    },
    {
      // The common case, promise-free: a plain (or TLS) connection that closes after its knock.
      respond(
        socket: StreamSocket,
        context: ConnectionContext,
        closed: (context: ConnectionContext) => void,
        lingerMs: number,
      ): ChunkResponder | undefined {
        if (options.handoff || socket instanceof ProxiedSocket) return undefined;
        return new Knock(socket, context, knocks, closed, lingerMs);
      },
    },
  );

  const server = await serve(
    {
      ...options,
      port: options.port ?? DEFAULT_GATE_PORT,
      // A failed TLS handshake is a knock without a token; one left hanging, a knock out of time.
      onHandshakeError(failure) {
        options.onHandshakeError?.(failure);
        if (!box || failure.remoteAddr.transport !== "tcp" || failure.remoteAddr.hostname === "") return;
        const kind: PenaltyKind = failure.reason === "timeout" ? "grace-exceeded" : "noauth";
        const accrued = box.penalize(failure.remoteAddr.hostname, kind);
        if (accrued > 0) {
          logger.log({ event: "penalty", remote: formatAddress(failure.remoteAddr), kind, accruedSeconds: accrued });
        }
      },
      admit(socket) {
        if (box && socket.remoteAddr.transport === "tcp" && box.isBlocked(socket.remoteAddr.hostname)) {
          return "penalised";
        }
        if (pending >= maxPending) return `${maxPending} connections waiting for a token`;
        const source = pendingPerSource && countedSource(socket);
        if (source !== undefined && pendingPerSource!.isFull(source)) {
          return `${maxPendingPerSource} connections from this source waiting for a token`;
        }
        return undefined;
      },
    },
    gateHandler,
    "gate",
  );
  const counters = server.counters;
  server.counters = () => ({ ...counters(), knocks: { ...knockCounts }, penalizedSources: box?.countPenalized() ?? 0 });
  const close = server.close;
  server.close = (closeOptions) => {
    overflows.close();
    return close(closeOptions);
  };
  return server;
}

/**
 * The address a connection counts against in the per-source limit: its peer's, or behind a PROXY
 * listener the client the header names; none for a unix socket peer or a proxy's own connection
 * (a health check), which must not count against the balancer's address.
 */
function countedSource(socket: StreamSocket): string | undefined {
  const remote = socket.remoteAddr;
  if (remote.transport !== "tcp" || (socket instanceof ProxiedSocket && socket.fromProxyItself)) return undefined;
  return remote.hostname;
}

/** `bytes` copied into memory the transport allocates, when it has a preference. */
function preferred(bytes: Uint8Array, transport: ServeGateOptions["transport"]): Uint8Array {
  if (!transport.allocate) return bytes;
  const copy = transport.allocate(bytes.length);
  copy.set(bytes);
  return copy;
}

/**
 * The token a chunk carries: its first 1024 bytes, less one trailing `\r\n` or `\n`
 * (so that `nc` users can type it).
 *
 * @param chunk The first chunk read from the peer.
 * @returns The token bytes (a view into `chunk`).
 *
 * @example
 * ```ts
 * import { tokenFromChunk } from "./mod.ts";
 *
 * const token = tokenFromChunk(new TextEncoder().encode("1\r\n"));
 * console.log(new TextDecoder().decode(token)); // "1"
 * ```
 */
export function tokenFromChunk(chunk: Uint8Array): Uint8Array {
  let end = Math.min(chunk.length, MAX_TOKEN_BYTES);
  if (end > 0 && chunk[end - 1] === 0x0a) {
    end--;
    if (end > 0 && chunk[end - 1] === 0x0d) end--;
  }
  return chunk.subarray(0, end);
}

/**
 * Builds a token check whose timing leaks neither the tokens' content nor their lengths, with no
 * hash and no cryptographic code: every accepted token lives zero-padded in its own 1024-byte
 * slot ({@linkcode MAX_TOKEN_BYTES}, the most the gate reads), the candidate is copied into a
 * zeroed slot of the same size, and each check XORs the candidate's slot against every token's
 * slot in full, 32 bits at a time, and its length against every token's length, OR-ing all the
 * differences together. There is no early exit and no branch or memory access that depends on
 * a token's bytes: the work is the same for every candidate, wherever it first differs. It is
 * synchronous, allocates nothing per check, and costs about 256 word operations per token.
 *
 * @param tokens The accepted tokens, each at most 1024 bytes in UTF-8 (a longer one could never
 *   be sent in the gate's one 1024-byte chunk, so it is refused here).
 * @returns A predicate over candidate token bytes; a candidate longer than 1024 bytes never matches.
 * @throws {TypeError} If `tokens` is empty.
 * @throws {RangeError} If a token is longer than 1024 bytes.
 *
 * @example
 * ```ts
 * import { createTokenMatcher } from "./mod.ts";
 *
 * const matches = createTokenMatcher(["s3cret"]);
 * console.log(matches(new TextEncoder().encode("s3cret"))); // true
 * console.log(matches(new TextEncoder().encode("guess"))); // false
 * ```
 */
export function createTokenMatcher(tokens: readonly string[]): (candidate: Uint8Array) => boolean {
  if (tokens.length === 0) throw new TypeError("At least one token is required");
  const encoded = tokens.map((token) => utf8(token));
  const slotWords = MAX_TOKEN_BYTES / 4;
  // Every token in one buffer, zero-padded to its slot; the lengths beside it.
  const slots = new Int32Array(encoded.length * slotWords);
  const lengths = new Int32Array(encoded.length);
  encoded.forEach((token, index) => {
    if (token.length > MAX_TOKEN_BYTES) {
      throw new RangeError(
        `A token is ${token.length} bytes; the gate reads one chunk of at most ${MAX_TOKEN_BYTES} bytes, so it could never match`,
      );
    }
    new Uint8Array(slots.buffer, index * MAX_TOKEN_BYTES, MAX_TOKEN_BYTES).set(token);
    lengths[index] = token.length;
  });
  const candidateWords = new Int32Array(slotWords);
  const candidateBytes = new Uint8Array(candidateWords.buffer);
  return (candidate) => {
    // Only the candidate's own length shows in the copy's time; the peer knows it already.
    const length = Math.min(candidate.length, MAX_TOKEN_BYTES + 1);
    candidateBytes.fill(0);
    candidateBytes.set(candidate.subarray(0, MAX_TOKEN_BYTES));
    // A candidate over 1024 bytes differs from every length (each is at most 1024).
    const matched = matchesAnySlot(slots, lengths, slotWords, candidateWords, length);
    candidateBytes.fill(0); // no copy of the last guess (or token) left behind
    return matched;
  };
}
