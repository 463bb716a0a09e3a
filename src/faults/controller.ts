/**
 * The fault proxies of one server and every operation on them, as typed methods: what the
 * HTTP API calls, and what a test suite may call directly.
 *
 * @module
 */

import type { Transport } from "../types.ts";
import { MetricsBuilder, renderMetrics } from "../metrics/exposition.ts";
import {
  FaultsError,
  type FaultsEvent,
  parseProxyInput,
  parseProxyUpdate,
  parseToxicInput,
  type ProxyInfo,
  type ProxyInput,
  type Toxic,
  type ToxicInput,
  updateToxic,
} from "./model.ts";
import { FaultProxy, type FaultsTlsOptions, type MetricLabels, type ProxyConfig } from "./proxies.ts";

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
  // Looked up once per connection and direction; the link then adds to the numbers itself.
  readonly #counters_api = {
    counts: (labels: MetricLabels) => {
      const key = JSON.stringify([labels.direction, labels.proxy, labels.listener, labels.upstream]);
      let counter = this.#counters.get(key);
      if (!counter) this.#counters.set(key, counter = { labels, received: 0, sent: 0 });
      return counter;
    },
  };

  /**
   * Creates an empty set of proxies.
   *
   * @param transport The sockets the proxies listen and connect with.
   * @param seed Every random choice derives from it, the proxy name and the connection number.
   * @param onEvent Where changes and connections are reported.
   * @param tls The certificate for `listen_tls` proxies and the CA for `upstream_tls` ones.
   */
  constructor(
    readonly transport: Transport,
    readonly seed: string,
    readonly onEvent: (event: FaultsEvent) => void = () => {},
    readonly tls: FaultsTlsOptions = {},
  ) {}

  #needsCertificate(listenTls: boolean, where = ""): void {
    if (listenTls && (this.tls.cert === undefined || this.tls.key === undefined)) {
      throw new FaultsError(`listen_tls needs the server's certificate and key (--tls-cert, --tls-key)${where}`, 400);
    }
  }

  #proxyEvent(event: "proxy-created" | "proxy-updated", proxy: ProxyInfo): ProxyInfo {
    const { name, listen, upstream, enabled } = proxy;
    this.onEvent({ event, proxy: name, listen, upstream, enabled });
    return proxy;
  }

  #toxicEvent(event: "toxic-added" | "toxic-updated", proxy: string, toxic: Toxic): Toxic {
    this.onEvent({ event, proxy, toxic });
    return toxic;
  }

  #newProxy(input: Required<ProxyInput>): FaultProxy {
    this.#needsCertificate(input.listen_tls);
    return new FaultProxy(this.transport, this.#counters_api, this.seed, configOf(input), this.onEvent, this.tls);
  }

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
    const proxy = this.#newProxy(config);
    if (config.enabled) await proxy.start();
    if (this.#proxies.has(config.name)) { // created meanwhile, while this one was starting
      await proxy.stop();
      throw new FaultsError("proxy already exists", 409);
    }
    this.#proxies.set(config.name, proxy);
    return this.#proxyEvent("proxy-created", proxy.info());
  }

  /**
   * Creates or replaces every proxy of `inputs`, after checking them all (a bad one changes
   * nothing). A proxy with the same listen address and upstream is kept as it is.
   */
  async populate(inputs: readonly ProxyInput[]): Promise<ProxyInfo[]> {
    if (!Array.isArray(inputs)) throw new FaultsError("bad request body: expected a JSON array of proxies", 400);
    const configs = inputs.map((input, i) => parseProxyInput(input, ` at proxy ${i + 1}`));
    configs.forEach((config, i) => this.#needsCertificate(config.listen_tls, ` at proxy ${i + 1}`));
    const done: ProxyInfo[] = [];
    for (const config of configs) {
      const existing = this.#proxies.get(config.name);
      if (existing && !differs(existing, configOf(config))) {
        done.push(existing.info());
        continue;
      }
      await existing?.stop();
      this.#proxies.delete(config.name);
      const proxy = this.#newProxy(config);
      try {
        if (config.enabled) await proxy.start();
      } catch (error) {
        throw Object.assign(error as FaultsError, { proxies: done });
      }
      this.#proxies.set(config.name, proxy);
      done.push(this.#proxyEvent("proxy-created", proxy.info()));
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
    const next = {
      listen: input.listen ?? proxy.listen,
      upstream: input.upstream ?? proxy.upstream,
      listenTls: input.listen_tls ?? proxy.listenTls,
      upstreamTls: input.upstream_tls ?? proxy.upstreamTls,
    };
    this.#needsCertificate(next.listenTls);
    const enabled = input.enabled ?? proxy.enabled;
    if (differs(proxy, next)) {
      const wasEnabled = proxy.enabled;
      await proxy.stop();
      Object.assign(proxy, next);
      if (wasEnabled && enabled) await proxy.start();
    }
    if (enabled && !proxy.enabled) await proxy.start();
    if (!enabled) await proxy.stop();
    return this.#proxyEvent("proxy-updated", proxy.info());
  }

  /** Stops and removes a proxy. */
  async removeProxy(name: string): Promise<void> {
    const proxy = this.#get(name);
    this.#proxies.delete(name);
    await proxy.stop();
    this.onEvent({ event: "proxy-removed", proxy: name });
  }

  /** A proxy's toxics. */
  listToxics(proxy: string): Toxic[] {
    return this.#get(proxy).list();
  }

  /** Adds a toxic to a proxy (defaults: downstream, toxicity 1, name `<type>_<stream>`). */
  addToxic(proxy: string, input: ToxicInput): Toxic {
    const target = this.#get(proxy);
    return this.#toxicEvent("toxic-added", proxy, target.addToxic(parseToxicInput(input)));
  }

  /** One toxic of a proxy. */
  getToxic(proxy: string, name: string): Toxic {
    return this.#get(proxy).getToxic(name);
  }

  /** Changes a toxic's attributes (merged into the old ones) or toxicity. */
  updateToxic(proxy: string, name: string, update: Partial<ToxicInput>): Toxic {
    const target = this.#get(proxy);
    return this.#toxicEvent("toxic-updated", proxy, target.replaceToxic(updateToxic(target.getToxic(name), update)));
  }

  /** Removes a toxic (a `timeout` toxic's held connections close). */
  removeToxic(proxy: string, name: string): void {
    this.#get(proxy).removeToxic(name);
    this.onEvent({ event: "toxic-removed", proxy, toxic: name });
  }

  /** Re-enables every proxy and removes every toxic. */
  async reset(): Promise<void> {
    for (const proxy of this.#proxies.values()) {
      await proxy.start();
      proxy.clearToxics();
    }
    this.onEvent({ event: "reset" });
  }

  /** Stops every proxy. */
  async close(): Promise<void> {
    await Promise.all([...this.#proxies.values()].map((proxy) => proxy.stop()));
  }

  /** toxiproxy's byte counters, in Prometheus' text format. */
  metrics(): string {
    const metrics = new MetricsBuilder();
    for (const kind of ["received", "sent"] as const) {
      const samples = [...this.#counters.values()].map(({ labels, ...counts }) => ({
        labels: { ...labels },
        value: counts[kind],
      }));
      metrics.counter(
        `toxiproxy_proxy_${kind}_bytes_total`,
        `Bytes ${kind === "received" ? "received from" : "sent to"} a peer, per proxy and direction`,
        samples,
      );
    }
    return renderMetrics(metrics.families);
  }

  #get(name: string): FaultProxy {
    const proxy = this.#proxies.get(name);
    if (!proxy) throw new FaultsError("proxy not found", 404);
    return proxy;
  }
}

type Addresses = Omit<ProxyConfig, "name">;

function configOf(input: Required<ProxyInput>): ProxyConfig {
  const { name, listen, upstream } = input;
  return { name, listen, upstream, listenTls: input.listen_tls, upstreamTls: input.upstream_tls };
}

function differs(proxy: Addresses, next: Addresses): boolean {
  return next.upstream !== proxy.upstream || !sameListen(proxy.listen, next.listen) ||
    next.listenTls !== proxy.listenTls || next.upstreamTls !== proxy.upstreamTls;
}

/** Whether `wanted` names the address `bound` (port 0 and host names match what was bound from them). */
function sameListen(bound: string, wanted: string): boolean {
  if (bound === wanted) return true;
  const port = /:(\d+)$/.exec(wanted)?.[1];
  return port !== undefined && port !== "0" && bound.endsWith(`:${port}`) && /^localhost:/.test(wanted);
}
