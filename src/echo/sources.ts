// The per-source state of a datagram server: a fixed table of token buckets keyed by source
// address, plus the global answer budget. Fixed size, allocated once: a flood of spoofed
// sources costs no memory, and a datagram costs a string hash and a few array reads.

import { parseIp } from "../ip.ts";

/**
 * Rate limits of a UDP echo server. The defaults are meant for a public server: a victim whose
 * address is spoofed gets at most `rate` answers a second from it, and the server as a whole
 * sends at most `budget` a second however many sources there are.
 *
 * @example A lab server with higher limits
 * ```ts
 * import type { DatagramLimits } from "./mod.ts";
 *
 * const limits: DatagramLimits = { rate: 1000, burst: 2000, budget: 50_000 };
 * ```
 */
export interface DatagramLimits {
  /** Answers per second to one source (an IPv4 address, or an IPv6 /64). @default {10} */
  rate?: number;
  /** Answers one source may get at once before `rate` applies. @default {2 × rate} */
  burst?: number;
  /** Answers per second in total, over all sources. @default {1000} */
  budget?: number;
  /** Answers in total at once before `budget` applies. @default {budget} */
  budgetBurst?: number;
  /**
   * Sources tracked at once (rounded up to a power of two). Sources beyond it share buckets,
   * which limits them together, never less. @default {4096}
   */
  sources?: number;
}

/** Default answers per second to one source. */
export const DEFAULT_UDP_RATE = 10;
/** Default answers per second in total. */
export const DEFAULT_UDP_BUDGET = 1000;
/** Default number of sources tracked at once. */
export const DEFAULT_UDP_SOURCES = 4096;
/** A source silent this long counts as a new peer when it comes back (and is logged again). */
export const PEER_QUIET_MS = 60_000;

/** What {@linkcode SourceTable.admit} decided for one datagram. */
export const ADMITTED = 0;
export const RATE_LIMITED = 1;
export const OVER_BUDGET = 2;

/**
 * The table. `admit()` returns one of the constants above and sets `newPeer` for the datagram
 * just admitted (or refused).
 */
export class SourceTable {
  /**
   * True when the last datagram came from a peer (an address and port) not seen in the last
   * {@linkcode PEER_QUIET_MS}: a new client program, most likely. Peers are tracked in a table
   * of `sources` slots of their own; past that many at once, some are reported again.
   */
  newPeer = false;
  readonly #limited: boolean;
  readonly #rate: number; // tokens per ms
  readonly #burst: number;
  readonly #budgetRate: number;
  readonly #budgetBurst: number;
  readonly #mask: number;
  readonly #tags: Uint32Array;
  readonly #seen: Float64Array;
  readonly #tokens: Float64Array;
  readonly #errorLogged: Uint8Array;
  // The peer log's own table, keyed by address and port: clients sharing an address (and a
  // bucket) are each a peer, however their datagrams interleave.
  readonly #peerTags: Uint32Array;
  readonly #peerSeen: Float64Array;
  #budget: number;
  #budgetAt = 0;

  constructor(limits: DatagramLimits | false) {
    this.#limited = limits !== false;
    const l = limits === false ? {} : limits;
    const budget = l.budget ?? DEFAULT_UDP_BUDGET;
    const budgetBurst = l.budgetBurst ?? budget;
    // One source never gets more than half the budget, whatever the flags say.
    const rate = Math.min(l.rate ?? DEFAULT_UDP_RATE, budget / 2);
    const burst = Math.min(l.burst ?? 2 * rate, Math.max(1, budgetBurst / 2));
    for (const [name, value] of [["rate", rate], ["burst", burst], ["budget", budget], ["budgetBurst", budgetBurst]]) {
      if (!(typeof value === "number" && value > 0 && Number.isFinite(value))) {
        throw new RangeError(`${name} must be a positive number`);
      }
    }
    this.#rate = rate / 1000;
    this.#burst = Math.max(1, burst);
    this.#budgetRate = budget / 1000;
    this.#budgetBurst = Math.max(1, budgetBurst);
    this.#budget = this.#budgetBurst;
    let size = 1;
    while (size < (l.sources ?? DEFAULT_UDP_SOURCES)) size *= 2;
    this.#mask = size - 1;
    this.#tags = new Uint32Array(size);
    this.#seen = new Float64Array(size);
    this.#tokens = new Float64Array(size);
    this.#errorLogged = new Uint8Array(size);
    this.#peerTags = new Uint32Array(size);
    this.#peerSeen = new Float64Array(size);
  }

  /**
   * Decides whether to answer a datagram from `hostname` at `now` (ms, monotonic), and takes
   * the tokens when it does.
   */
  admit(hostname: string, port: number, now: number): number {
    const v6 = hostname.includes(":");
    const hash = sourceHash(hostname, v6);
    const slot = hash & this.#mask;
    const tag = (hash | 1) >>> 0; // never 0, which marks a free slot; unsigned, as the table stores it
    const tags = this.#tags;
    const seen = this.#seen;
    const tokens = this.#tokens;
    const quiet = now - seen[slot]!;
    const refilled = Math.min(this.#burst, tokens[slot]! + quiet * this.#rate);
    // A peer is an address and port (an IPv6 address whole, not its /64).
    const peer = mix((v6 ? fnv(hostname, 0) : hash) ^ port);
    const peerSlot = peer & this.#mask;
    const peerTag = (peer | 1) >>> 0;
    this.newPeer = this.#peerTags[peerSlot] !== peerTag || now - this.#peerSeen[peerSlot]! >= PEER_QUIET_MS;
    this.#peerTags[peerSlot] = peerTag;
    this.#peerSeen[peerSlot] = now;
    if (tags[slot] !== tag) {
      // Another source's slot: take it over only once its owner's bucket is full again (a taken-
      // over bucket starts full, so eviction never hands a limited source fresh tokens); until
      // then both share it and are limited together.
      if (tags[slot] === 0 || (refilled >= this.#burst && quiet >= (this.#limited ? 0 : 1000))) {
        tags[slot] = tag;
        tokens[slot] = this.#burst;
        this.#errorLogged[slot] = 0;
      } else {
        tokens[slot] = refilled;
      }
    } else {
      tokens[slot] = refilled;
    }
    seen[slot] = now;
    if (!this.#limited) return ADMITTED;
    if (tokens[slot]! < 1) return RATE_LIMITED;
    this.#budget = Math.min(this.#budgetBurst, this.#budget + (now - this.#budgetAt) * this.#budgetRate);
    this.#budgetAt = now;
    if (this.#budget < 1) return OVER_BUDGET;
    this.#budget--;
    tokens[slot]!--;
    return ADMITTED;
  }

  /**
   * True the first time it is asked about `hostname` (since its slot was last taken over): its
   * send errors are logged once.
   */
  firstError(hostname: string): boolean {
    const slot = sourceHash(hostname, hostname.includes(":")) & this.#mask;
    if (this.#errorLogged[slot]) return false;
    this.#errorLogged[slot] = 1;
    return true;
  }
}

// FNV-1a over the source's key: an IPv4 address as it is written, an IPv6 address by its /64
// (one host usually owns a whole /64), an IPv4-mapped IPv6 address as the IPv4 address.
function sourceHash(hostname: string, v6: boolean): number {
  let start = 0;
  if (v6) {
    if (hostname.startsWith("::ffff:") && hostname.includes(".")) {
      start = 7;
    } else {
      const bytes = parseIp(hostname);
      let hash = 0x811c9dc5;
      if (bytes) { for (let i = 0; i < Math.min(8, bytes.length); i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193); }
      return mix(hash);
    }
  }
  return mix(fnv(hostname, start));
}

function fnv(text: string, start: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash;
}

// FNV's low bits are weak for short keys; a finalizer spreads every input bit over the index.
function mix(hash: number): number {
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}
