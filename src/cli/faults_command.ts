// The `faults` command: a fault proxy driven by toxiproxy's HTTP API (docs/faults.md).

import { UsageError } from "../errors.ts";
import { errorMessage } from "../log.ts";
import {
  DEFAULT_FAULTS_PORT,
  FaultsError,
  type FaultsEvent,
  type FaultsTlsOptions,
  type ProxyInput,
  serveFaults,
} from "../faults/mod.ts";
import { readPem } from "./tls_options.ts";
import { parsePort } from "./args.ts";
import { type Command, explainListenError, noPositionals, type Options, str } from "./command.ts";
import type { CliHost } from "./host.ts";

/** `echogate faults`: toxiproxy's API and toxics, for toxiproxy's clients. */
export const faultsCommand: Command = {
  name: "faults",
  usage: `echogate faults     [--host 127.0.0.1] [--port ${DEFAULT_FAULTS_PORT}] [--config FILE] [--seed N] [--json]
                    [--tls-cert F --tls-key F] [--upstream-ca F]`,
  help: `Usage: echogate faults [options]

A fault proxy that toxiproxy's clients drive: serves toxiproxy's HTTP API (2.12) and its toxics
(latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, noop), and limit_time,
corrupt and slow_open. See docs/faults.md.

Options:
  --host HOST          Address the control API binds (default 127.0.0.1)
  --port PORT          Its port, 0 for any free port (default ${DEFAULT_FAULTS_PORT})
  --config FILE        A JSON array of proxies to create at start, as toxiproxy's -config
  --seed N             Make every random choice (toxicity, jitter, slicer sizes) replay: a function
                       of N, the proxy's name and the order of connections to it (default: random)
  --tls-cert F         The PEM certificate chain proxies created with "listen_tls": true present
  --tls-key F          Its PEM private key
  --upstream-ca F      A PEM CA trusted for proxies with "upstream_tls": true, beyond the system roots
  --json               Log one JSON object per event: listening, each proxy and toxic change, each
                       connection (connect; close with bytes, duration and the toxics that applied)`,
  options: {
    host: "string",
    port: "string",
    config: "string",
    seed: "string",
    json: "boolean",
    "tls-cert": "string",
    "tls-key": "string",
    "upstream-ca": "string",
  },
  run: faults,
};

async function faults(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  const hostname = str(options, "host") ?? "127.0.0.1";
  if (hostname === "") throw new UsageError(`Invalid value for "--host": the host is empty`);
  const portText = str(options, "port");
  const port = portText === undefined ? DEFAULT_FAULTS_PORT : parsePort("port", portText);
  const seed = str(options, "seed");
  if (seed !== undefined && !/^\d{1,15}$/.test(seed)) {
    throw new UsageError(`Invalid value for "--seed": "${seed}" is not a non-negative integer`);
  }
  const tls = await readTls(host, options);
  const proxies = await readConfig(host, str(options, "config"));
  const json = options.json === true;
  const time = () => new Date().toISOString();
  const onEvent = json ? (event: FaultsEvent) => host.writeOut(JSON.stringify({ time: time(), ...event })) : undefined;
  const server = await serveFaults({ transport: host.transport, hostname, port, seed, proxies, onEvent, tls })
    .catch((error) => {
      if (error instanceof FaultsError) throw new Error(`--config: ${error.message}`);
      return explainListenError(error);
    });
  host.writeOut(
    json
      ? JSON.stringify({ time: time(), event: "listening", protocol: "faults", address: server.url, seed: server.seed })
      : `faults control listening on ${server.url}`,
  );
  return await new Promise((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return host.exit(130); // a second signal: exit at once
      stopping = true;
      server.close().then(() => resolve(0), () => resolve(1));
    };
    host.onSignal("SIGINT", stop);
    host.onSignal("SIGTERM", stop);
  });
}

async function readTls(host: CliHost, options: Options): Promise<FaultsTlsOptions> {
  const cert = str(options, "tls-cert");
  const key = str(options, "tls-key");
  const upstreamCa = str(options, "upstream-ca");
  if (cert !== undefined && key === undefined) throw new UsageError(`Option "--tls-cert" needs --tls-key`);
  if (key !== undefined && cert === undefined) throw new UsageError(`Option "--tls-key" needs --tls-cert`);
  return {
    ...(cert !== undefined && { cert: await readPem(host, "tls-cert", cert, "certificate") }),
    ...(key !== undefined && { key: await readPem(host, "tls-key", key, "key") }),
    ...(upstreamCa !== undefined && { upstreamCa: await readPem(host, "upstream-ca", upstreamCa, "certificate") }),
  };
}

async function readConfig(host: CliHost, path: string | undefined): Promise<ProxyInput[] | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await host.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read --config ${JSON.stringify(path)}: ${errorMessage(error)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--config ${JSON.stringify(path)} is not JSON: ${errorMessage(error)}`);
  }
  if (!Array.isArray(value)) throw new UsageError(`--config ${JSON.stringify(path)} must hold a JSON array of proxies`);
  return value as ProxyInput[];
}
