/**
 * The fault proxies of one server and every operation on them, as typed methods: what the
 * HTTP API calls, and what a test suite may call directly.
 *
 * @module
 */

import type { Transport } from "../types.ts";
import {
  FaultsError,
  parseProxyInput,
  parseProxyUpdate,
  parseToxicInput,
  type ProxyInfo,
  type ProxyInput,
  type Toxic,
  type ToxicInput,
  updateToxic,
} from "./model.ts";
import { FaultProxy, type MetricLabels } from "./proxies.ts";

/**
 * The proxies of a fault server.
 *
 * @example In process, no HTTP
 * ```ts ignore
 * import { FaultsController } from "./controller.ts";
 *
 * const faults = new FaultsController(transport, "42");
 * const proxy = await faults.createProxy({ name: "db", upstream: "127.0.0.1:5432" });
 * faults.addToxic("db", { type: "latency", attributes: { latency: 100 } });
 * ```
 */
export class FaultsController {
  readonly #proxies = new Map<string, FaultProxy>();
  readonly #counters = new Map<string, { labels: MetricLabels; received: number; sent: number }>();
  readonly #counters_api = {
    count: (labels: MetricLabels, kind: "received" | "sent", bytes: number) => {
      const key = JSON.stringify([labels.direction, labels.proxy, labels.listener, labels.upstream]);
      let counter = this.#counters.get(key);
      if (!counter) this.#counters.set(key, counter = { labels, received: 0, sent: 0 });
      counter[kind] += bytes;
    },
  };

  /**
   * Creates an empty set of proxies.
   *
   * @param transport The sockets the proxies listen and connect with.
   * @param seed Every random choice derives from it, the proxy name and the connection number.
   */
  constructor(readonly transport: Transport, readonly seed: string) {}

  /** Every proxy, by name. */
  listProxies(): Record<string, ProxyInfo> {
    return Object.fromEntries([...this.#proxies].map(([name, proxy]) => [name, proxy.info()]));
  }

  /** The proxy of that name; a 404 {@linkcode FaultsError} when there is none. */
  getProxy(name: string): ProxyInfo {
    return this.#get(name).info();
  }

  /** Creates a proxy and (unless `enabled: false`) starts it; 409 when the name is taken. */
  async createProxy(input: ProxyInput): Promise<ProxyInfo> {
    const config = parseProxyInput(input);
    if (this.#proxies.has(config.name)) throw new FaultsError("proxy already exists", 409);
    const proxy = new FaultProxy(this.transport, this.#counters_api, this.seed, config);
    if (config.enabled) await proxy.start();
    if (this.#proxies.has(config.name)) { // created meanwhile, while this one was starting
      await proxy.stop();
      throw new FaultsError("proxy already exists", 409);
    }
    this.#proxies.set(config.name, proxy);
    return proxy.info();
  }

  /**
   * Creates or replaces every proxy of `inputs`, after checking them all (a bad one changes
   * nothing). A proxy with the same listen address and upstream is kept as it is.
   */
  async populate(inputs: readonly ProxyInput[]): Promise<ProxyInfo[]> {
    if (!Array.isArray(inputs)) throw new FaultsError("bad request body: expected a JSON array of proxies", 400);
    const configs = inputs.map((input, i) => parseProxyInput(input, ` at proxy ${i + 1}`));
    const done: ProxyInfo[] = [];
    for (const config of configs) {
      const existing = this.#proxies.get(config.name);
      if (existing && !differs(existing, config)) {
        done.push(existing.info());
        continue;
      }
      await existing?.stop();
      this.#proxies.delete(config.name);
      const proxy = new FaultProxy(this.transport, this.#counters_api, this.seed, config);
      try {
        if (config.enabled) await proxy.start();
      } catch (error) {
        throw Object.assign(error as FaultsError, { proxies: done });
      }
      this.#proxies.set(config.name, proxy);
      done.push(proxy.info());
    }
    return done;
  }

  /**
   * Changes a proxy's `listen`, `upstream` or `enabled`: a new address restarts it; disabling
   * closes its listener and its connections.
   */
  async updateProxy(name: string, update: Partial<ProxyInput>): Promise<ProxyInfo> {
    const proxy = this.#get(name);
    const input = parseProxyUpdate(update);
    const next = { listen: input.listen ?? proxy.listen, upstream: input.upstream ?? proxy.upstream };
    const enabled = input.enabled ?? proxy.enabled;
    if (differs(proxy, next)) {
      const wasEnabled = proxy.enabled;
      await proxy.stop();
      proxy.listen = next.listen;
      proxy.upstream = next.upstream;
      if (wasEnabled && enabled) await proxy.start();
    }
    if (enabled && !proxy.enabled) await proxy.start();
    if (!enabled) await proxy.stop();
    return proxy.info();
  }

  /** Stops and removes a proxy. */
  async removeProxy(name: string): Promise<void> {
    const proxy = this.#get(name);
    this.#proxies.delete(name);
    await proxy.stop();
  }

  /** A proxy's toxics. */
  listToxics(proxy: string): Toxic[] {
    return this.#get(proxy).list();
  }

  /** Adds a toxic to a proxy (defaults: downstream, toxicity 1, name `<type>_<stream>`). */
  addToxic(proxy: string, input: ToxicInput): Toxic {
    const target = this.#get(proxy);
    return target.addToxic(parseToxicInput(input));
  }

  /** One toxic of a proxy. */
  getToxic(proxy: string, name: string): Toxic {
    return this.#get(proxy).getToxic(name);
  }

  /** Changes a toxic's attributes (merged into the old ones) or toxicity. */
  updateToxic(proxy: string, name: string, update: Partial<ToxicInput>): Toxic {
    const target = this.#get(proxy);
    return target.replaceToxic(updateToxic(target.getToxic(name), update));
  }

  /** Removes a toxic (a `timeout` toxic's held connections close). */
  removeToxic(proxy: string, name: string): void {
    this.#get(proxy).removeToxic(name);
  }

  /** Re-enables every proxy and removes every toxic. */
  async reset(): Promise<void> {
    for (const proxy of this.#proxies.values()) {
      await proxy.start();
      proxy.clearToxics();
    }
  }

  /** Stops every proxy. */
  async close(): Promise<void> {
    await Promise.all([...this.#proxies.values()].map((proxy) => proxy.stop()));
  }

  /** toxiproxy's byte counters, in Prometheus' text format. */
  metrics(): string {
    const lines: string[] = [];
    for (const kind of ["received", "sent"] as const) {
      const name = `toxiproxy_proxy_${kind}_bytes_total`;
      lines.push(
        `# HELP ${name} Bytes ${kind === "received" ? "received from" : "sent to"} a peer, per proxy and direction`,
      );
      lines.push(`# TYPE ${name} counter`);
      for (const { labels, ...counts } of this.#counters.values()) {
        const text = Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1)
          .map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",");
        lines.push(`${name}{${text}} ${counts[kind]}`);
      }
    }
    return lines.join("\n") + "\n";
  }

  #get(name: string): FaultProxy {
    const proxy = this.#proxies.get(name);
    if (!proxy) throw new FaultsError("proxy not found", 404);
    return proxy;
  }
}

function differs(proxy: { listen: string; upstream: string }, next: { listen: string; upstream: string }): boolean {
  return next.upstream !== proxy.upstream || !sameListen(proxy.listen, next.listen);
}

/** Whether `wanted` names the address `bound` (port 0 and host names match what was bound from them). */
function sameListen(bound: string, wanted: string): boolean {
  if (bound === wanted) return true;
  const port = /:(\d+)$/.exec(wanted)?.[1];
  return port !== undefined && port !== "0" && bound.endsWith(`:${port}`) && /^localhost:/.test(wanted);
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}
