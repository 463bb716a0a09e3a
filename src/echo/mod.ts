/**
 * All of echo: the stream echo server (the seed's, with its chunk, line and raw modes and line
 * splitting) and the UDP echo server (RFC 862) with its per-source table, over the abstract
 * sockets each adapter's `Transport` provides. The clients are in ../client/mod.ts.
 *
 * @module
 */

export {
  createEchoHandler,
  DEFAULT_ECHO_PORT,
  DEFAULT_MAX_LINE,
  DEFAULT_PREFIX,
  ECHO_MODES,
  type EchoMode,
  type EchoOptions,
  LineSplitter,
  serveEcho,
  type ServeEchoOptions,
} from "./stream.ts";

export {
  type DatagramEchoOptions,
  type DatagramEchoServer,
  type DatagramEchoStats,
  DEFAULT_MAX_DATAGRAM,
  MAX_UDP_PREFIX,
  REFUSED_SOURCE_PORTS,
  serveDatagramEcho,
} from "./datagram.ts";
export {
  type DatagramLimits,
  DEFAULT_UDP_BUDGET,
  DEFAULT_UDP_RATE,
  DEFAULT_UDP_SOURCES,
  PEER_QUIET_MS,
} from "./sources.ts";
