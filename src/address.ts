import { parseIp } from "./ip.ts";
import type { Address, Endpoint } from "./types.ts";

/** How {@linkcode formatAddress} prints a peer whose address the runtime could not tell. */
export const UNKNOWN_ADDRESS = "unknown address";

/**
 * Formats an address for logs: `127.0.0.1:8001`, `[::1]:8001`, or `unix:/path`; a TCP peer with
 * no hostname (the runtime could not ask for it: the peer reset the connection while it waited in
 * the accept queue) is {@linkcode UNKNOWN_ADDRESS}, not `:0`.
 *
 * @param addr The address to format.
 * @returns The printable form.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./mod.ts";
 *
 * console.log(formatAddress({ transport: "tcp", hostname: "::1", port: 50007 })); // "[::1]:50007"
 * console.log(formatAddress({ transport: "unix", path: "/tmp/echo.sock" })); // "unix:/tmp/echo.sock"
 * console.log(formatAddress({ transport: "tcp", hostname: "", port: 0 })); // "unknown address"
 * ```
 */
export function formatAddress(addr: Address): string {
  if (addr.transport === "unix") return `unix:${addr.path}`;
  if (addr.hostname === "") return UNKNOWN_ADDRESS;
  return addr.hostname.includes(":") ? `[${addr.hostname}]:${addr.port}` : `${addr.hostname}:${addr.port}`;
}

/**
 * Formats a listen or connect target the same way as {@linkcode formatAddress}.
 *
 * @param endpoint The target.
 * @returns The printable form.
 *
 * @example
 * ```ts
 * import { formatEndpoint } from "./address.ts";
 *
 * console.log(formatEndpoint({ hostname: "127.0.0.1", port: 8001 })); // "127.0.0.1:8001"
 * ```
 */
export function formatEndpoint(endpoint: Endpoint): string {
  return formatAddress("path" in endpoint ? { transport: "unix", ...endpoint } : { transport: "tcp", ...endpoint });
}

/**
 * True when `hostname` is one IP address, not a name and not an "every interface" address
 * (`0.0.0.0`, `::`): a socket accepted on a listener bound to it has it as its local address,
 * so adapters can share one address object instead of building one per connection.
 *
 * @param hostname A listener's bound host.
 * @returns Whether it is a single, specific IP address.
 *
 * @example
 * ```ts
 * import { isSpecificIp } from "./address.ts";
 *
 * console.log(isSpecificIp("127.0.0.1"), isSpecificIp("0.0.0.0"), isSpecificIp("localhost")); // true false false
 * ```
 */
export function isSpecificIp(hostname: string): boolean {
  const bytes = parseIp(hostname);
  return bytes !== undefined && bytes.some((byte) => byte !== 0);
}
