// Whether a listen address reaches this machine only: `gate serve` refuses the seed's well-known
// default token anywhere else.

import { cidrContains, parseCidr, parseIp } from "../ip.ts";
import type { CliHost } from "./host.ts";

const LOOPBACK = [parseCidr("127.0.0.0/8"), parseCidr("::1/128")];

/** Whether an IP address (text) is a loopback address: 127.0.0.0/8, ::1 or ::ffff:127.x.y.z. */
function isLoopbackIp(address: string): boolean {
  const bytes = parseIp(address);
  return bytes !== undefined && LOOPBACK.some((block) => cidrContains(block, bytes));
}

/**
 * Whether listening on `hostname` reaches this machine only: a loopback address, `localhost`
 * (RFC 6761: always loopback, never looked up), or a name whose every address is loopback. The
 * wildcards (`0.0.0.0`, `::`) are not; neither is a name that cannot be resolved.
 *
 * @example
 * ```ts ignore
 * await isLoopbackHost(host, "127.0.0.2"); // true
 * await isLoopbackHost(host, "0.0.0.0"); // false
 * ```
 */
export async function isLoopbackHost(host: CliHost, hostname: string): Promise<boolean> {
  if (parseIp(hostname) !== undefined) return isLoopbackIp(hostname);
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  try {
    const addresses = host.lookupAddresses
      ? await host.lookupAddresses(hostname)
      : host.transport.lookup
      ? [await host.transport.lookup(hostname)]
      : [];
    return addresses.length > 0 && addresses.every(isLoopbackIp);
  } catch {
    return false;
  }
}
