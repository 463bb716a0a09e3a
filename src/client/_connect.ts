// How a client connects: the PROXY header it sends, and the connect options that carry it in
// clear text before a TLS handshake. Shared by the one-shot clients (client.ts) and the load
// generator (bench/).

import { encodeProxyHeader, type ProxyHeaderInit } from "../proxy_protocol/mod.ts";
import type { TlsClientOptions } from "../tls.ts";
import type { ConnectOptions, StreamSocket } from "../types.ts";

/**
 * The PROXY header a client sends on `socket`: `init`, with `source` and `destination` defaulting
 * to the connection's own endpoints.
 *
 * @param socket The connected socket.
 * @param init The version and any addresses to name instead.
 * @returns The header bytes.
 *
 * @example
 * ```ts ignore
 * import { proxyHeaderFor } from "../mod.ts";
 *
 * await socket.write(proxyHeaderFor(socket, { version: 2 }));
 * ```
 */
export function proxyHeaderFor(
  socket: Pick<StreamSocket, "localAddr" | "remoteAddr">,
  init: ProxyHeaderInit,
): Uint8Array {
  return encodeProxyHeader({
    ...init,
    source: init.source ?? socket.localAddr,
    destination: init.destination ?? socket.remoteAddr,
  });
}

/**
 * A client's host as given, less the brackets of `[::1]`, the form servers print an IPv6
 * address in (Node's resolver takes the brackets for part of a name).
 *
 * @param hostname A host name, an address, or a bracketed IPv6 address.
 * @returns The host to connect to.
 *
 * @example
 * ```ts ignore
 * console.log(unbracketed("[::1]"), unbracketed("localhost")); // "::1" "localhost"
 * ```
 */
export function unbracketed(hostname: string): string {
  return hostname.length > 2 && hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
}

/**
 * The connect options of a client: TLS if asked, and with a PROXY header too, that header sent in
 * clear text before the handshake (`beforeTls`), as a TLS-passthrough balancer sends it. Without
 * TLS the header is the caller's to write once connected.
 */
export function connectOptionsFor(
  tls: TlsClientOptions | undefined,
  proxyHeader: ProxyHeaderInit | undefined,
): ConnectOptions | undefined {
  if (!tls) return undefined;
  return proxyHeader ? { tls, beforeTls: (connection) => proxyHeaderFor(connection, proxyHeader) } : { tls };
}
