/**
 * The gate's per-source count of connections waiting for their token (OpenSSH's
 * `PerSourceMaxStartups`): a source (IPv4 address, IPv6 /64) at its cap is refused at accept, so
 * one source cannot hold every descriptor with idle connections while others are shut out.
 *
 * @module
 */

import { sourceKey } from "./penalties.ts";

/**
 * Connections waiting for their token, per source. An entry lives only while its count is above
 * zero: the table holds at most one entry per waiting connection.
 *
 * @example
 * ```ts
 * import { PendingPerSource } from "./_pending_sources.ts";
 *
 * const pending = new PendingPerSource(2);
 * const a = pending.add("192.0.2.7");
 * pending.add("192.0.2.7");
 * console.log(pending.isFull("192.0.2.7"), pending.isFull("192.0.2.8")); // true false
 * pending.release(a);
 * console.log(pending.isFull("192.0.2.7"), pending.sources); // false 1
 * ```
 */
export class PendingPerSource {
  #max: number;
  #counts = new Map<string, number>();

  /**
   * Creates an empty table.
   *
   * @param max How many connections one source may have waiting.
   */
  constructor(max: number) {
    this.#max = max;
  }

  /**
   * Whether the source of `address` has `max` connections waiting already.
   *
   * @param address The peer's IP address.
   * @returns True when one more would exceed the cap (never for what is not an IP address).
   */
  isFull(address: string): boolean {
    // Asked at every accept: with nothing waiting, no address to parse.
    if (this.#counts.size === 0) return false;
    const key = sourceKey(address);
    return key !== undefined && (this.#counts.get(key) ?? 0) >= this.#max;
  }

  /**
   * Counts one more connection of `address`'s source as waiting.
   *
   * @param address The peer's IP address.
   * @returns The source's key, to pass to {@linkcode release}; `undefined` (nothing counted) when not an IP address.
   */
  add(address: string): string | undefined {
    const key = sourceKey(address);
    if (key !== undefined) this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    return key;
  }

  /**
   * Counts one connection of a source as no longer waiting (it knocked, timed out or closed).
   *
   * @param key What {@linkcode add} returned for it.
   */
  release(key: string | undefined): void {
    if (key === undefined) return;
    const count = (this.#counts.get(key) ?? 0) - 1;
    if (count > 0) this.#counts.set(key, count);
    else this.#counts.delete(key);
  }

  /** Sources with connections waiting now. */
  get sources(): number {
    return this.#counts.size;
  }
}
