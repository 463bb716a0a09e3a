import type { Address, Endpoint } from "./types.ts";

/**
 * Formats an address for logs: `127.0.0.1:8001`, `[::1]:8001`, or `unix:/path`.
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
 * ```
 */
export function formatAddress(addr: Address): string {
  if (addr.transport === "unix") return `unix:${addr.path}`;
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
 * import { formatEndpoint } from "./mod.ts";
 *
 * console.log(formatEndpoint({ hostname: "127.0.0.1", port: 8001 })); // "127.0.0.1:8001"
 * ```
 */
export function formatEndpoint(endpoint: Endpoint): string {
  return formatAddress("path" in endpoint ? { transport: "unix", ...endpoint } : { transport: "tcp", ...endpoint });
}
