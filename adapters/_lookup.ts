// Name lookup on node:dns, which all three runtimes have: one address for datagram clients (Bun's UDP
// send() takes addresses only), every address for the CLI's loopback check.

import { lookup } from "node:dns/promises";

/** Resolves a host name to one address, the system resolver's first answer. */
export async function lookupHost(hostname: string): Promise<string> {
  return (await lookup(hostname)).address;
}

/**
 * Every address a host name resolves to, as the system resolver answers.
 *
 * @example
 * ```ts ignore
 * await lookupAddresses("localhost"); // ["127.0.0.1", "::1"]
 * ```
 */
export async function lookupAddresses(hostname: string): Promise<string[]> {
  return (await lookup(hostname, { all: true })).map((answer) => answer.address);
}
