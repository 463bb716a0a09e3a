// Listener policy shared by the adapters: the same errors whatever runtime failed to bind.

import { AddrInUseError, type Endpoint } from "../src/mod.ts";
import { formatEndpoint } from "../src/address.ts";

/**
 * `error` as an {@linkcode AddrInUseError} naming `endpoint` when it says the address is taken
 * (Node's and Bun's `EADDRINUSE` code, Deno's `AddrInUse` class); any other error unchanged.
 *
 * @param error What the runtime's bind threw.
 * @param endpoint Where it tried to bind.
 * @param transport `"udp"` names the endpoint as a UDP one in the message.
 * @returns The error to reject with.
 *
 * @example
 * ```ts ignore
 * import { toListenError } from "./_listen.ts";
 *
 * const taken = Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" });
 * console.log(String(toListenError(taken, { hostname: "127.0.0.1", port: 8001 })));
 * ```
 */
export function toListenError(error: unknown, endpoint: Endpoint, transport?: "udp"): unknown {
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  if (code !== "EADDRINUSE" && name !== "AddrInUse") return error;
  const where = formatEndpoint(endpoint);
  return new AddrInUseError(transport === "udp" ? `udp ${where}` : where, { cause: error });
}

/**
 * The TCP endpoint a TLS listener binds; a unix socket path is refused (the core refuses it
 * before it reaches an adapter: this keeps a direct `transport.listen` call from binding one).
 *
 * @param endpoint Where to listen.
 * @returns The same endpoint, known to be TCP.
 *
 * @example
 * ```ts ignore
 * import { tlsEndpoint } from "./_listen.ts";
 *
 * const { hostname, port } = tlsEndpoint({ hostname: "127.0.0.1", port: 0 });
 * ```
 */
export function tlsEndpoint(endpoint: Endpoint): { hostname: string; port: number } {
  if ("path" in endpoint) throw new TypeError("TLS is served over TCP only");
  return endpoint;
}
