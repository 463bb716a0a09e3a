/**
 * The clients: the seed's echo client and gate knock over streams (TCP, unix sockets, TLS), the
 * UDP echo client, and the one-line connect errors they share.
 *
 * @module
 */

export {
  type ClientOptions,
  DEFAULT_MESSAGE,
  echoReplyState,
  knockGate,
  type KnockGateOptions,
  type KnockResult,
  proxyHeaderFor,
  sendEcho,
  type SendEchoOptions,
} from "./stream.ts";
export { DEFAULT_UDP_RETRIES, DEFAULT_UDP_TIMEOUT_MS, sendDatagrams, type SendDatagramsOptions } from "./datagram.ts";
export {
  ConnectError,
  ConnectionRefusedError,
  ConnectPermissionError,
  HostNotFoundError,
  looksLikeTlsRecord,
  NoSuchUnixSocketError,
  ServerSpeaksTlsError,
  TlsClientError,
} from "./connect_errors.ts";
