// The `echo serve` and `echo send` commands.

import { pythonRepr, utf8 } from "../_bytes.ts";
import { sendEcho } from "../client/stream.ts";
import {
  DEFAULT_ECHO_PORT,
  DEFAULT_MAX_LINE,
  DEFAULT_PREFIX,
  ECHO_MODES,
  type EchoOptions,
  serveEcho,
} from "../echo/stream.ts";
import { DEFAULT_MAX_DATAGRAM, MAX_UDP_PREFIX } from "../echo/datagram.ts";
import { type DatagramLimits, DEFAULT_UDP_BUDGET, DEFAULT_UDP_RATE } from "../echo/sources.ts";
import { DEFAULT_UDP_RETRIES } from "../client/datagram.ts";
import { UsageError } from "../errors.ts";
import { parseChoice, parsePositiveInt, parseSeconds } from "./args.ts";
import {
  clientFlags,
  clientTarget,
  type Command,
  LISTEN_USAGE,
  listenFlags,
  listenOptions,
  MAX_CONNS_FLAG,
  noPositionals,
  type Options,
  str,
  suggestTls,
} from "./command.ts";
import { defineCommand, type Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";
import { prepareServer, SERVE_FLAGS, SERVE_USAGE } from "./serve_lifecycle.ts";
import { TRACE_FLAG, tracing } from "./trace_option.ts";
import { lines } from "./workers.ts";
import {
  PROXY_CLIENT_FLAGS,
  PROXY_SERVE_FLAGS,
  PROXY_SERVE_USAGE,
  proxyHeaderOption,
  proxyProtocolOptions,
} from "./proxy_flags.ts";
import {
  CLIENT_TLS_FLAGS,
  readClientTls,
  SERVER_TLS_FLAGS,
  SERVER_TLS_NOTE,
  SERVER_TLS_USAGE,
  serverTlsFiles,
} from "./tls_options.ts";

/** The echo session's flags (also taken by `gate serve --then echo`). */
export const ECHO_FLAGS: readonly Flag[] = [
  {
    name: "mode",
    value: "MODE",
    usage: ECHO_MODES.join("|"),
    help: `chunk: one answer per read; line: one per \\n-terminated line;
raw: bytes back unchanged (default chunk)`,
  },
  {
    name: "prefix",
    value: "STR",
    usage: `'${DEFAULT_PREFIX}'`,
    help: `Put before every answer in chunk and line mode (default '${DEFAULT_PREFIX}');
with --udp at most ${MAX_UDP_PREFIX} bytes unless --no-udp-limits`,
  },
  { name: "idle-timeout", value: "S", help: "Close a connection after S seconds without traffic (default: never)" },
  {
    name: "max-line",
    value: "BYTES",
    help: `Longest line in line mode; longer closes the connection (default ${DEFAULT_MAX_LINE})`,
  },
];

/** `echo serve`'s UDP flags. */
const UDP_FLAGS: readonly Flag[] = [
  {
    name: "udp",
    help: `Serve UDP: every datagram is answered with prefix + datagram, to its sender.
Datagrams from source ports 0, 7, 19 and the server's own are never answered`,
  },
  {
    name: "max-datagram",
    value: "B",
    usage: String(DEFAULT_MAX_DATAGRAM),
    help: `Drop (and count) datagrams over B bytes (default ${DEFAULT_MAX_DATAGRAM})`,
  },
  {
    name: "udp-rate",
    value: "N",
    usage: String(DEFAULT_UDP_RATE),
    help: `Answers per second to one source address (IPv6: per /64), bursts of 2N
(default ${DEFAULT_UDP_RATE}); one source never gets more than half the budget`,
  },
  {
    name: "udp-budget",
    value: "N",
    usage: String(DEFAULT_UDP_BUDGET),
    help: `Answers per second in total, over every source (default ${DEFAULT_UDP_BUDGET})`,
  },
  { name: "no-udp-limits", help: "No per-source rate and no budget (a lab; never on a public address)" },
];

/** `echogate echo serve`: the seed's echo server. */
export const echoServeCommand: Command = defineCommand({
  name: "echo serve",
  usage: [
    LISTEN_USAGE,
    "[{mode}] [{prefix}] [{idle-timeout}] [{max-line}]",
    "[{max-conns}]",
    SERVE_USAGE,
    ...SERVER_TLS_USAGE,
    PROXY_SERVE_USAGE,
    "[{udp} [{max-datagram}] [{udp-rate}] [{udp-budget}] [{no-udp-limits}]]",
    "[{trace}]",
  ],
  synopsis: "[options]",
  about: "Answers every read with prefix + chunk until the peer closes (the seed's echo server).",
  flags: [
    ...listenFlags(DEFAULT_ECHO_PORT),
    ...ECHO_FLAGS,
    MAX_CONNS_FLAG,
    ...PROXY_SERVE_FLAGS,
    ...SERVE_FLAGS,
    ...SERVER_TLS_FLAGS,
    SERVER_TLS_NOTE,
    "",
    "UDP (RFC 862 over datagrams; see docs/udp.md):",
    ...UDP_FLAGS,
    "",
    TRACE_FLAG,
  ],
  run: echoServe,
});

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
export const echoSendCommand: Command = defineCommand({
  name: "echo send",
  usage: [
    "[HOST] [MSG... | -] [{port}] [{unix}] [{timeout}]",
    "[{tls} [{ca} | {tls-fingerprint}] [{servername}] [{tls-cert} {tls-key}]",
    "[{insecure}]]",
    "[{proxy-header} [{proxy-source}]] [{udp} [{retries}]] [{trace}]",
  ],
  synopsis: "[HOST] [MSG... | -] [options]",
  about: `Sends each message (default 'Hello network world') and prints "Client received: '<reply>'".
With --unix, every positional is a message. With - as the only message, reads the messages from
standard input, one per line (sent without its newline; empty lines are skipped), each sent once
the previous reply came, until end of input.`,
  flags: [
    ...clientFlags(DEFAULT_ECHO_PORT),
    {
      name: "timeout",
      value: "S",
      help: "Wait at most S seconds for each reply (default 5; with --udp, per try: 1)",
    },
    { name: "udp", help: "Send each message as one UDP datagram; exits 1 when one never got a reply" },
    {
      name: "retries",
      value: "N",
      usage: String(DEFAULT_UDP_RETRIES),
      help: `With --udp: send a message again up to N times (default ${DEFAULT_UDP_RETRIES})`,
    },
    ...CLIENT_TLS_FLAGS,
    ...PROXY_CLIENT_FLAGS,
    TRACE_FLAG,
  ],
  run: echoSend,
});

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
  const udp = udpOptions(options);
  const settings = { ...listenOptions(options, DEFAULT_ECHO_PORT), ...echoOptions(options) };
  const proxyProtocol = proxyProtocolOptions(options);
  if (udp.udp && (serverTlsFiles(options) || options["tls-self-signed"])) {
    throw new UsageError(`TLS does not apply with --udp`);
  }
  const trace = tracing(host, options);
  const server = await prepareServer(host, options);
  return await server.run("echo", (tls) =>
    serveEcho({
      transport: trace.transport,
      ...settings,
      ...(tls && { tls }),
      proxyProtocol,
      ...udp,
      reusePort: server.channel !== undefined,
      logger: trace.logger(server.logger),
    }));
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
  const { transport } = tracing(host, options);
  const tls = await readClientTls(host, options);
  await sendEcho({
    transport,
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
