/**
 * One fault proxy: its listener, its toxics and its open connections.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import type { Listener, StreamSocket, Transport } from "../types.ts";
import { errorMessage } from "../log.ts";
import { parseIp } from "../ip.ts";
import { type ByteCounts, Link, type LinkOwner } from "./link.ts";
import { SeededRandom } from "./prng.ts";
import { targets, wait } from "./toxics.ts";
import { FaultsError, type FaultsEvent, parseHostPort, type ProxyInfo, type Toxic, type ToxicStream } from "./model.ts";

/** Byte counters by direction, for /metrics. */
export interface ProxyCounters {
  /** The counts for these labels (the same object for the same labels), looked up once per connection. */
  counts(labels: MetricLabels): ByteCounts;
}

/**
 * TLS for a fault server's proxies.
 *
 * @example
 * ```ts
 * import type { FaultsTlsOptions } from "./proxies.ts";
 *
 * const tls: FaultsTlsOptions = { cert: "-----BEGIN CERTIFICATE-----…", key: "…", upstreamCa: "…" };
 * ```
 */
export interface FaultsTlsOptions {
  /** The certificate chain (PEM) proxies with `listen_tls` present to their clients. */
  cert?: string;
  /** Its private key (PEM). */
  key?: string;
  /** A CA (PEM) trusted for `upstream_tls`, in addition to the system roots. */
  upstreamCa?: string;
}

/** What a proxy is configured with: where it listens, where it forwards, and TLS on either side. */
export interface ProxyConfig {
  name: string;
  listen: string;
  upstream: string;
  listenTls: boolean;
  upstreamTls: boolean;
}

/** The labels of toxiproxy's proxy metrics. */
export interface MetricLabels {
  direction: ToxicStream;
  proxy: string;
  listener: string;
  upstream: string;
}

/**
 * A proxy that listens, forwards each connection to its upstream, and passes the bytes
 * through its toxics.
 *
 * @example
 * ```ts ignore
 * import { FaultProxy } from "./proxies.ts";
 *
 * const proxy = new FaultProxy(transport, counters, "42", { name: "db", listen: "127.0.0.1:0", upstream: "127.0.0.1:5432" });
 * await proxy.start();
 * ```
 */
export class FaultProxy implements LinkOwner {
  readonly name: string;
  listen: string;
  upstream: string;
  listenTls: boolean;
  upstreamTls: boolean;
  #enabled = false;
  #toxics: Toxic[] = [];
  #listener?: Listener;
  readonly #links = new Set<Link>();
  #pending = new Set<StreamSocket>();
  #connections = 0;
  #stopped = new AbortController();

  /**
   * @param transport The sockets to listen and connect with.
   * @param counters Where byte counts go.
   * @param seed The server's seed: random choices derive from it, the name and the connection number.
   * @param config Name, listen address, upstream, TLS on either side.
   * @param onEvent Where connection events go.
   * @param tls The server's certificate and upstream CA.
   */
  constructor(
    readonly transport: Transport,
    readonly counters: ProxyCounters,
    readonly seed: string,
    config: ProxyConfig,
    readonly onEvent: (event: FaultsEvent) => void = () => {},
    readonly tls: FaultsTlsOptions = {},
  ) {
    this.name = config.name;
    this.listen = config.listen;
    this.upstream = config.upstream;
    this.listenTls = config.listenTls;
    this.upstreamTls = config.upstreamTls;
  }

  /** Whether it is listening. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** As the API shows it. */
  info(): ProxyInfo {
    return {
      name: this.name,
      listen: this.listen,
      upstream: this.upstream,
      enabled: this.#enabled,
      ...(this.listenTls && { listen_tls: true }),
      ...(this.upstreamTls && { upstream_tls: true }),
      toxics: this.list(),
    };
  }

  /** Every toxic: the upstream ones, then the downstream ones (toxiproxy's order). */
  list(): Toxic[] {
    return [...this.toxics("upstream"), ...this.toxics("downstream")];
  }

  toxics(stream: ToxicStream): readonly Toxic[] {
    return this.#toxics.filter((toxic) => toxic.stream === stream);
  }

  counts(stream: ToxicStream): ByteCounts {
    return this.counters.counts({
      direction: stream,
      proxy: this.name,
      listener: this.listen,
      upstream: this.upstream,
    });
  }

  /** Starts listening; `listen` becomes the address bound. A listen failure is a 500, as in toxiproxy. */
  async start(): Promise<void> {
    if (this.#enabled) return;
    const endpoint = parseHostPort(this.listen, "listen");
    try {
      // Resolved first, as toxiproxy's net.Listen does: "localhost:0" becomes 127.0.0.1:<port>.
      if (parseIp(endpoint.hostname) === undefined && this.transport.lookup) {
        endpoint.hostname = await this.transport.lookup(endpoint.hostname);
      }
      this.#listener = await this.transport.listen(endpoint, {
        onSocket: (socket) => void this.#accept(socket),
        onError: () => {},
        onHandshakeError: () => {}, // a client that fails the handshake never reaches the upstream
      }, { resettable: true, ...(this.listenTls && { tls: { cert: this.tls.cert!, key: this.tls.key! } }) });
    } catch (error) {
      throw new FaultsError(`listen ${this.listen}: ${errorMessage(error)}`, 500);
    }
    this.listen = formatAddress(this.#listener.addr);
    this.#stopped = new AbortController();
    this.#enabled = true;
  }

  /** Stops listening and closes every connection. */
  async stop(): Promise<void> {
    if (!this.#enabled) return;
    this.#enabled = false;
    this.#stopped.abort(); // ends slow_open waits
    const listener = this.#listener;
    this.#listener = undefined;
    for (const link of this.#links) link.destroy();
    for (const socket of this.#pending) socket.close();
    await listener?.close();
  }

  /** Adds a toxic; its name must be new over both streams. */
  addToxic(toxic: Toxic): Toxic {
    if (this.#toxics.some((t) => t.name === toxic.name)) throw new FaultsError("toxic already exists", 409);
    this.#toxics.push(toxic);
    this.#sync(toxic.stream);
    return toxic;
  }

  /** The toxic of that name, or a 404. */
  getToxic(name: string): Toxic {
    const toxic = this.#toxics.find((t) => t.name === name);
    if (!toxic) throw new FaultsError("toxic not found", 404);
    return toxic;
  }

  /** Replaces the toxic of that name (same name and stream) with `updated`. */
  replaceToxic(updated: Toxic): Toxic {
    const index = this.#toxics.findIndex((t) => t.name === updated.name);
    if (index < 0) throw new FaultsError("toxic not found", 404);
    this.#toxics[index] = updated;
    this.#sync(updated.stream);
    return updated;
  }

  /** Removes the toxic of that name. */
  removeToxic(name: string): void {
    const toxic = this.getToxic(name);
    this.#toxics = this.#toxics.filter((t) => t !== toxic);
    this.#sync(toxic.stream);
  }

  /** Removes every toxic. */
  clearToxics(): void {
    this.#toxics = [];
    this.#sync("upstream");
    this.#sync("downstream");
  }

  #sync(stream: ToxicStream): void {
    for (const link of this.#links) link.sync(stream);
  }

  /** slow_open: how long to wait before connecting upstream (the longest delay of those that apply). */
  #openDelay(client: StreamSocket, number: number): number {
    const random = new SeededRandom(`${this.seed}/${this.name}/${number}/open`);
    let delay = 0;
    for (const toxic of this.#toxics) {
      if (toxic.type !== "slow_open") continue;
      if (random.next() < toxic.toxicity && targets(toxic, client.remoteAddr)) {
        delay = Math.max(delay, toxic.attributes.delay ?? 0);
      }
    }
    return delay;
  }

  async #accept(client: StreamSocket): Promise<void> {
    const number = ++this.#connections;
    const remote = formatAddress(client.remoteAddr);
    const connectedAt = Date.now();
    this.onEvent({ event: "connect", proxy: this.name, remote });
    this.#pending.add(client);
    let upstream: StreamSocket;
    try {
      await wait(this.#openDelay(client, number), this.#stopped.signal);
      if (!this.#enabled) throw new Error("stopped");
      const ca = this.tls.upstreamCa;
      upstream = await this.transport.connect(parseHostPort(this.upstream, "upstream"), {
        resettable: true,
        ...(this.upstreamTls && { tls: ca === undefined ? {} : { ca } }),
      });
    } catch (error) {
      client.close(); // as toxiproxy: accepted, then closed when the upstream cannot be reached
      this.onEvent({ event: "upstream-failed", proxy: this.name, remote, message: errorMessage(error) });
      return;
    } finally {
      this.#pending.delete(client);
    }
    if (!this.#enabled) {
      client.close();
      upstream.close();
      return;
    }
    const link = new Link(this, client, upstream, `${this.seed}/${this.name}/${number}`);
    this.#links.add(link);
    try {
      await link.run();
    } finally {
      this.#links.delete(link);
      this.onEvent({
        event: "close",
        proxy: this.name,
        remote,
        bytesIn: link.bytesIn,
        bytesOut: link.bytesOut,
        durationMs: Date.now() - connectedAt,
        toxics: [...link.applied],
      });
    }
  }
}
