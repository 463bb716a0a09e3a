// The `echo serve` and `echo send` commands.

import { pythonRepr, utf8 } from "../_bytes.ts";
import { sendEcho } from "../client.ts";
import {
  DEFAULT_ECHO_PORT,
  DEFAULT_MAX_LINE,
  DEFAULT_PREFIX,
  ECHO_MODES,
  type EchoOptions,
  serveEcho,
} from "../echo.ts";
import { DEFAULT_MAX_DATAGRAM, MAX_UDP_PREFIX } from "../datagram/echo.ts";
import { type DatagramLimits, DEFAULT_UDP_BUDGET, DEFAULT_UDP_RATE } from "../datagram/sources.ts";
import { DEFAULT_UDP_RETRIES } from "../datagram/client.ts";
import { UsageError } from "../errors.ts";
import { parseChoice, parsePositiveInt, parseSeconds } from "./args.ts";
import {
  clientTarget,
  type Command,
  drainMs,
  explainListenError,
  listenOptions,
  noPositionals,
  type Options,
  str,
  suggestTls,
  untilSignal,
} from "./command.ts";
import type { CliHost } from "./host.ts";
import { lines, supervise, WorkerChannel, workerLogger, workerNumber, workersOption } from "./workers.ts";
import {
  PROXY_CLIENT_HELP,
  PROXY_CLIENT_OPTIONS,
  PROXY_SERVE_HELP,
  PROXY_SERVE_OPTIONS,
  proxyHeaderOption,
  proxyProtocolOptions,
} from "./proxy_flags.ts";
import {
  CLIENT_TLS_FLAGS,
  CLIENT_TLS_HELP,
  explainTlsConfigError,
  readClientTls,
  readSelfSignedTls,
  readServerTls,
  reloadOnSighup,
  selfSignedWorkerEnv,
  SERVER_TLS_FLAGS,
  SERVER_TLS_HELP,
  serverTlsFiles,
} from "./tls_options.ts";

/** `echogate echo serve`: the seed's echo server. */
export const echoServeCommand: Command = {
  name: "echo serve",
  usage: `echogate echo serve [--host 127.0.0.1] [--port 50007] [--unix PATH [--unix-mode 0600]]
                    [--mode chunk|line|raw] [--prefix 'Echo=>'] [--idle-timeout S] [--max-line BYTES]
                    [--max-conns N]
                    [--drain-timeout 5] [--workers N|auto] [--json]
                    [--tls-cert F --tls-key F | --tls-self-signed] [--tls-client-ca F] [--alpn L]
                    [--tls-handshake-timeout 10] [--tls-stalled-handshakes close|hold]
                    [--proxy-protocol [--proxy-from CIDR,...] [--proxy-timeout 5]]
                    [--udp [--max-datagram 1472] [--udp-rate 10] [--udp-budget 1000] [--no-udp-limits]]`,
  help: `Usage: echogate echo serve [options]

Answers every read with prefix + chunk until the peer closes (the seed's echo server).

Options:
  --host HOST          Address to bind: IPv4, IPv6 or a name (default 127.0.0.1)
  --port PORT          Port to bind, 0 for any free port (default ${DEFAULT_ECHO_PORT})
  --unix PATH          Listen on a unix socket instead of TCP. A stale socket there is replaced;
                       anything else (a file, a directory, a symlink) is refused, untouched
  --unix-mode MODE     The socket's permission bits, octal (default 0600: this user only;
                       0660 lets the file's group connect too)
  --mode MODE          chunk: one answer per read; line: one per \\n-terminated line;
                       raw: bytes back unchanged (default chunk)
  --prefix STR         Put before every answer in chunk and line mode (default '${DEFAULT_PREFIX}');
                       with --udp at most ${MAX_UDP_PREFIX} bytes unless --no-udp-limits
  --idle-timeout S     Close a connection after S seconds without traffic (default: never)
  --max-line BYTES     Longest line in line mode; longer closes the connection (default ${DEFAULT_MAX_LINE})
  --max-conns N        Close new connections at once while N are open (default: no limit);
                       with --workers, per worker
${PROXY_SERVE_HELP}
  --drain-timeout S    On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)
  --workers N|auto     Serve the port from N processes (auto: one per core) under one supervisor;
                       TCP only. On Deno the workers run with --unstable-net (for reusePort)
  --json               Log one JSON object per event
${SERVER_TLS_HELP}

UDP (RFC 862 over datagrams; see docs/udp.md):
  --udp                Serve UDP: every datagram is answered with prefix + datagram, to its sender.
                       Datagrams from source ports 0, 7, 19 and the server's own are never answered
  --max-datagram B     Drop (and count) datagrams over B bytes (default ${DEFAULT_MAX_DATAGRAM})
  --udp-rate N         Answers per second to one source address (IPv6: per /64), bursts of 2N
                       (default ${DEFAULT_UDP_RATE}); one source never gets more than half the budget
  --udp-budget N       Answers per second in total, over every source (default ${DEFAULT_UDP_BUDGET})
  --no-udp-limits      No per-source rate and no budget (a lab; never on a public address)`,
  options: {
    ...PROXY_SERVE_OPTIONS,
    ...SERVER_TLS_FLAGS,
    host: "string",
    port: "string",
    unix: "string",
    "unix-mode": "string",
    mode: "string",
    prefix: "string",
    "idle-timeout": "string",
    "max-line": "string",
    "max-conns": "string",
    "drain-timeout": "string",
    workers: "string",
    json: "boolean",
    udp: "boolean",
    "max-datagram": "string",
    "udp-rate": "string",
    "udp-budget": "string",
    "no-udp-limits": "boolean",
  },
  run: echoServe,
};

/** Reads --mode, --prefix, --idle-timeout and --max-line (also used by `gate serve --then echo`). */
export function echoOptions(options: Options): EchoOptions {
  const idle = str(options, "idle-timeout");
  const maxLine = str(options, "max-line");
  const mode = str(options, "mode");
  return {
    mode: mode === undefined ? "chunk" : parseChoice("mode", mode, ECHO_MODES),
    prefix: str(options, "prefix"),
    idleTimeoutMs: idle === undefined ? undefined : parseSeconds("idle-timeout", idle),
    maxLine: maxLine === undefined ? undefined : parsePositiveInt("max-line", maxLine),
  };
}

/** `echogate echo send`: the seed's echo client. */
export const echoSendCommand: Command = {
  name: "echo send",
  usage: `echogate echo send  [HOST] [MSG... | -] [--port 50007] [--unix PATH] [--timeout S]
                    [--tls [--ca F | --tls-fingerprint FP] [--servername NAME] [--tls-cert F --tls-key F]
                    [--insecure]]
                    [--proxy-header v1|v2 [--proxy-source IP:PORT]] [--udp [--retries 3]]`,
  help: `Usage: echogate echo send [HOST] [MSG... | -] [options]

Sends each message (default 'Hello network world') and prints "Client received: '<reply>'".
With --unix, every positional is a message. With - as the only message, reads the messages from
standard input, one per line (sent without its newline; empty lines are skipped), each sent once
the previous reply came, until end of input.

Options:
  --port PORT          Server port (default ${DEFAULT_ECHO_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --timeout S          Wait at most S seconds for each reply (default 5; with --udp, per try: 1)
  --udp                Send each message as one UDP datagram; exits 1 when one never got a reply
  --retries N          With --udp: send a message again up to N times (default ${DEFAULT_UDP_RETRIES})
${CLIENT_TLS_HELP}
${PROXY_CLIENT_HELP}`,
  options: {
    ...CLIENT_TLS_FLAGS,
    port: "string",
    unix: "string",
    timeout: "string",
    ...PROXY_CLIENT_OPTIONS,
    udp: "boolean",
    retries: "string",
  },
  run: echoSend,
};

/** Reads --udp and the flags that go with it; complains about flags that do not apply. */
function udpOptions(options: Options): { udp?: boolean; maxDatagram?: number; limits?: DatagramLimits | false } {
  const udpOnly = ["max-datagram", "udp-rate", "udp-budget", "no-udp-limits"].filter((name) => name in options);
  if (options.udp !== true) {
    if (udpOnly.length > 0) throw new UsageError(`Option "--${udpOnly[0]}" needs --udp`);
    return {};
  }
  for (const name of ["unix", "unix-mode", "idle-timeout", "max-line", "max-conns", "proxy-protocol", "proxy-from"]) {
    if (name in options) throw new UsageError(`Option "--${name}" does not apply with --udp`);
  }
  if (str(options, "mode") === "line") throw new UsageError(`--mode line does not apply with --udp (chunk or raw)`);
  const maxDatagram = str(options, "max-datagram");
  const rate = str(options, "udp-rate");
  const budget = str(options, "udp-budget");
  let limits: DatagramLimits | false = {};
  if (options["no-udp-limits"] === true) {
    if (rate !== undefined || budget !== undefined) {
      throw new UsageError(`--no-udp-limits and --udp-rate/--udp-budget contradict each other`);
    }
    limits = false;
  } else {
    const prefix = str(options, "mode") === "raw" ? undefined : str(options, "prefix");
    if (prefix !== undefined && utf8(prefix).length > MAX_UDP_PREFIX) {
      throw new UsageError(
        `--prefix is ${utf8(prefix).length} bytes; with --udp at most ${MAX_UDP_PREFIX} ` +
          `(an answer at most 3 times its request on the wire), or --no-udp-limits`,
      );
    }
    limits = {
      rate: rate === undefined ? undefined : parsePositiveInt("udp-rate", rate),
      budget: budget === undefined ? undefined : parsePositiveInt("udp-budget", budget),
    };
  }
  return {
    udp: true,
    maxDatagram: maxDatagram === undefined ? undefined : parsePositiveInt("max-datagram", maxDatagram),
    limits,
  };
}

async function echoServe(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  const drain = drainMs(options);
  const udp = udpOptions(options);
  const settings = { ...listenOptions(options, DEFAULT_ECHO_PORT), ...echoOptions(options) };
  const proxyProtocol = proxyProtocolOptions(options);
  const workers = workersOption(host, options);
  const worker = workerNumber(host);
  if (workers !== undefined && worker === undefined) {
    return await supervise(host, {
      count: workers,
      protocol: "echo",
      json: options.json === true,
      reload: serverTlsFiles(options) !== undefined || options["tls-self-signed"] === true,
      drainMs: drain,
      env: await selfSignedWorkerEnv(host, options),
    });
  }
  const channel = worker === undefined ? undefined : new WorkerChannel(host, worker);
  const tlsFiles = serverTlsFiles(options);
  if (udp.udp && (tlsFiles || options["tls-self-signed"])) throw new UsageError(`TLS does not apply with --udp`);
  const logger = workerLogger(host, options, worker);
  const tls = tlsFiles
    ? await readServerTls(host, tlsFiles, options)
    : await readSelfSignedTls(host, options, logger, worker);
  const server = await serveEcho({
    transport: host.transport,
    ...settings,
    ...(tls && { tls }),
    proxyProtocol,
    ...udp,
    reusePort: channel !== undefined,
    logger,
  }).catch(explainTlsConfigError(tlsFiles)).catch(explainListenError);
  const reload = tlsFiles && reloadOnSighup(host, server, tlsFiles, options);
  if (reload) channel?.onReload(reload);
  return channel ? await channel.run(server, drain) : await untilSignal(host, server, drain);
}

async function echoSend(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const fromInput = positionals.at(-1) === "-";
  const { target, rest } = clientTarget(fromInput ? positionals.slice(0, -1) : positionals, options, DEFAULT_ECHO_PORT);
  if (fromInput && rest.length > 0) throw new UsageError(`"-" (messages from standard input) must be the only message`);
  if (fromInput && options.udp === true) {
    throw new UsageError(`"-" (messages from standard input) does not apply with --udp`);
  }
  if (fromInput && !host.readInput) throw new UsageError(`"-": standard input cannot be read on this runtime`);
  const retries = str(options, "retries");
  if (options.udp !== true && retries !== undefined) throw new UsageError(`Option "--retries" needs --udp`);
  if (options.udp === true && "unix" in options) throw new UsageError(`Option "--unix" does not apply with --udp`);
  for (const name of ["tls", "proxy-header"]) {
    if (options.udp === true && name in options) throw new UsageError(`Option "--${name}" does not apply with --udp`);
  }
  if (retries !== undefined && !/^\d{1,6}$/.test(retries)) {
    throw new UsageError(`Invalid value for "--retries": "${retries}" is not a non-negative integer`);
  }
  const tls = await readClientTls(host, options);
  await sendEcho({
    transport: host.transport,
    ...target,
    ...(tls && { tls }),
    udp: options.udp === true,
    retries: retries === undefined ? undefined : Number(retries),
    messages: fromInput ? inputLines(host) : rest.length > 0 ? rest : undefined,
    proxyHeader: proxyHeaderOption(options),
    onReply: (reply) => host.writeOut(`Client received: ${pythonRepr(reply)}`),
  }).catch(suggestTls);
  return 0;
}

/** Standard input's lines without their line ends, empty ones left out (nothing to send). */
async function* inputLines(host: CliHost): AsyncIterable<string> {
  for await (const line of lines(host.readInput!())) {
    const text = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (text !== "") yield text;
  }
}
