// What `echo serve` and `gate serve` share once their own flags are read: --workers (supervise,
// or serve as a worker over its channel), --drain-timeout, the TLS files and their SIGHUP reload,
// the listen, and the wait for a signal.

import type { Logger } from "../log.ts";
import type { PenaltyKind } from "../gate/penalties.ts";
import type { EchogateServer } from "../server.ts";
import type { TlsServerOptions } from "../tls.ts";
import { drainMs, explainListenError, type Options, untilSignal } from "./command.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";
import {
  explainTlsConfigError,
  readSelfSignedTls,
  readServerTls,
  reloadOnSighup,
  selfSignedWorkerEnv,
  serverTlsFiles,
} from "./tls_options.ts";
import { supervise, WorkerChannel, workerLogger, workerNumber, workersOption } from "./workers.ts";
import { METRICS_FLAG, metricsOption, serveMetrics } from "./metrics_endpoint.ts";

/** The flags of a server's processes: --drain-timeout, --workers, --json. */
export const SERVE_FLAGS: readonly Flag[] = [
  {
    name: "drain-timeout",
    value: "S",
    usage: "5",
    help: "On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)",
  },
  {
    name: "workers",
    value: "N|auto",
    help: `Serve the port from N processes (auto: one per core) under one supervisor;
TCP only. On Deno the workers run with --unstable-net (for reusePort)`,
  },
  { name: "json", help: "Log one JSON object per event" },
  METRICS_FLAG,
];

/** Their usage. */
export const SERVE_USAGE = "[{drain-timeout}] [{workers}] [{json}] [{metrics}]";

/** A server command's process, once {@linkcode prepareServer} has read its flags. */
export interface ServerProcess {
  /** This process's channel to its supervisor, when it is a worker. */
  readonly channel: WorkerChannel | undefined;
  /** Its logger (a worker's leaves "listening" to the supervisor). */
  readonly logger: Logger;
  /** Whether this process supervises workers (--workers) rather than serving. */
  readonly supervising: boolean;
  /**
   * With --workers, supervises the workers; otherwise (or in a worker) listens with `listen`, given
   * the TLS options, re-reads the TLS files on SIGHUP, and resolves with the exit code once a
   * signal (or the supervisor) has stopped the server. A supervisor calls `onPenalty` with each
   * penalty a worker gives.
   */
  run(
    protocol: "echo" | "gate",
    listen: (tls?: TlsServerOptions) => Promise<EchogateServer>,
    options?: { onPenalty?: (address: string, kind: PenaltyKind, at: number) => void },
  ): Promise<number>;
}

/**
 * Reads --drain-timeout, --workers and the server TLS flags, and reads the certificate files, so
 * that a bad one is reported before anything starts (the supervisor's workers read them again).
 *
 * @example
 * ```ts ignore
 * const server = await prepareServer(host, options);
 * return await server.run("echo", (tls) => serveEcho({ transport: host.transport, tls, logger: server.logger }));
 * ```
 */
export async function prepareServer(host: CliHost, options: Options): Promise<ServerProcess> {
  const drain = drainMs(options);
  const workers = workersOption(host, options);
  const metrics = metricsOption(host, options);
  const worker = workerNumber(host);
  const tlsFiles = serverTlsFiles(options);
  const tls = tlsFiles && await readServerTls(host, tlsFiles, options);
  const channel = worker === undefined ? undefined : new WorkerChannel(host, worker);
  const logger = workerLogger(host, options, worker);
  const supervising = workers !== undefined && worker === undefined;
  return {
    channel,
    logger,
    supervising,
    async run(protocol, listen, runOptions) {
      if (supervising) {
        return await supervise(host, {
          onPenalty: runOptions?.onPenalty,
          count: workers,
          protocol,
          json: options.json === true,
          reload: tlsFiles !== undefined || options["tls-self-signed"] === true,
          drainMs: drain,
          env: await selfSignedWorkerEnv(host, options),
          metrics,
          onMetricsListening: (address) => logger.log({ event: "metrics-listening", address }),
        });
      }
      const serverTls = tls ?? await readSelfSignedTls(host, options, logger, worker);
      const server = await listen(serverTls).catch(explainTlsConfigError(tlsFiles)).catch(explainListenError);
      const reload = tlsFiles && reloadOnSighup(host, server, tlsFiles, options);
      if (reload) channel?.onReload(reload);
      if (channel) return await channel.run(server, drain); // its supervisor serves --metrics
      const endpoint = metrics && await serveMetrics(
        host,
        metrics,
        () => Promise.resolve({ counters: server.counters(), process: host.processFacts?.() }),
        (address) => logger.log({ event: "metrics-listening", address }),
      ).catch(async (error) => {
        await server.close();
        return explainListenError(error);
      });
      const code = await untilSignal(host, server, drain);
      await endpoint?.close();
      return code;
    },
  };
}
