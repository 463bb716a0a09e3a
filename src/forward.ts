/**
 * Forwards a connection to an upstream server, both directions, with backpressure and
 * half-close: the gate's `--then HOST:PORT` handoff.
 *
 * @module
 */

import { errorMessage } from "./log.ts";
import type { ConnectionContext } from "./server.ts";
import { encodeProxyHeader } from "./proxy_protocol/mod.ts";
import type { TlsClientOptions } from "./tls.ts";
import type { Endpoint, StreamSocket, Transport } from "./types.ts";

/**
 * Options for {@linkcode createForwardHandler}.
 *
 * @example
 * ```ts ignore
 * import type { ForwardOptions } from "./mod.ts";
 * import { transport } from "../adapters/node.ts";
 *
 * const options: ForwardOptions = { transport, upstream: { hostname: "127.0.0.1", port: 9000 }, proxyProtocol: 2 };
 * ```
 */
export interface ForwardOptions {
  /** The socket API used to reach the upstream. */
  transport: Transport;
  /** Where to forward: a host and port, or a unix socket path. */
  upstream: Endpoint;
  /** Speak TLS to the upstream, verifying it as these options say (`{}`: the system roots and its name). */
  tls?: TlsClientOptions;
  /**
   * Send the upstream a PROXY protocol header (v1 or v2) naming the client first, so that it
   * sees the real client too. Behind a PROXY listener the client is the one its header named,
   * so a chain of gates keeps it. Over TLS it goes in clear text before the handshake, as a
   * TLS-passthrough balancer sends it.
   */
  proxyProtocol?: 1 | 2;
}

/**
 * Builds a handler that connects to the upstream and relays bytes both ways until both sides
 * have finished sending. End of input on one side becomes a half-close (FIN) on the other.
 *
 * @param options The transport, the upstream, and how to speak to it.
 * @returns A connection handler.
 *
 * @example
 * ```ts ignore
 * import { createForwardHandler, serveGate } from "./mod.ts";
 * import { transport } from "../adapters/node.ts";
 *
 * const handoff = createForwardHandler({ transport, upstream: { hostname: "127.0.0.1", port: 9000 } });
 * const gate = await serveGate({ transport, port: 0, handoff });
 * ```
 */
export function createForwardHandler(
  options: ForwardOptions,
): (socket: StreamSocket, context: ConnectionContext) => Promise<void> {
  const { transport, upstream, tls } = options;
  const version = options.proxyProtocol;
  return async (client, context) => {
    const header = () =>
      encodeProxyHeader({ version: version!, source: client.remoteAddr, destination: client.localAddr });
    // Over TLS the header goes in clear text before the handshake, as HAProxy sends it.
    const headerFirst = version !== undefined && tls !== undefined;
    let server: StreamSocket;
    try {
      server = await transport.connect(
        upstream,
        tls === undefined ? undefined : headerFirst ? { tls, beforeTls: header } : { tls },
      );
    } catch (error) {
      throw new Error(`Cannot reach the upstream: ${errorMessage(error)}`);
    }
    try {
      if (version !== undefined && !headerFirst) await server.write(header());
      await Promise.all([
        relay(client, server, (n) => (context.bytesIn += n)),
        relay(server, client, (n) => (context.bytesOut += n)),
      ]);
    } finally {
      server.close();
    }
  };
}

/** Copies `from` to `to` until end of input, then half-closes `to`. A failure closes both. */
async function relay(from: StreamSocket, to: StreamSocket, count: (n: number) => void): Promise<void> {
  try {
    for (let chunk = await from.read(); chunk !== null; chunk = await from.read()) {
      await to.write(chunk); // waits while `to` is backed up, so `from` is not read meanwhile
      count(chunk.length);
    }
    await to.closeWrite();
  } catch (error) {
    from.close();
    to.close();
    throw error;
  }
}
