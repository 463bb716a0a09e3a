/**
 * What a fault proxy and its toxics are, as toxiproxy's API shows them, and how input is
 * checked: every field a client sends is validated, with a message naming the field.
 *
 * @module
 */

import { parseCidr } from "../ip.ts";

/**
 * The toxic types echogate knows, by toxiproxy's names.
 *
 * @example
 * ```ts
 * import { TOXIC_TYPES } from "../mod.ts";
 *
 * console.log(TOXIC_TYPES); // ["latency", "bandwidth", ...]
 * ```
 */
export const TOXIC_TYPES = [
  "latency",
  "bandwidth",
  "slow_close",
  "timeout",
  "reset_peer",
  "slicer",
  "limit_data",
  "noop",
  "limit_time",
  "corrupt",
  "slow_open",
] as const;

/**
 * A toxic type: toxiproxy's `latency`, `bandwidth`, `slow_close`, `timeout`, `reset_peer`,
 * `slicer`, `limit_data` and `noop`, and echogate's `limit_time`, `corrupt` and `slow_open`.
 *
 * @example
 * ```ts
 * import type { ToxicType } from "./model.ts";
 *
 * const type: ToxicType = "latency";
 * ```
 */
export type ToxicType = typeof TOXIC_TYPES[number];

/**
 * Which way a toxic acts: `upstream` (client to server) or `downstream` (server to client).
 *
 * @example
 * ```ts
 * import type { ToxicStream } from "./model.ts";
 *
 * const stream: ToxicStream = "downstream";
 * ```
 */
export type ToxicStream = "upstream" | "downstream";

/**
 * A toxic as the API shows it.
 *
 * @example 100 ms more on every answer
 * ```ts
 * import type { Toxic } from "./model.ts";
 *
 * const toxic: Toxic = {
 *   name: "latency_downstream",
 *   type: "latency",
 *   stream: "downstream",
 *   toxicity: 1,
 *   attributes: { latency: 100, jitter: 0 },
 * };
 * ```
 */
export interface Toxic {
  /** Unique within its proxy, over both streams. */
  name: string;
  /** What it does. */
  type: ToxicType;
  /** Which way it acts. */
  stream: ToxicStream;
  /** The probability that it applies to a connection, in [0, 1]. */
  toxicity: number;
  /** Its attributes, every one filled in (0 when not given). */
  attributes: Record<string, number>;
  /** When given: it applies only to connections from these CIDR blocks (toxiproxy's clients ignore it). */
  clients?: string[];
}

/**
 * A toxic to add: only `type` is required (`stream` downstream, `toxicity` 1, `name`
 * `<type>_<stream>`, attributes 0 by default).
 *
 * @example
 * ```ts
 * import type { ToxicInput } from "./model.ts";
 *
 * const input: ToxicInput = { type: "limit_data", attributes: { bytes: 10 } };
 * ```
 */
export interface ToxicInput {
  /** Unique within the proxy. @default {"<type>_<stream>"} */
  name?: string;
  /** One of {@linkcode TOXIC_TYPES}. */
  type: string;
  /** `upstream` or `downstream`. @default {"downstream"} */
  stream?: string;
  /** The probability that it applies to a connection, in [0, 1]. @default {1} */
  toxicity?: number;
  /** Its attributes (see docs/faults.md); those left out are 0. */
  attributes?: Record<string, unknown>;
  /** Apply only to connections from these CIDR blocks (`"10.0.0.0/8"`, `"::1/128"`). */
  clients?: string[];
}

/**
 * A proxy as the API shows it.
 *
 * @example
 * ```ts
 * import type { ProxyInfo } from "./model.ts";
 *
 * const proxy: ProxyInfo = {
 *   name: "db",
 *   listen: "127.0.0.1:21212",
 *   upstream: "127.0.0.1:5432",
 *   enabled: true,
 *   toxics: [],
 * };
 * ```
 */
export interface ProxyInfo {
  /** Its name, unique on the server. */
  name: string;
  /** Where it listens: the real IP and port once started. */
  listen: string;
  /** Where each connection is forwarded: `HOST:PORT`. */
  upstream: string;
  /** Whether it listens. */
  enabled: boolean;
  /** Present (true) when it terminates TLS from its clients with the server's certificate. */
  listen_tls?: boolean;
  /** Present (true) when it speaks TLS to its upstream. */
  upstream_tls?: boolean;
  /** Its toxics: the upstream ones, then the downstream ones. */
  toxics: Toxic[];
}

/**
 * A proxy to create: `listen` defaults to `127.0.0.1:0` (a free port), `enabled` to true.
 *
 * @example
 * ```ts
 * import type { ProxyInput } from "./model.ts";
 *
 * const input: ProxyInput = { name: "db", upstream: "127.0.0.1:5432" };
 * ```
 */
export interface ProxyInput {
  /** Its name, unique on the server. */
  name: string;
  /** Where to listen, `HOST:PORT` (port 0: a free one). @default {"127.0.0.1:0"} */
  listen?: string;
  /** Where to forward each connection, `HOST:PORT`. */
  upstream: string;
  /** Start it at once. @default {true} */
  enabled?: boolean;
  /** Terminate TLS from clients with the server's certificate (`tls.cert`, `--tls-cert`). @default {false} */
  listen_tls?: boolean;
  /**
   * Speak TLS to the upstream, verifying it against the system roots plus the server's
   * `tls.upstreamCa` (`--upstream-ca`), its host name or IP checked. @default {false}
   */
  upstream_tls?: boolean;
}

/**
 * What a fault server reports as it runs (`echogate faults --json` prints each as a JSON line):
 * every change to a proxy or toxic, and every connection, with the toxics that applied to it.
 *
 * @example
 * ```ts
 * import type { FaultsEvent } from "./model.ts";
 *
 * const event: FaultsEvent = { event: "toxic-removed", proxy: "db", toxic: "latency_downstream" };
 * ```
 */
export type FaultsEvent =
  | { event: "proxy-created" | "proxy-updated"; proxy: string; listen: string; upstream: string; enabled: boolean }
  | { event: "proxy-removed"; proxy: string }
  | { event: "toxic-added" | "toxic-updated"; proxy: string; toxic: Toxic }
  | { event: "toxic-removed"; proxy: string; toxic: string }
  | { event: "reset" }
  | { event: "connect"; proxy: string; remote: string }
  | { event: "upstream-failed"; proxy: string; remote: string; message: string }
  | {
    event: "close";
    proxy: string;
    remote: string;
    bytesIn: number;
    bytesOut: number;
    durationMs: number;
    /** The toxics whose toxicity roll chose this connection, on either stream. */
    toxics: string[];
  };

/**
 * An API error: its message and HTTP status, as toxiproxy's `{"error", "status"}` body.
 *
 * @example
 * ```ts
 * import { FaultsError } from "./model.ts";
 *
 * const error = new FaultsError("proxy not found", 404);
 * console.log(error.status); // 404
 * ```
 */
export class FaultsError extends Error {
  /** The HTTP status that goes with it. */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param message What went wrong, as toxiproxy words it where it has the case.
   * @param status The HTTP status.
   */
  constructor(message: string, status: number) {
    super(message);
    this.name = "FaultsError";
    this.status = status;
  }
}

const ATTRIBUTES: Record<ToxicType, readonly string[]> = {
  latency: ["latency", "jitter"],
  bandwidth: ["rate"],
  slow_close: ["delay"],
  timeout: ["timeout"],
  reset_peer: ["timeout"],
  slicer: ["average_size", "size_variation", "delay"],
  limit_data: ["bytes"],
  noop: [],
  limit_time: ["time"],
  corrupt: ["probability"],
  slow_open: ["delay"],
};

/** Attributes that are probabilities, in [0, 1]; every other one is an integer. */
const FRACTION = new Set(["corrupt.probability"]);

/** Attributes that must be above zero (a zero slicer size would never end). */
const POSITIVE = new Set(["slicer.average_size"]);

function badBody(detail: string): FaultsError {
  return new FaultsError(`bad request body: ${detail}`, 400);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks `value` is a JSON object; `what` names it in the error. */
export function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw badBody(`${what} must be a JSON object`);
  return value;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badBody(`${field} must be a string`);
  return value;
}

function optionalBoolean(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw badBody(`${field} must be true or false`);
  return value;
}

function toxicity(body: Record<string, unknown>): number | undefined {
  const value = body.toxicity;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !(value >= 0 && value <= 1)) throw badBody(`toxicity must be a number in [0, 1]`);
  return value;
}

/** Reads `{name, listen, upstream, enabled}`; `position` names the proxy in a populate list. */
export function parseProxyInput(value: unknown, position = ""): Required<ProxyInput> {
  const body = expectObject(value, `proxy${position}`);
  const name = optionalString(body, "name") ?? "";
  const upstream = optionalString(body, "upstream") ?? "";
  if (name === "") throw new FaultsError(`missing required field: name${position}`, 400);
  if (upstream === "") throw new FaultsError(`missing required field: upstream${position}`, 400);
  const listen = optionalString(body, "listen") ?? "127.0.0.1:0";
  parseHostPort(listen, "listen");
  parseHostPort(upstream, "upstream");
  return {
    name,
    upstream,
    listen,
    enabled: optionalBoolean(body, "enabled") ?? true,
    listen_tls: optionalBoolean(body, "listen_tls") ?? false,
    upstream_tls: optionalBoolean(body, "upstream_tls") ?? false,
  };
}

/** Reads a proxy update: any of `listen`, `upstream`, `enabled`. */
export function parseProxyUpdate(value: unknown): Partial<ProxyInput> {
  const body = expectObject(value, "proxy");
  const listen = optionalString(body, "listen");
  const upstream = optionalString(body, "upstream");
  if (listen !== undefined) parseHostPort(listen, "listen");
  if (upstream !== undefined) parseHostPort(upstream, "upstream");
  return {
    listen,
    upstream,
    enabled: optionalBoolean(body, "enabled"),
    listen_tls: optionalBoolean(body, "listen_tls"),
    upstream_tls: optionalBoolean(body, "upstream_tls"),
  };
}

/** Reads a new toxic, filling in toxiproxy's defaults. */
export function parseToxicInput(value: unknown): Toxic {
  const body = expectObject(value, "toxic");
  const stream = optionalString(body, "stream") ?? "downstream";
  if (stream !== "upstream" && stream !== "downstream") {
    throw new FaultsError("stream was invalid, can be either upstream or downstream", 400);
  }
  const type = optionalString(body, "type") ?? "";
  if (!(TOXIC_TYPES as readonly string[]).includes(type)) throw new FaultsError("invalid toxic type", 400);
  const name = optionalString(body, "name") || `${type}_${stream}`;
  const toxic: Toxic = {
    name,
    type: type as ToxicType,
    stream,
    toxicity: toxicity(body) ?? 1,
    attributes: Object.fromEntries(ATTRIBUTES[type as ToxicType].map((key) => [key, 0])),
  };
  const clients = parseClients(body.clients);
  return applyAttributes(clients ? { ...toxic, clients } : toxic, body.attributes);
}

/** Applies an update (`attributes` merged into the old ones, `toxicity`) to a copy of `toxic`. */
export function updateToxic(toxic: Toxic, value: unknown): Toxic {
  const body = expectObject(value, "toxic");
  const clients = parseClients(body.clients);
  return applyAttributes(
    { ...toxic, toxicity: toxicity(body) ?? toxic.toxicity, ...(clients && { clients }) },
    body.attributes,
  );
}

/** Checks `clients`: a list of CIDR blocks (a bare address is its own block). */
function parseClients(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw badBody("clients must be a list of CIDR blocks");
  value.forEach((block, i) => {
    if (typeof block !== "string") throw badBody(`clients[${i}] must be a CIDR block`);
    try {
      parseCidr(block);
    } catch {
      throw badBody(`clients[${i}] is not a CIDR block: ${JSON.stringify(block)}`);
    }
  });
  return value as string[];
}

function applyAttributes(toxic: Toxic, value: unknown): Toxic {
  const attributes = { ...toxic.attributes };
  if (value !== undefined && value !== null) {
    const given = expectObject(value, "attributes");
    for (const key of ATTRIBUTES[toxic.type]) {
      const attribute = given[key];
      if (attribute === undefined || attribute === null) continue;
      if (FRACTION.has(`${toxic.type}.${key}`)) {
        if (typeof attribute !== "number" || !(attribute >= 0 && attribute <= 1)) {
          throw badBody(`attributes.${key} must be a number in [0, 1]`);
        }
      } else if (typeof attribute !== "number" || !Number.isSafeInteger(attribute)) {
        throw badBody(`attributes.${key} must be an integer`);
      }
      attributes[key] = attribute;
    }
  }
  for (const key of ATTRIBUTES[toxic.type]) {
    const positive = POSITIVE.has(`${toxic.type}.${key}`);
    const value = attributes[key] ?? 0;
    if (value < 0 || (positive && value === 0)) {
      throw badBody(`attributes.${key} must be ${positive ? "above zero" : "zero or more"}`);
    }
  }
  return { ...toxic, attributes };
}

/**
 * Splits `HOST:PORT` or `[IPv6]:PORT`; `field` names it in the error.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./model.ts";
 *
 * console.log(parseHostPort("[::1]:8474", "listen")); // { hostname: "::1", port: 8474 }
 * ```
 */
export function parseHostPort(text: string, field: string): { hostname: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw badBody(`${field} must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { hostname: match[1] ?? (match[2] || "0.0.0.0"), port };
}
