/**
 * `echogate faults`: a fault proxy that toxiproxy's clients drive (its HTTP API, 2.12), in
 * process or as a CLI, on every runtime echogate has an adapter for. See docs/faults.md.
 *
 * @module
 */

import { formatAddress } from "../address.ts";
import type { Address, Transport } from "../types.ts";
import { createFaultsHandler } from "./api.ts";
import { FaultsController } from "./controller.ts";
import type { FaultsTlsOptions } from "./proxies.ts";
import type { FaultsEvent, ProxyInfo, ProxyInput, Toxic, ToxicInput } from "./model.ts";

export { FaultsController } from "./controller.ts";
export { createFaultsHandler, MAX_BODY_BYTES } from "./api.ts";
export {
  FaultsError,
  type FaultsEvent,
  type ProxyInfo,
  type ProxyInput,
  type Toxic,
  TOXIC_TYPES,
  type ToxicInput,
  type ToxicStream,
  type ToxicType,
} from "./model.ts";
export { SeededRandom } from "./prng.ts";
export type { FaultsTlsOptions } from "./proxies.ts";

/**
 * toxiproxy's port, the default of the control API.
 *
 * @example
 * ```ts
 * import { DEFAULT_FAULTS_PORT } from "../mod.ts";
 *
 * console.log(DEFAULT_FAULTS_PORT); // 8474
 * ```
 */
export const DEFAULT_FAULTS_PORT = 8474;

/**
 * Options for {@linkcode serveFaults}.
 *
 * @example
 * ```ts
 * import type { ServeFaultsOptions } from "./mod.ts";
 *
 * const options: Omit<ServeFaultsOptions, "transport"> = { port: 0, seed: 42 };
 * ```
 */
export interface ServeFaultsOptions {
  /** The runtime's sockets and HTTP server (`Transport.serveHttp` is required). */
  transport: Transport;
  /** Where the control API listens. @default {"127.0.0.1"} */
  hostname?: string;
  /** Its port, 0 for a free one. @default {8474} */
  port?: number;
  /**
   * Makes every random choice (toxicity, jitter, slicer sizes) a function of this seed, the
   * proxy's name and the order of connections to it. @default {a random seed}
   */
  seed?: number | string;
  /** Proxies to create at start, as `POST /populate` (toxiproxy's `-config`). */
  proxies?: readonly ProxyInput[];
  /** Called for every change to a proxy or toxic and every connection. */
  onEvent?: (event: FaultsEvent) => void;
  /** The certificate proxies with `listen_tls` present, and a CA trusted for `upstream_tls`. */
  tls?: FaultsTlsOptions;
}

/**
 * A running fault server: the HTTP API on `addr`, and the same operations as methods.
 *
 * @example
 * ```ts ignore
 * const faults = await serveFaults({ port: 0 });
 * const db = await faults.createProxy({ name: "db", upstream: "127.0.0.1:5432" });
 * faults.addToxic("db", { type: "latency", attributes: { latency: 100 } });
 * await faults.close();
 * ```
 */
export interface FaultsServer {
  /** Where the control API listens (the real port when 0 was asked for). */
  readonly addr: Address;
  /** `addr` in printable form, `127.0.0.1:8474`. */
  readonly url: string;
  /** The seed random choices derive from. */
  readonly seed: string;
  /** Every proxy, by name. */
  listProxies(): Record<string, ProxyInfo>;
  /** One proxy; throws a `FaultsError` (status 404) when there is none. */
  getProxy(name: string): ProxyInfo;
  /** Creates and starts a proxy; its `listen` is the real address bound. */
  createProxy(input: ProxyInput): Promise<ProxyInfo>;
  /** Creates or replaces proxies, after checking them all. */
  populate(inputs: readonly ProxyInput[]): Promise<ProxyInfo[]>;
  /** Changes `listen`, `upstream` or `enabled` (false closes its listener and connections). */
  updateProxy(name: string, update: Partial<ProxyInput>): Promise<ProxyInfo>;
  /** Stops and removes a proxy. */
  removeProxy(name: string): Promise<void>;
  /** A proxy's toxics. */
  listToxics(proxy: string): Toxic[];
  /** Adds a toxic (defaults: downstream, toxicity 1, name `<type>_<stream>`); it applies to open connections too. */
  addToxic(proxy: string, input: ToxicInput): Toxic;
  /** One toxic. */
  getToxic(proxy: string, name: string): Toxic;
  /** Changes a toxic's attributes (merged) or toxicity. */
  updateToxic(proxy: string, name: string, update: Partial<ToxicInput>): Toxic;
  /** Removes a toxic. */
  removeToxic(proxy: string, name: string): void;
  /** Re-enables every proxy and removes every toxic. */
  reset(): Promise<void>;
  /** Stops the API and every proxy, closing their connections. */
  close(): Promise<void>;
}

/**
 * Starts a fault server: toxiproxy's HTTP API on the runtime's own HTTP server.
 *
 * @param options The transport, where to listen (default `127.0.0.1:8474`), the seed and the proxies to start with.
 * @returns The running server; `close()` it when done.
 *
 * @example
 * ```ts ignore
 * import { serveFaults } from "./mod.ts";
 * import { transport } from "../../adapters/node.ts";
 *
 * const faults = await serveFaults({ transport, port: 0, seed: 1 });
 * console.log(faults.url);
 * await faults.close();
 * ```
 */
export async function serveFaults(options: ServeFaultsOptions): Promise<FaultsServer> {
  const { transport } = options;
  if (!transport.serveHttp) throw new Error(`The ${transport.runtime} transport has no HTTP server`);
  const seed = String(options.seed ?? Math.floor(Math.random() * 2 ** 32));
  const faults = new FaultsController(transport, seed, options.onEvent, options.tls);
  if (options.proxies) {
    await faults.populate(options.proxies).catch(async (error) => {
      await faults.close();
      throw error;
    });
  }
  const http = await transport.serveHttp(
    { hostname: options.hostname ?? "127.0.0.1", port: options.port ?? DEFAULT_FAULTS_PORT },
    createFaultsHandler(faults),
  ).catch(async (error) => {
    await faults.close();
    throw error;
  });
  let closing: Promise<void> | undefined;
  return {
    addr: http.addr,
    url: formatAddress(http.addr),
    seed,
    listProxies: () => faults.listProxies(),
    getProxy: (name) => faults.getProxy(name),
    createProxy: (input) => faults.createProxy(input),
    populate: (inputs) => faults.populate(inputs),
    updateProxy: (name, update) => faults.updateProxy(name, update),
    removeProxy: (name) => faults.removeProxy(name),
    listToxics: (proxy) => faults.listToxics(proxy),
    addToxic: (proxy, input) => faults.addToxic(proxy, input),
    getToxic: (proxy, name) => faults.getToxic(proxy, name),
    updateToxic: (proxy, name, update) => faults.updateToxic(proxy, name, update),
    removeToxic: (proxy, name) => faults.removeToxic(proxy, name),
    reset: () => faults.reset(),
    close: () => closing ??= Promise.all([http.close(), faults.close()]).then(() => {}),
  };
}
