/**
 * A load generator for echo servers (and gates): drives any echo server over a
 * {@linkcode Transport}, checks every reply byte for byte, and reports throughput, latency,
 * errors and mismatches. `echogate bench` is its command line.
 *
 * Three modes:
 * - `pingpong`: each connection sends a message of `size` bytes and waits for its echo before
 *   sending the next (the echo may come back as several `prefix + piece` frames, see
 *   {@linkcode echoReplyState}); one operation is one round trip.
 * - `stream`: each connection keeps `size` bytes in flight and checks the echoed stream in
 *   order; with a prefix, the stream must come back as `prefix + piece` frames whose pieces
 *   join up to what was sent. One operation is one block (half of `size`, at most 64 KiB) echoed.
 * - `connect`: each operation is a fresh connection doing one full exchange and closing: one
 *   echo round trip, or with `knock`, a gate knock that must be answered `welcome to server!`.
 *
 * @module
 */

export {
  BENCH_MODES,
  type BenchMode,
  type BenchOptions,
  DEFAULT_BENCH_CONNS,
  DEFAULT_BENCH_DURATION_MS,
  DEFAULT_BENCH_MESSAGE_SIZE,
  DEFAULT_BENCH_STREAM_SIZE,
} from "./options.ts";
export { DescriptorLimitError, type FileDescriptorUsage } from "./descriptors.ts";
export type { BenchInterval, BenchReport, LatencyMs } from "./report.ts";
export { runBench } from "./run.ts";
export {
  type DatagramBenchInterval,
  type DatagramBenchOptions,
  type DatagramBenchReport,
  DEFAULT_UDP_BENCH_TIMEOUT_MS,
  runDatagramBench,
} from "./udp.ts";
