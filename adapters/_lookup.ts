// Name lookup for datagram clients (Bun's UDP send() takes addresses only), on node:dns, which
// all three runtimes have.

import { lookup } from "node:dns/promises";

/** Resolves a host name to one address, the system resolver's first answer. */
export async function lookupHost(hostname: string): Promise<string> {
  return (await lookup(hostname)).address;
}
