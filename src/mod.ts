/**
 * echogate's runtime-neutral core: the seed's gate and echo protocols, servers and clients,
 * written against the abstract {@linkcode StreamSocket}. Pair it with a transport from
 * `echogate/node`, `echogate/deno` or `echogate/bun`, or import `echogate` to get the
 * current runtime's transport picked for you.
 *
 * ```ts ignore
 * import { sendEcho, serveEcho } from "echogate/core";
 * import { transport } from "echogate/node";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * const [reply] = await sendEcho({ transport, port: server.addr.transport === "tcp" ? server.addr.port : 0 });
 * await server.close();
 * ```
 *
 * @module
 */

export type {
  Address,
  ChunkResponder,
  ConnectOptions,
  DatagramHandlers,
  DatagramSocket,
  Endpoint,
  HttpHandler,
  HttpLimits,
  HttpServer,
  Listener,
  ListenHandlers,
  ListenOptions,
  StreamSocket,
  Transport,
  TransportCalls,
} from "./types.ts";
export {
  type ChunkAnswering,
  type ConnectionContext,
  type ConnectionHandler,
  type ConnectionResponding,
  type EchogateServer,
  serve,
  type ServerOptions,
} from "./server.ts";
export { closeGracefully, type CloseGracefullyOptions } from "./close.ts";
export { DEFAULT_ECHO_PORT, type EchoMode, type EchoOptions, serveEcho, type ServeEchoOptions } from "./echo/stream.ts";
export { DEFAULT_GATE_PORT, serveGate, type ServeGateOptions } from "./gate/mod.ts";
export {
  type ClientOptions,
  knockGate,
  type KnockGateOptions,
  type KnockResult,
  type proxyHeaderFor,
  sendEcho,
  type SendEchoOptions,
} from "./client/stream.ts";
export {
  type DatagramEchoOptions,
  type DatagramEchoServer,
  type DatagramEchoStats,
  serveDatagramEcho,
} from "./echo/datagram.ts";
export type { DatagramLimits } from "./echo/sources.ts";
export { sendDatagrams, type SendDatagramsOptions } from "./client/datagram.ts";
export type { BenchMode, BenchOptions } from "./bench/options.ts";
export { runBench } from "./bench/run.ts";
export {
  type DatagramBenchInterval,
  type DatagramBenchOptions,
  type DatagramBenchReport,
  runDatagramBench,
} from "./bench/udp.ts";
export type { BenchInterval, BenchReport, LatencyMs } from "./bench/report.ts";
export { DescriptorLimitError, type FileDescriptorUsage } from "./bench/descriptors.ts";
export {
  type TlsClientOptions,
  TlsConfigError,
  TlsHandshakeError,
  type TlsHandshakeFailure,
  type TlsInfo,
  type TlsServerOptions,
} from "./tls.ts";
export {
  certificateFingerprint,
  createSelfSignedTls,
  type SelfSignedTls,
  type SelfSignedTlsOptions,
  TlsFingerprintError,
} from "./tls_self_signed.ts";
export { createForwardHandler, type ForwardOptions } from "./forward.ts";
export type { ProxyHeader, ProxyTlv } from "./proxy_protocol/header.ts";
export { encodeProxyHeader, type ProxyHeaderInit } from "./proxy_protocol/encoder.ts";
export type { ProxyParseResult } from "./proxy_protocol/parser.ts";
export {
  type ProxiedSocket,
  type ProxyHeaderOutcome,
  type ProxyProtocolOptions,
  readProxyHeader,
} from "./proxy_protocol/receive.ts";
export { createLogger, type CreateLoggerOptions, type LogEvent, type Logger, silentLogger } from "./log.ts";
export { AddrInUseError, NotASocketError, UsageError } from "./errors.ts";
export {
  ConnectError,
  ConnectionRefusedError,
  ConnectPermissionError,
  HostNotFoundError,
  NoSuchUnixSocketError,
  ServerSpeaksTlsError,
  TlsClientError,
} from "./client/connect_errors.ts";
export type { AcceptErrorCounts, AcceptErrorKind } from "./accept_errors.ts";
export { formatAddress } from "./address.ts";
export type { PenaltyKind, PenaltyOptions, PenaltyShare } from "./gate/penalties.ts";
export type { Cidr } from "./ip.ts";
export {
  createMetricsHandler,
  METRICS_CONTENT_TYPE,
  MetricsBuilder,
  REFUSAL_REASONS,
  renderMetrics,
  serverMetrics,
} from "./metrics/mod.ts";
export type {
  DatagramCounters,
  MetricFamily,
  MetricLabels,
  ProcessFacts,
  RefusalReason,
  ServerCounters,
} from "./metrics/mod.ts";
export type { ChunkListener, ReadQueueSource } from "./read_queue.ts";
export type { ImmediateWriter, WriteSink } from "./write_queue.ts";
export { VERSION } from "./version.ts";
export {
  DEFAULT_FAULTS_PORT,
  FaultsError,
  type FaultsEvent,
  type FaultsServer,
  type FaultsTlsOptions,
  type ProxyInfo,
  type ProxyInput,
  serveFaults,
  type ServeFaultsOptions,
  type Toxic,
  TOXIC_TYPES,
  type ToxicInput,
  type ToxicStream,
  type ToxicType,
} from "./faults/mod.ts";
export type { CliHost, SmallFile, WorkerProcess, WorkerSpawner } from "./cli/host.ts";
