/**
 * Fleet-wide penalties: the gate reports each source it refuses to HAProxy's runtime API, as
 * `data.gpc0` 1 for the source's key in a stick table (0 once the penalty has decayed), so every
 * balancer (and, through HAProxy `peers`, every other one) refuses it at the edge. An update, never
 * `clear table`: peers pass updates of an entry on, not its removal.
 *
 * Reports never wait on the gate's path: each runtime API has its own queue, coalesced per source
 * (only the latest value is sent), sent in batches of up to 100 commands per connection. A failing
 * API is logged once (and once when it answers again), retried after 0.5 s, doubling to 30 s; once
 * it answers again, every source refused now is sent again.
 *
 * @module
 */

import { type Logger, silentLogger } from "../log.ts";
import { sourceKey } from "../gate/penalties.ts";
import type { Transport } from "../types.ts";
import { runtimeApiExchange, type RuntimeApiTarget, tableKey, type TableKeyType, tableTypeIn } from "./runtime_api.ts";

export { isTableName, parseRuntimeApiTargets, type RuntimeApiTarget, tableKey } from "./runtime_api.ts";

/** Commands per connection: a few KiB, well under HAProxy's 16 KiB command line. */
const BATCH = 100;
/** The end of a refusal is looked for at most this often (one timer, one pass over the sources). */
const SWEEP_MS = 250;

/**
 * Options of {@linkcode HaproxyPenaltyReporter}.
 *
 * @example
 * ```ts ignore
 * const options: HaproxyReporterOptions = { transport, targets: parseRuntimeApiTargets("unix:/run/haproxy.sock"), table: "penalised" };
 * ```
 */
export interface HaproxyReporterOptions {
  /** How to connect. */
  transport: Transport;
  /** The runtime APIs, one per balancer. */
  targets: readonly RuntimeApiTarget[];
  /** The stick table (checked with {@linkcode isTableName}). */
  table: string;
  /** Where the failing and recovering APIs are logged. */
  logger?: Logger;
  /** Sources reported at once; beyond it, new ones are refused by the gate alone. @default {65536} */
  maxSources?: number;
  /** A connection and its answer may take this long. @default {5000} */
  timeoutMs?: number;
  /** First pause before retrying a failing API; it doubles up to `maxRetryMs`. @default {500} */
  firstRetryMs?: number;
  /** @default {30000} */
  maxRetryMs?: number;
  /** Clock in ms: the penalty table's. @default {Date.now} */
  now?: () => number;
}

interface Source {
  address: string;
  untilMs: number;
}

interface TargetState {
  target: RuntimeApiTarget;
  /** Per source key: the address and the value (1 refused, 0 admitted again) still to send. */
  pending: Map<string, { address: string; value: 0 | 1 }>;
  type: TableKeyType | undefined;
  failing: boolean;
  retryMs: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  busy: boolean;
  warnedIpv6: boolean;
}

/**
 * Reports refused sources to HAProxy's runtime APIs. Give {@linkcode refusing} to the penalty
 * table as its `onRefusing`.
 *
 * @example
 * ```ts ignore
 * import { PenaltyBox } from "../gate/penalties.ts";
 *
 * const reporter = new HaproxyPenaltyReporter({ transport, targets: parseRuntimeApiTargets("unix:/run/haproxy.sock"), table: "penalised" });
 * const box = new PenaltyBox({ onRefusing: reporter.refusing });
 * // …
 * reporter.close();
 * ```
 */
export class HaproxyPenaltyReporter {
  readonly #transport: Transport;
  readonly #table: string;
  readonly #logger: Logger;
  readonly #maxSources: number;
  readonly #timeoutMs: number;
  readonly #firstRetryMs: number;
  readonly #maxRetryMs: number;
  readonly #now: () => number;
  readonly #targets: TargetState[];
  /** Sources refused now, by source key (an IPv6 /64 is one). */
  readonly #refused = new Map<string, Source>();
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #sweepAt = Infinity;
  #closed = false;
  #overflowLogged = false;

  /**
   * @param options Where to report, and how.
   */
  constructor(options: HaproxyReporterOptions) {
    this.#transport = options.transport;
    this.#table = options.table;
    this.#logger = options.logger ?? silentLogger;
    this.#maxSources = options.maxSources ?? 65536;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#firstRetryMs = options.firstRetryMs ?? 500;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    this.#targets = options.targets.map((target) => ({
      target,
      pending: new Map(),
      type: undefined,
      failing: false,
      retryMs: this.#firstRetryMs,
      timer: undefined,
      busy: false,
      warnedIpv6: false,
    }));
  }

  /**
   * The penalty table's `onRefusing`: `address`'s source is refused until `untilMs`. Returns at
   * once; the report goes out later.
   *
   * @param address An address of the source.
   * @param untilMs When its refusal ends (ms, the table's clock).
   */
  readonly refusing = (address: string, untilMs: number): void => {
    if (this.#closed) return;
    const key = sourceKey(address);
    if (key === undefined) return;
    const known = this.#refused.get(key);
    if (known) {
      known.untilMs = Math.max(known.untilMs, untilMs);
      return;
    }
    if (this.#refused.size >= this.#maxSources) {
      if (!this.#overflowLogged) {
        this.#overflowLogged = true;
        this.#logger.log({
          event: "error",
          message: `HAProxy reports: ${this.#maxSources} sources refused at once; further ones are refused here only`,
        });
      }
      return;
    }
    this.#refused.set(key, { address, untilMs });
    for (const state of this.#targets) this.#enqueue(state, key, address, 1);
    this.#scheduleSweep(untilMs);
  };

  /** Sources reported as refused now. */
  get refusedSources(): number {
    return this.#refused.size;
  }

  /** Stops reporting: timers cleared, queues dropped. HAProxy's entries stay until they expire there. */
  close(): void {
    this.#closed = true;
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    for (const state of this.#targets) {
      if (state.timer !== undefined) clearTimeout(state.timer);
      state.pending.clear();
    }
  }

  #enqueue(state: TargetState, key: string, address: string, value: 0 | 1): void {
    // Coalesced: a source has one pending value, the latest. Bounded: a key is in `pending` only
    // while refused or just admitted again; beyond twice the sources, the oldest goes (a 1 is sent
    // again on recovery; a lost 0 leaves the entry until the table's `expire`).
    state.pending.delete(key);
    if (state.pending.size >= 2 * this.#maxSources) state.pending.delete(state.pending.keys().next().value!);
    state.pending.set(key, { address, value });
    this.#kick(state, 0);
  }

  #kick(state: TargetState, ms: number): void {
    if (this.#closed || state.busy || state.timer !== undefined) return;
    // Later, not now: the gate's penalty path only marks; sources penalised together go in one batch.
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void this.#drain(state);
    }, ms);
  }

  #scheduleSweep(untilMs: number): void {
    if (this.#closed || untilMs >= this.#sweepAt) return;
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    const now = this.#now();
    this.#sweepAt = Math.max(untilMs, now + SWEEP_MS);
    this.#sweep = setTimeout(() => this.#sweepNow(), this.#sweepAt - now);
  }

  #sweepNow(): void {
    this.#sweep = undefined;
    this.#sweepAt = Infinity;
    const now = this.#now();
    let next = Infinity;
    for (const [key, source] of this.#refused) {
      if (source.untilMs <= now) {
        this.#refused.delete(key);
        for (const state of this.#targets) this.#enqueue(state, key, source.address, 0);
      } else next = Math.min(next, source.untilMs);
    }
    if (next !== Infinity) this.#scheduleSweep(next);
  }

  async #drain(state: TargetState): Promise<void> {
    if (this.#closed || state.busy) return;
    state.busy = true;
    let batch: [string, { address: string; value: 0 | 1 }][] = [];
    // After a failure it may have restarted with an empty table: everything refused now, again.
    if (state.failing) {
      for (const [key, source] of this.#refused) {
        if (!state.pending.has(key)) state.pending.set(key, { address: source.address, value: 1 });
      }
    }
    try {
      while (state.pending.size > 0 && !this.#closed) {
        state.type ??= tableTypeIn(await this.#exchange(state, "show table"), this.#table);
        batch = [];
        const commands: string[] = [];
        for (const entry of state.pending) {
          if (batch.length === BATCH) break;
          batch.push(entry);
          const key = tableKey(entry[1].address, state.type);
          if (key === undefined) {
            this.#warnIpv6(state);
            continue;
          }
          commands.push(`set table ${this.#table} key ${key} data.gpc0 ${entry[1].value}`);
        }
        for (const [key] of batch) state.pending.delete(key);
        if (commands.length > 0) {
          const answer = (await this.#exchange(state, commands.join("; "))).trim();
          if (answer !== "") throw new Error(answer.split("\n")[0]!.slice(0, 200));
        }
        batch = [];
        if (state.failing) this.#recovered(state);
      }
    } catch (error) {
      // Sent again, unless a newer value came meanwhile.
      for (const [key, entry] of batch) if (!state.pending.has(key)) state.pending.set(key, entry);
      state.type = undefined;
      if (!state.failing) {
        state.failing = true;
        const message = error instanceof Error ? error.message : String(error);
        this.#logger.log({ event: "haproxy-runtime", target: state.target.label, ok: false, message });
      }
      state.busy = false;
      const pause = state.retryMs;
      state.retryMs = Math.min(state.retryMs * 2, this.#maxRetryMs);
      return this.#kick(state, pause);
    }
    state.busy = false;
  }

  #recovered(state: TargetState): void {
    state.failing = false;
    state.retryMs = this.#firstRetryMs;
    this.#logger.log({ event: "haproxy-runtime", target: state.target.label, ok: true });
  }

  #warnIpv6(state: TargetState): void {
    if (state.warnedIpv6) return;
    state.warnedIpv6 = true;
    this.#logger.log({
      event: "error",
      message: `HAProxy runtime API ${state.target.label}: stick table "${this.#table}" has type ip, ` +
        `so IPv6 sources are not reported (use type ipv6 with src,ipmask(32,64))`,
    });
  }

  #exchange(state: TargetState, line: string): Promise<string> {
    return runtimeApiExchange(this.#transport, state.target, line, this.#timeoutMs);
  }
}
