/**
 * echogate for whichever runtime runs it: the core API with the right transport filled in.
 *
 * ```ts ignore
 * import { sendEcho, serveEcho } from "echogate";
 *
 * const server = await serveEcho({ port: 0 });
 * const port = server.addr.transport === "tcp" ? server.addr.port : 0;
 * const [reply] = await sendEcho({ port, messages: ["hi"] });
 * console.log(new TextDecoder().decode(reply)); // "Echo=>hi"
 * await server.close();
 * ```
 *
 * @module
 */

import * as core from "../src/mod.ts";
import type { CliHost, EchogateServer, FaultsServer, KnockResult, Transport } from "../src/mod.ts";

export * from "../src/mod.ts";

/** The runtimes echogate has adapters for. */
export type RuntimeName = "node" | "deno" | "bun";

/**
 * Names the runtime this code runs on.
 *
 * @returns `"deno"`, `"bun"` or `"node"`.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./mod.ts";
 *
 * console.log(detectRuntime()); // "deno" under deno run
 * ```
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}

/**
 * The current runtime's adapter: its transport, and the CLI host made from it.
 */
export interface Adapter {
  /** The runtime's sockets. */
  readonly transport: Transport;
  /**
   * What the CLI needs from the runtime. Made on first read, once per process: making it puts
   * listeners on the process's streams, so merely loading the adapter does not.
   */
  readonly host: CliHost;
}

let cliHost: CliHost | undefined;

/**
 * Loads the adapter for the current runtime: its transport and its CLI host.
 *
 * @returns The adapter's `transport`, and its `host` (made when first read).
 *
 * @example
 * ```ts ignore
 * import { loadAdapter } from "./mod.ts";
 *
 * const { transport } = await loadAdapter();
 * console.log(transport.runtime);
 * ```
 */
export async function loadAdapter(): Promise<Adapter> {
  const adapter = await importAdapter();
  return {
    transport: adapter.transport,
    get host() {
      return cliHost ??= adapter.createHost();
    },
  };
}

function importAdapter(): Promise<{ transport: Transport; createHost(): CliHost }> {
  // Literal specifiers, so bundlers and the npm build can see every adapter.
  switch (detectRuntime()) {
    case "deno":
      return import("./deno.ts");
    case "bun":
      return import("./bun.ts");
    default:
      return import("./node.ts");
  }
}

async function withTransport<T extends { transport?: Transport }>(options: T): Promise<T & { transport: Transport }> {
  return { ...options, transport: options.transport ?? (await loadAdapter()).transport };
}

/** Makes `transport` optional: the current runtime's is used when it is left out. */
export type WithOptionalTransport<T> = Omit<T, "transport"> & { transport?: Transport };

/**
 * Starts an echo server on the current runtime (default `127.0.0.1:50007`, `chunk` mode).
 *
 * @param options Address, mode, prefix and limits; see {@linkcode core.ServeEchoOptions}.
 * @returns The running server.
 *
 * @example
 * ```ts ignore
 * import { serveEcho } from "./mod.ts";
 *
 * const server = await serveEcho({ port: 0, mode: "line" });
 * console.log(server.url);
 * await server.close();
 * ```
 */
export async function serveEcho(options: WithOptionalTransport<core.ServeEchoOptions> = {}): Promise<EchogateServer> {
  return core.serveEcho(await withTransport(options));
}

/**
 * Starts a gate server on the current runtime (default `127.0.0.1:8001`, token `1`, 5 s timeout).
 *
 * @param options Address, tokens and timeout; see {@linkcode core.ServeGateOptions}.
 * @returns The running server.
 *
 * @example
 * ```ts ignore
 * import { serveGate } from "./mod.ts";
 *
 * const server = await serveGate({ port: 0, tokens: ["s3cret"] });
 * await server.close();
 * ```
 */
export async function serveGate(options: WithOptionalTransport<core.ServeGateOptions> = {}): Promise<EchogateServer> {
  return core.serveGate(await withTransport(options));
}

/**
 * Sends messages to an echo server and returns the replies, on the current runtime.
 *
 * @param options Where to connect and what to send; see {@linkcode core.SendEchoOptions}.
 * @returns One reply per message.
 *
 * @example
 * ```ts ignore
 * import { sendEcho } from "./mod.ts";
 *
 * const replies = await sendEcho({ port: 50007, messages: ["hi", "there"] });
 * ```
 */
export async function sendEcho(options: WithOptionalTransport<core.SendEchoOptions> = {}): Promise<Uint8Array[]> {
  return core.sendEcho(await withTransport(options));
}

/**
 * Knocks on a gate server, on the current runtime.
 *
 * @param options Where to knock, the token and the delay; see {@linkcode core.KnockGateOptions}.
 * @returns Whether we were welcomed, and the reply.
 *
 * @example
 * ```ts ignore
 * import { knockGate } from "./mod.ts";
 *
 * const { welcomed } = await knockGate({ port: 8001, delayMs: 0 });
 * ```
 */
export async function knockGate(options: WithOptionalTransport<core.KnockGateOptions> = {}): Promise<KnockResult> {
  return core.knockGate(await withTransport(options));
}

/**
 * Starts a fault proxy server (toxiproxy's HTTP API, default `127.0.0.1:8474`) on the current
 * runtime. See docs/faults.md.
 *
 * @param options Address, seed and proxies to start with; see {@linkcode core.ServeFaultsOptions}.
 * @returns The running server, with the API's operations as methods.
 *
 * @example
 * ```ts ignore
 * import { serveFaults } from "./mod.ts";
 *
 * const faults = await serveFaults({ port: 0, seed: 42 });
 * const db = await faults.createProxy({ name: "db", upstream: "127.0.0.1:5432" });
 * faults.addToxic("db", { type: "latency", attributes: { latency: 100 } });
 * await faults.close();
 * ```
 */
export async function serveFaults(
  options: WithOptionalTransport<core.ServeFaultsOptions> = {},
): Promise<FaultsServer> {
  return core.serveFaults(await withTransport(options));
}
