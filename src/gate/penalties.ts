/**
 * Per-source penalties for the gate, with the semantics and defaults of OpenSSH's
 * `PerSourcePenalties`: misbehaviour adds seconds of penalty to its source; once a source's
 * accrued penalty exceeds `minSeconds` it is refused at accept until the penalty has decayed
 * (in real time) to nothing. IPv4 sources count per address, IPv6 per /64, and the table is
 * bounded so a flood of addresses cannot exhaust memory.
 *
 * @module
 */

import { type Cidr, cidrContains, isCanonicalIpv4, parseCidr, parseIp } from "../ip.ts";

/** What a source did wrong. */
export type PenaltyKind = "authfail" | "grace-exceeded" | "noauth";

/**
 * Penalty settings (seconds). Defaults are OpenSSH's.
 *
 * @example
 * ```ts
 * import type { PenaltyOptions } from "../mod.ts";
 *
 * const strict: PenaltyOptions = { authfailSeconds: 30, exempt: [] };
 * ```
 */
export interface PenaltyOptions {
  /** Added for a wrong token. @default {5} */
  authfailSeconds?: number;
  /** Added when no token arrives within the timeout. @default {10} */
  graceExceededSeconds?: number;
  /** Added for connecting and leaving without a byte. @default {1} */
  noauthSeconds?: number;
  /** A source is refused once its accrued penalty exceeds this. @default {15} */
  minSeconds?: number;
  /** Penalties are capped at this. @default {600} */
  maxSeconds?: number;
  /** Sources tracked per address family; the oldest is evicted beyond it. @default {65536} */
  maxSources?: number;
  /** Sources never penalised, as CIDR blocks. @default {["127.0.0.0/8", "::1/128"]} */
  exempt?: readonly string[];
  /** Clock in ms, for tests. @default {Date.now} */
  now?: () => number;
  /** Called when a family's table is full and its oldest entry is evicted. */
  onOverflow?: (family: "ipv4" | "ipv6") => void;
  /** Shares penalties with the tables of other processes (the workers of `--workers`). */
  share?: PenaltyShare;
  /**
   * Called when a source starts being refused, and again whenever a further penalty moves the
   * end of its refusal later: an address of the source, and when (ms, this table's clock) it is
   * admitted again. Penalties applied through `share` count too. (Nothing is called at the end:
   * the table decays lazily; the caller times it.)
   */
  onRefusing?: (address: string, untilMs: number) => void;
}

/**
 * A channel between penalty tables in several processes: each table publishes the penalties it
 * gives and applies those published by the others, so a source's misbehaviour counts the same
 * whichever process saw it. Checks at accept stay local; a table learns of another's penalty
 * once the message has arrived (eventually consistent).
 *
 * @example Two tables in one process, sharing
 * ```ts
 * import { type PenaltyKind, type PenaltyShare } from "../mod.ts";
 * import { PenaltyBox } from "./penalties.ts";
 *
 * const appliers: ((address: string, kind: PenaltyKind, at: number) => void)[] = [];
 * const share = (index: number): PenaltyShare => ({
 *   publish: (address, kind, at) => appliers.forEach((apply, i) => i !== index && apply(address, kind, at)),
 *   subscribe: (apply) => void (appliers[index] = apply),
 * });
 * const a = new PenaltyBox({ exempt: [], share: share(0) });
 * const b = new PenaltyBox({ exempt: [], share: share(1) });
 * for (let i = 0; i < 4; i++) a.penalize("192.0.2.7", "authfail");
 * console.log(b.isBlocked("192.0.2.7")); // true
 * ```
 */
export interface PenaltyShare {
  /** Called after each penalty this table gives: its source's address, its kind, and when (ms, the table's clock). */
  publish(address: string, kind: PenaltyKind, at: number): void;
  /**
   * Called once, with the function that applies a penalty given elsewhere at `at` (ms) to this
   * table, as if given then (so a penalty replayed later decays from when it was given).
   */
  subscribe(apply: (address: string, kind: PenaltyKind, at: number) => void): void;
}

/** OpenSSH's default exemption: loopback, so local health checks are never locked out. */
export const DEFAULT_PENALTY_EXEMPT: readonly string[] = ["127.0.0.0/8", "::1/128"];

interface Penalty {
  expiry: number; // ms
  active: boolean;
}

/**
 * The penalty table.
 *
 * @example
 * ```ts
 * import { PenaltyBox } from "./penalties.ts";
 *
 * const box = new PenaltyBox({ exempt: [] });
 * for (let i = 0; i < 4; i++) box.penalize("192.0.2.7", "authfail"); // 20 s > 15 s
 * console.log(box.isBlocked("192.0.2.7")); // true
 * console.log(box.isBlocked("192.0.2.8")); // false
 * ```
 */
export class PenaltyBox {
  #seconds: Record<PenaltyKind, number>;
  #minMs: number;
  #maxMs: number;
  #maxSources: number;
  #exempt: Cidr[];
  #now: () => number;
  #onOverflow?: (family: "ipv4" | "ipv6") => void;
  #tables = { ipv4: new Map<string, Penalty>(), ipv6: new Map<string, Penalty>() };
  #share?: PenaltyShare;
  #onRefusing?: (address: string, untilMs: number) => void;

  /**
   * Creates an empty table.
   *
   * @param options Penalty sizes, limits and exemptions.
   */
  constructor(options: PenaltyOptions = {}) {
    this.#seconds = {
      authfail: options.authfailSeconds ?? 5,
      "grace-exceeded": options.graceExceededSeconds ?? 10,
      noauth: options.noauthSeconds ?? 1,
    };
    this.#minMs = (options.minSeconds ?? 15) * 1000;
    this.#maxMs = (options.maxSeconds ?? 600) * 1000;
    this.#maxSources = options.maxSources ?? 65536;
    this.#exempt = (options.exempt ?? DEFAULT_PENALTY_EXEMPT).map(parseCidr);
    this.#now = options.now ?? Date.now;
    this.#onOverflow = options.onOverflow;
    this.#share = options.share;
    this.#onRefusing = options.onRefusing;
    this.#share?.subscribe((address, kind, at) => void this.#add(address, kind, at));
  }

  /**
   * Adds the penalty for `kind` to the source of `address`.
   *
   * @param address The peer's IP address.
   * @param kind What it did.
   * @returns The source's accrued penalty in seconds after this one (0 when exempt or not an IP).
   */
  penalize(address: string, kind: PenaltyKind): number {
    const now = this.#now();
    const accrued = this.#add(address, kind, now);
    if (accrued > 0) this.#share?.publish(address, kind, now);
    return accrued;
  }

  #add(address: string, kind: PenaltyKind, at: number): number {
    const source = sourceOf(address);
    if (!source || this.#isExempt(source.bytes)) return 0;
    const now = Math.min(at, this.#now());
    const table = this.#tables[source.family];
    const entry = table.get(source.key);
    const penalty = entry ?? { expiry: now, active: false };
    if (penalty.expiry <= now) {
      // Decayed (entries go lazily): it starts again from nothing, not refused.
      penalty.expiry = now;
      penalty.active = false;
    }
    const previousExpiry = penalty.expiry;
    penalty.expiry = Math.min(penalty.expiry + this.#seconds[kind] * 1000, now + this.#maxMs);
    const wasActive = penalty.active;
    if (!penalty.active && penalty.expiry - now > this.#minMs) penalty.active = true;
    if (penalty.active && (!wasActive || penalty.expiry > previousExpiry)) this.#onRefusing?.(address, penalty.expiry);
    // Re-insert so the Map's first entry is always the least recently penalised.
    if (entry) table.delete(source.key);
    else if (table.size >= this.#maxSources) this.#evictOldest(source.family, now);
    table.set(source.key, penalty);
    return (penalty.expiry - now) / 1000;
  }

  /**
   * Whether connections from `address` are refused now.
   *
   * @param address The peer's IP address.
   * @returns True while its source's penalty is active and not yet expired.
   */
  isBlocked(address: string): boolean {
    // Asked at every accept, mostly with nobody penalised: then nothing to parse or look up.
    if (this.#tables.ipv4.size === 0 && this.#tables.ipv6.size === 0) return false;
    const source = sourceOf(address);
    if (!source) return false;
    const table = this.#tables[source.family];
    const penalty = table.get(source.key);
    if (!penalty) return false;
    if (penalty.expiry <= this.#now()) {
      table.delete(source.key);
      return false;
    }
    return penalty.active;
  }

  /**
   * Sources whose penalty has not expired yet (refused or still accruing), for metrics: expired
   * entries linger in the tables until looked up or evicted, so they are left out here.
   */
  countPenalized(): number {
    const now = this.#now();
    let count = 0;
    for (const table of [this.#tables.ipv4, this.#tables.ipv6]) {
      for (const penalty of table.values()) if (penalty.expiry > now) count++;
    }
    return count;
  }

  /** Sources currently tracked, per family. */
  get size(): { ipv4: number; ipv6: number } {
    return { ipv4: this.#tables.ipv4.size, ipv6: this.#tables.ipv6.size };
  }

  #evictOldest(family: "ipv4" | "ipv6", now: number): void {
    const table = this.#tables[family];
    // Expired entries go first; if none, the least recently penalised one.
    for (const [key, penalty] of table) {
      if (penalty.expiry <= now) {
        table.delete(key);
        return;
      }
      break;
    }
    const oldest = table.keys().next();
    if (!oldest.done) table.delete(oldest.value);
    this.#onOverflow?.(family);
  }

  #isExempt(bytes: Uint8Array): boolean {
    return this.#exempt.some((cidr) => cidrContains(cidr, bytes));
  }
}

// --- sources ---

/**
 * The source an address counts as, for penalties and the gate's per-source limit: the IPv4
 * address (IPv4-mapped IPv6 included), or the IPv6 /64, as one text key.
 *
 * @param address The peer's IP address.
 * @returns The key, the same for every address of the source; `undefined` when it is not an IP address.
 *
 * @example
 * ```ts
 * import { sourceKey } from "./penalties.ts";
 *
 * console.log(sourceKey("2001:db8:1:2::7") === sourceKey("2001:db8:1:2:ffff::1")); // true: one /64
 * console.log(sourceKey("::ffff:192.0.2.7") === sourceKey("192.0.2.7")); // true
 * ```
 */
export function sourceKey(address: string): string | undefined {
  // The usual peer address already is its key: no bytes to parse into, no key to build.
  if (isCanonicalIpv4(address)) return address;
  return sourceOf(address)?.key;
}

/** The penalty source of an address: the IPv4 address, or the IPv6 /64. */
function sourceOf(address: string): { family: "ipv4" | "ipv6"; key: string; bytes: Uint8Array } | undefined {
  const bytes = parseIp(address);
  if (!bytes) return undefined;
  if (bytes.length === 4) return { family: "ipv4", key: bytes.join("."), bytes };
  return { family: "ipv6", key: Array.from(bytes.subarray(0, 8), (b) => b.toString(16)).join(","), bytes };
}
