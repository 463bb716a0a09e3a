/**
 * The UDP echo server (RFC 862): every datagram is answered with prefix + datagram, to its
 * sender, within the safety rules a public UDP echo needs (it is otherwise an amplifier for
 * spoofed traffic and one half of a loop).
 *
 * @module
 */

import { newServerCounters } from "../metrics/counters.ts";
import { ReplySlabs, utf8 } from "../_bytes.ts";
import { LogThrottle } from "../_log_throttle.ts";
import { formatAddress } from "../address.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "./defaults.ts";
import { errorMessage, type Logger, silentLogger } from "../log.ts";
import type { EchogateServer } from "../server.ts";
import type { DatagramSocket, Transport } from "../types.ts";
import { TickClock } from "./clock.ts";
import { ADMITTED, type DatagramLimits, RATE_LIMITED, SourceTable } from "./sources.ts";

/** The largest datagram answered by default: an Ethernet MTU's worth of UDP payload over IPv4. */
export const DEFAULT_MAX_DATAGRAM = 1472;

/**
 * Source ports never answered: 0 (not a real sender), 7 (echo) and 19 (chargen), whose servers
 * answer back, so a spoofed datagram would start an endless exchange. The server's own port is
 * refused too (another echo server on the same port).
 */
export const REFUSED_SOURCE_PORTS: readonly number[] = [0, 7, 19];

/**
 * The longest prefix answered while the limits are on, in bytes: an answer is then at most 3
 * times its request on the wire, the smallest request being an empty datagram (28 bytes of IPv4
 * and UDP headers; 48 over IPv6): (28 + 56) / 28 = 3. Three is QUIC's bound for a server that
 * has not checked a peer's address yet (RFC 9000, section 8). The rate and the budget cap how
 * many answers go out; this caps what each is worth to someone reflecting spoofed requests.
 *
 * @example
 * ```ts
 * import { MAX_UDP_PREFIX } from "./mod.ts";
 *
 * const allowed = (prefix: string) => new TextEncoder().encode(prefix).length <= MAX_UDP_PREFIX;
 * ```
 */
export const MAX_UDP_PREFIX = 56;

/** New-peer lines logged per second at most (the rest are counted in the next report). */
const PEER_LINES_PER_S = 10;

/**
 * Options for {@linkcode serveDatagramEcho}.
 *
 * @example
 * ```ts
 * import type { DatagramEchoOptions } from "./mod.ts";
 *
 * const options: Omit<DatagramEchoOptions, "transport"> = { port: 0, prefix: "", limits: { rate: 100 } };
 * ```
 */
export interface DatagramEchoOptions {
  /** The runtime's socket API; it must have `bindDatagram`. */
  transport: Transport;
  /** Host to bind: an IPv4 or IPv6 address (`::` is dual-stack on Linux). @default {"127.0.0.1"} */
  hostname?: string;
  /** Port to bind; 0 picks a free one. @default {50007} */
  port?: number;
  /**
   * Put before every answer; `""` answers the datagram as it is. At most
   * {@linkcode MAX_UDP_PREFIX} bytes unless `limits` is `false`. @default {"Echo=>"}
   */
  prefix?: string | Uint8Array;
  /** Datagrams longer than this many bytes are dropped and counted. @default {1472} */
  maxDatagram?: number;
  /** Per-source rate and global budget; `false` turns both off (a lab). @default {{}} (the defaults) */
  limits?: DatagramLimits | false;
  /** Receives server events. @default {silentLogger} */
  logger?: Logger;
  /** Makes the buffers answers are cut from. @default {the transport's allocate} */
  allocate?: (size: number) => Uint8Array;
}

/**
 * What a UDP echo server has done since it started.
 *
 * @example
 * ```ts
 * import type { DatagramEchoStats } from "./mod.ts";
 *
 * const dropped = (s: DatagramEchoStats) => s.received - s.answered;
 * ```
 */
export interface DatagramEchoStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams answered (handed to the socket). */
  answered: number;
  /** Dropped: from source port 0, 7, 19 or the server's own port. */
  refusedPort: number;
  /** Dropped: longer than `maxDatagram`. */
  tooBig: number;
  /** Dropped: the source used up its rate. */
  rateLimited: number;
  /** Dropped: the global budget was used up. */
  overBudget: number;
  /** Answers dropped because the socket's send buffer was full. */
  sendBufferFull: number;
  /** Sends that failed (reported by the runtime), and socket errors. */
  sendErrors: number;
  /**
   * Answers to a port nothing listened on any more (an ICMP port unreachable came back: the
   * client left before its answer). Only Bun's socket reports these.
   */
  portUnreachable: number;
  /** Bytes in the datagrams received. */
  receivedBytes: number;
  /** Bytes in the answers handed to the socket. */
  sentBytes: number;
}

/**
 * A running UDP echo server: an {@linkcode EchogateServer} (its `addr` has `transport: "udp"`,
 * its `connections` is always 0) with counters.
 *
 * @example
 * ```ts
 * import type { DatagramEchoServer } from "./mod.ts";
 *
 * const show = (server: DatagramEchoServer) => `${server.url}: ${server.stats.answered} answered`;
 * ```
 */
export interface DatagramEchoServer extends EchogateServer {
  /** Counters since the server started. */
  readonly stats: Readonly<DatagramEchoStats>;
}

/**
 * Starts a UDP echo server.
 *
 * @param options The transport, the address (default `127.0.0.1:50007`), the prefix and limits.
 * @returns The running server; `close()` it when done.
 *
 * @example
 * ```ts ignore
 * import { serveDatagramEcho } from "./mod.ts";
 * import { transport } from "../adapters/node.ts";
 *
 * const server = await serveDatagramEcho({ transport, port: 0 });
 * console.log(server.url, server.stats.answered);
 * await server.close();
 * ```
 */
export async function serveDatagramEcho(options: DatagramEchoOptions): Promise<DatagramEchoServer> {
  const { transport } = options;
  if (!transport.bindDatagram) throw new TypeError(`The ${transport.runtime} transport has no datagram sockets`);
  const logger = options.logger ?? silentLogger;
  const prefix = typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX);
  const maxDatagram = options.maxDatagram ?? DEFAULT_MAX_DATAGRAM;
  if (!(Number.isSafeInteger(maxDatagram) && maxDatagram >= 0)) {
    throw new RangeError("maxDatagram must be a non-negative integer");
  }
  if (options.limits !== false && prefix.length > MAX_UDP_PREFIX) {
    throw new RangeError(
      `A UDP prefix of ${prefix.length} bytes is over ${MAX_UDP_PREFIX} (an answer at most 3 times its request); limits: false allows it`,
    );
  }
  const sources = new SourceTable(options.limits ?? {});
  // Replies cut from shared slabs (as for TCP), except on Bun: JavaScriptCore makes a view into
  // a shared buffer cost more than a fresh small array (measured: docs/udp.md).
  const slabs = transport.runtime === "bun" && !options.allocate
    ? { join: freshJoin }
    : new ReplySlabs(options.allocate ?? transport.allocate);
  const stats: DatagramEchoStats = {
    received: 0,
    answered: 0,
    refusedPort: 0,
    tooBig: 0,
    rateLimited: 0,
    overBudget: 0,
    sendBufferFull: 0,
    sendErrors: 0,
    portUnreachable: 0,
    receivedBytes: 0,
    sentBytes: 0,
  };
  const clock = new TickClock();
  const reporter = new Reporter(logger, stats, clock);
  let ownPort = -1;
  // Assigned once bound; the handlers below may in principle run before the await resumes.
  // deno-lint-ignore prefer-const
  let socket: DatagramSocket | undefined;
  let closed = false;

  function onMessage(bytes: Uint8Array, hostname: string, port: number, framed?: Uint8Array): void {
    stats.received++;
    stats.receivedBytes += bytes.length;
    if (port === ownPort || port === 0 || port === 7 || port === 19) return reporter.drop("refusedPort");
    if (bytes.length > maxDatagram) return reporter.drop("tooBig");
    const verdict = sources.admit(hostname, port, clock.now());
    if (sources.newPeer) reporter.peer(hostname, port);
    if (verdict !== ADMITTED) return reporter.drop(verdict === RATE_LIMITED ? "rateLimited" : "overBudget");
    // `framed` is prefix + datagram in the adapter's buffer already: no copy.
    const reply = prefix.length === 0 ? bytes : framed ?? slabs.join(prefix, bytes);
    if (socket === undefined) return;
    if (socket.send(reply, hostname, port)) {
      stats.answered++;
      stats.sentBytes += reply.length;
    } else reporter.drop("sendBufferFull");
  }

  function onError(error: unknown, hostname?: string, port?: number): void {
    if (closed) return;
    // The peer's business (it left before its answer): counted and summed up, never an error line.
    if (hostname === undefined && (error as { code?: unknown } | null)?.code === "ECONNREFUSED") {
      return reporter.drop("portUnreachable");
    }
    stats.sendErrors++;
    if (hostname === undefined || port === undefined) return reporter.socketError(error);
    if (sources.firstError(hostname)) {
      logger.log({
        event: "error",
        remote: formatAddress({ transport: "udp", hostname, port }),
        message: `Send failed: ${errorMessage(error)} (logged once per source)`,
      });
    }
  }

  socket = await transport.bindDatagram({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? DEFAULT_ECHO_PORT,
  }, {
    onMessage,
    onError,
    // An answer is prefix + datagram copied into a reply slab, the datagram itself, or the
    // adapter's framed view (sent during onMessage): nothing is kept past the call.
    lent: true,
    replyPrefix: prefix,
  });
  ownPort = socket.addr.transport === "udp" ? socket.addr.port : -1;
  const url = formatAddress(socket.addr);
  logger.log({ event: "listening", protocol: "echo", address: url, transport: "udp" });

  let closing: Promise<void> | undefined;
  return {
    addr: socket.addr,
    url,
    connections: 0,
    stats,
    counters() {
      return {
        ...newServerCounters(),
        receivedBytes: stats.receivedBytes,
        sentBytes: stats.sentBytes,
        datagrams: { ...stats },
      };
    },
    close() {
      closed = true;
      clock.close();
      return closing ??= socket!.close().then(() => reporter.stop());
    },
  };
}

function freshJoin(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

type DropKind = "refusedPort" | "tooBig" | "rateLimited" | "overBudget" | "sendBufferFull" | "portUnreachable";

/**
 * Logging that costs nothing per datagram when nothing is wrong: new peers (at most
 * {@linkcode PEER_LINES_PER_S} lines a second), drops and unattributed socket errors summed up
 * by a {@linkcode LogThrottle}: at most once per its interval (the first at once).
 */
class Reporter {
  #logger: Logger;
  #stats: DatagramEchoStats;
  #reported: Record<DropKind | "peersNotShown" | "socketErrors", number> = {
    refusedPort: 0,
    tooBig: 0,
    rateLimited: 0,
    overBudget: 0,
    sendBufferFull: 0,
    portUnreachable: 0,
    peersNotShown: 0,
    socketErrors: 0,
  };
  #peersNotShown = 0;
  #socketErrors = 0;
  #lastSocketError = "";
  #throttle = new LogThrottle<void>(() => this.#report());
  #peerSecond = 0;
  #peerLines = 0;

  #clock: TickClock;

  constructor(logger: Logger, stats: DatagramEchoStats, clock: TickClock) {
    this.#logger = logger;
    this.#stats = stats;
    this.#clock = clock;
  }

  peer(hostname: string, port: number): void {
    const second = Math.floor(this.#clock.now() / 1000);
    if (second !== this.#peerSecond) {
      this.#peerSecond = second;
      this.#peerLines = 0;
    }
    if (this.#peerLines++ < PEER_LINES_PER_S) {
      this.#logger.log({ event: "datagram", remote: formatAddress({ transport: "udp", hostname, port }) });
    } else {
      this.#peersNotShown++;
      this.#schedule();
    }
  }

  drop(kind: DropKind): void {
    this.#stats[kind]++;
    this.#schedule();
  }

  socketError(error: unknown): void {
    this.#socketErrors++;
    this.#lastSocketError = errorMessage(error);
    this.#schedule();
  }

  #schedule(): void {
    this.#throttle.add();
  }

  #report(): void {
    const now = { ...this.#current() };
    const was = this.#reported;
    const delta = (kind: keyof typeof was) => now[kind] - was[kind];
    this.#reported = now;
    if (delta("socketErrors") > 0) {
      const more = delta("socketErrors") > 1 ? ` (${delta("socketErrors")} since the last report)` : "";
      this.#logger.log({ event: "error", message: `UDP socket: ${this.#lastSocketError}${more}` });
    }
    const drops = {
      refusedPort: delta("refusedPort"),
      tooBig: delta("tooBig"),
      rateLimited: delta("rateLimited"),
      overBudget: delta("overBudget"),
      sendBufferFull: delta("sendBufferFull"),
      portUnreachable: delta("portUnreachable"),
      peersNotShown: delta("peersNotShown"),
    };
    if (Object.values(drops).some((n) => n > 0)) this.#logger.log({ event: "datagram-drops", ...drops });
  }

  #current() {
    const s = this.#stats;
    return {
      refusedPort: s.refusedPort,
      tooBig: s.tooBig,
      rateLimited: s.rateLimited,
      overBudget: s.overBudget,
      sendBufferFull: s.sendBufferFull,
      portUnreachable: s.portUnreachable,
      peersNotShown: this.#peersNotShown,
      socketErrors: this.#socketErrors,
    };
  }

  /** Logs what is still unreported and stops the timer. */
  stop(): void {
    this.#throttle.close();
  }
}
