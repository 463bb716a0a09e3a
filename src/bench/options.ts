/**
 * What the load generator is asked to do: the modes, the defaults and {@linkcode BenchOptions}, and
 * their validation into the settings a run uses.
 *
 * @module
 */

import { utf8 } from "../_bytes.ts";
import { formatEndpoint } from "../address.ts";
import { connectOptionsFor, unbracketed } from "../client/_connect.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_PREFIX } from "../echo/stream.ts";
import { DEFAULT_GATE_PORT } from "../gate/mod.ts";
import type { ProxyHeaderInit } from "../proxy_protocol/mod.ts";
import type { TlsClientOptions } from "../tls.ts";
import type { ConnectOptions, Endpoint, Transport } from "../types.ts";
import type { FileDescriptorUsage } from "./descriptors.ts";
import type { BenchInterval } from "./report.ts";

/** The load generator's modes. */
export type BenchMode = "pingpong" | "stream" | "connect";

/** The list of bench modes, for validation. */
export const BENCH_MODES: readonly BenchMode[] = ["pingpong", "stream", "connect"];

/** Default message size in `pingpong` and `connect` mode, in bytes. */
export const DEFAULT_BENCH_MESSAGE_SIZE = 64;

/** Default bytes in flight per connection in `stream` mode: 64 KiB. */
export const DEFAULT_BENCH_STREAM_SIZE = 64 * 1024;

/** Default number of connections. */
export const DEFAULT_BENCH_CONNS = 50;

/** Default run length, in ms. */
export const DEFAULT_BENCH_DURATION_MS = 5000;

/**
 * What to drive and how hard.
 *
 * @example
 * ```ts
 * import type { BenchOptions } from "./mod.ts";
 *
 * const options: Omit<BenchOptions, "transport"> = { port: 50007, mode: "stream", conns: 64, durationMs: 3000 };
 * ```
 */
export interface BenchOptions {
  /** The runtime's socket API (each adapter exports one as `transport`). */
  transport: Transport;
  /** Host to connect to. @default {"localhost"} */
  hostname?: string;
  /** Port to connect to. @default {50007, or 8001 with `knock`} */
  port?: number;
  /** Unix socket path; when set, `hostname` and `port` are ignored. */
  path?: string;
  /** What each connection does. @default {"pingpong"} */
  mode?: BenchMode;
  /** Connections (in `connect` mode: exchanges in progress at once). @default {50} */
  conns?: number;
  /**
   * Message size in `pingpong` and `connect` mode (default 64); bytes kept in flight per
   * connection in `stream` mode (default 65536).
   */
  size?: number;
  /** How long to run, in ms, once the connections are open. @default {5000} */
  durationMs?: number;
  /** The prefix the server puts before each answer; `""` for a raw echo server. @default {"Echo=>"} */
  prefix?: string | Uint8Array;
  /** In `connect` mode: knock on a gate with this token instead of doing an echo round trip. */
  knock?: string | Uint8Array;
  /**
   * Caps the pace at this many operations per second in total, and opens connections one per
   * operation slot (over at most a quarter of the run) instead of all at once.
   */
  rate?: number;
  /** How long to wait for a connection or a reply before counting an error, in ms. @default {5000} */
  timeoutMs?: number;
  /** How often `onInterval` is called, in ms. @default {1000} */
  intervalMs?: number;
  /** Called once per interval with the figures of that interval. */
  onInterval?: (interval: BenchInterval) => void;
  /** Reports the descriptor limit, so the run can refuse a `conns` that cannot fit. */
  fileDescriptors?: () => FileDescriptorUsage | undefined;
  /** Stops the run early; the report covers what ran. */
  signal?: AbortSignal;
  /** Connect over TLS (in `connect` mode each exchange is then a full TLS handshake). */
  tls?: TlsClientOptions;
  /** Send a PROXY protocol header at the start of every connection (to load a `proxyProtocol` server). */
  proxyHeader?: ProxyHeaderInit;
}

/** The options of a run, checked and with their defaults filled in. */
export interface Settings {
  transport: Transport;
  endpoint: Endpoint;
  target: string;
  mode: BenchMode;
  conns: number;
  size: number;
  durationMs: number;
  prefix: Uint8Array;
  knock: Uint8Array | undefined;
  rate: number | undefined;
  timeoutMs: number;
  intervalMs: number;
  connectOptions: ConnectOptions | undefined;
  proxyHeader: ProxyHeaderInit | undefined;
}

export function settle(options: BenchOptions): Settings {
  const mode = options.mode ?? "pingpong";
  if (!BENCH_MODES.includes(mode)) throw new TypeError(`Unknown bench mode "${mode}"`);
  const knock = typeof options.knock === "string" ? utf8(options.knock) : options.knock;
  if (knock !== undefined && mode !== "connect") throw new TypeError("A knock is only done in connect mode");
  const endpoint: Endpoint = options.path !== undefined ? { path: options.path } : {
    hostname: unbracketed(options.hostname ?? "localhost"),
    port: options.port ?? (knock ? DEFAULT_GATE_PORT : DEFAULT_ECHO_PORT),
  };
  const size = options.size ?? (mode === "stream" ? DEFAULT_BENCH_STREAM_SIZE : DEFAULT_BENCH_MESSAGE_SIZE);
  const settings: Settings = {
    transport: options.transport,
    endpoint,
    target: formatEndpoint(endpoint),
    mode,
    conns: options.conns ?? DEFAULT_BENCH_CONNS,
    size,
    durationMs: options.durationMs ?? DEFAULT_BENCH_DURATION_MS,
    prefix: typeof options.prefix === "string" ? utf8(options.prefix) : options.prefix ?? utf8(DEFAULT_PREFIX),
    knock,
    rate: options.rate,
    timeoutMs: options.timeoutMs ?? 5000,
    intervalMs: options.intervalMs ?? 1000,
    connectOptions: connectOptionsFor(options.tls, options.proxyHeader),
    // Over TLS the header goes in clear text before the handshake (connectOptions), not after it.
    proxyHeader: options.tls ? undefined : options.proxyHeader,
  };
  for (const [name, value] of [["conns", settings.conns], ["size", settings.size]] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new RangeError(`${name} must be a positive integer`);
  }
  if (!(settings.durationMs >= 0)) throw new RangeError("durationMs must be a non-negative number");
  if (settings.rate !== undefined && !(settings.rate > 0)) throw new RangeError("rate must be a positive number");
  if (!(settings.timeoutMs > 0)) throw new RangeError("timeoutMs must be a positive number");
  if (!(settings.intervalMs > 0)) throw new RangeError("intervalMs must be a positive number");
  return settings;
}
