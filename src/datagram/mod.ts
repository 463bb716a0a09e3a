/**
 * Datagrams: the UDP echo server (RFC 862) with its safety rules, and its client, over the
 * abstract {@linkcode DatagramSocket} that each adapter's `Transport.bindDatagram` provides.
 *
 * @module
 */

export {
  type DatagramEchoOptions,
  type DatagramEchoServer,
  type DatagramEchoStats,
  DEFAULT_MAX_DATAGRAM,
  MAX_UDP_PREFIX,
  REFUSED_SOURCE_PORTS,
  serveDatagramEcho,
} from "./echo.ts";
export {
  type DatagramLimits,
  DEFAULT_UDP_BUDGET,
  DEFAULT_UDP_RATE,
  DEFAULT_UDP_SOURCES,
  PEER_QUIET_MS,
} from "./sources.ts";
export { DEFAULT_UDP_RETRIES, DEFAULT_UDP_TIMEOUT_MS, sendDatagrams, type SendDatagramsOptions } from "./client.ts";
