// The `gate serve` and `gate knock` commands.

import { knockGate } from "../client/stream.ts";
import { createEchoHandler } from "../echo/stream.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT, DEFAULT_MAX_PENDING_PER_SOURCE, DEFAULT_TOKEN, serveGate } from "../gate/mod.ts";
import type { PenaltyOptions } from "../gate/penalties.ts";
import { parseCidr } from "../ip.ts";
import { createForwardHandler } from "../forward.ts";
import type { ConnectionHandler } from "../server.ts";
import { parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import { ECHO_FLAGS, echoOptions } from "./echo_commands.ts";
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
import {
  FLEET_FLAGS,
  FLEET_USAGE,
  haproxyReportSettings,
  penaltySizes,
  startHaproxyReporter,
  workerPenaltyReports,
} from "./fleet_flags.ts";
import type { CliHost } from "./host.ts";
import { isLoopbackHost } from "./loopback.ts";
import { prepareServer, SERVE_FLAGS, SERVE_USAGE } from "./serve_lifecycle.ts";
import { chooseTokens } from "./tokens.ts";
import { TRACE_FLAG, tracing } from "./trace_option.ts";
import {
  PROXY_CLIENT_FLAGS,
  PROXY_SERVE_FLAGS,
  PROXY_SERVE_USAGE,
  proxyHeaderOption,
  proxyProtocolOptions,
  thenProxyVersion,
} from "./proxy_flags.ts";
import {
  CLIENT_TLS_FLAGS,
  readClientTls,
  readPem,
  SERVER_TLS_FLAGS,
  SERVER_TLS_NOTE,
  SERVER_TLS_USAGE,
} from "./tls_options.ts";

/** The gate's token flags and how long it waits for the token. */
const TOKEN_FLAGS: readonly Flag[] = [
  { name: "token-file", value: "F", help: "Accept each non-empty line of F as a token (first choice)" },
  {
    name: "token",
    value: "TOKEN",
    usage: DEFAULT_TOKEN,
    help: `The token, if neither --token-file nor env ECHOGATE_TOKEN is set (default ${DEFAULT_TOKEN})`,
  },
  { name: "timeout", value: "S", usage: "5", help: "Seconds to wait for the token, more than 0 (default 5)" },
];

/** The gate's limits on waiting connections and its per-source penalties. */
const PENALTY_FLAGS: readonly Flag[] = [
  {
    name: "max-pending",
    value: "N",
    help: `Close new connections at once while N wait for their token (default: no limit);
with --workers, per worker`,
  },
  {
    name: "max-pending-per-source",
    value: "N",
    usage: String(DEFAULT_MAX_PENDING_PER_SOURCE),
    help: `Close a source's new connections at once while N of its own wait for their
token (default ${DEFAULT_MAX_PENDING_PER_SOURCE}; "none": no limit). A source is an IPv4 address or an IPv6 /64
(behind --proxy-protocol, the client the header names), penalty-exempt or not; per worker`,
  },
  {
    name: "penalty-exempt",
    value: "L",
    usage: "CIDR,...",
    help: `Comma-separated CIDR blocks never penalised, or "none" (default 127.0.0.0/8,::1/128)`,
  },
  {
    name: "no-penalties",
    help: `Turn per-source penalties off. By default (as OpenSSH's PerSourcePenalties) a wrong
token adds 5 s to its source (IPv4 address, IPv6 /64), no token in time 10 s, leaving
without a byte 1 s; a source with more than 15 s accrued is refused until it decays.
With --workers, the workers share the penalties`,
  },
];

/** What a welcomed connection does next: --then and the flags that go with it. */
const THEN_FLAGS: readonly Flag[] = [
  {
    name: "then",
    value: "echo",
    help: `Keep a welcomed connection open as an echo session (--mode, --prefix,
--max-line and --idle-timeout apply, as for echo serve)`,
  },
  {
    name: "then",
    value: "HOST:PORT",
    help: "Forward a welcomed connection to HOST:PORT ([::1]:PORT for IPv6, unix:PATH)",
  },
  {
    name: "then",
    value: "tls://HOST:PORT",
    help: "Forward it over TLS, verifying the upstream (system roots, plus --then-ca F)",
  },
  { name: "then-ca", value: "F" },
  {
    name: "then-proxy-protocol",
    value: "V",
    usage: "v1|v2",
    help: `With --then HOST:PORT: first send the upstream a PROXY header (v1 or v2)
naming the client`,
  },
];

/** `echogate gate serve`: the seed's knock gate. */
export const gateServeCommand: Command = defineCommand({
  name: "gate serve",
  usage: [
    LISTEN_USAGE,
    "[{token} | {token-file}]",
    "[{timeout}] [{max-conns}] [{max-pending}] [{penalty-exempt} | none]",
    "[{max-pending-per-source} | none]",
    `[{no-penalties}] ${FLEET_USAGE}`,
    "[--then echo | --then HOST:PORT | --then tls://HOST:PORT [{then-ca}]]",
    SERVE_USAGE,
    ...SERVER_TLS_USAGE,
    `[{then-proxy-protocol}] ${PROXY_SERVE_USAGE} [{trace}]`,
    "(env ECHOGATE_TOKEN also sets the token)",
  ],
  synopsis: "[options]",
  about: `Gives each connection --timeout seconds to send one token chunk (up to 1024 bytes, one trailing
newline ignored): the right token gets 'welcome to server!', anything else 'please go out!'.`,
  flags: [
    ...listenFlags(DEFAULT_GATE_PORT),
    ...TOKEN_FLAGS,
    MAX_CONNS_FLAG,
    ...PENALTY_FLAGS,
    ...FLEET_FLAGS,
    ...THEN_FLAGS,
    ...PROXY_SERVE_FLAGS,
    ...SERVE_FLAGS,
    "",
    ...SERVER_TLS_FLAGS,
    SERVER_TLS_NOTE,
    TRACE_FLAG,
  ],
  alsoAccepts: ECHO_FLAGS,
  footer: `The token is never logged; a token on the command line (visible in ps) or the default one gets a warning,
and so do two token sources set at once, and a token file other users may read. The default token is
refused (exit 2) on an address other than loopback (127.0.0.0/8, ::1, localhost) or a unix socket.
--token-file F must be a regular file of at most 64 KiB.`,
  run: gateServe,
});

/** `echogate gate knock`: the seed's first client. */
export const gateKnockCommand: Command = defineCommand({
  name: "gate knock",
  usage: [
    "[HOST] [{port}] [{unix}] [{token} | {token-file}] [{delay}]",
    "[{timeout}] [{tls} [{ca} | {tls-fingerprint}] [{servername}]",
    "[{tls-cert} {tls-key}] [{insecure}]] [{proxy-header} [{proxy-source}]] [{trace}]",
  ],
  synopsis: "[HOST] [options]",
  about: "Connects, waits --delay seconds, sends the token and prints the reply. Exits 0 only when welcomed.",
  flags: [
    ...clientFlags(DEFAULT_GATE_PORT),
    {
      name: "token-file",
      value: "F",
      help: "Send the first non-empty line of F (first choice; env ECHOGATE_TOKEN next)",
    },
    {
      name: "token",
      value: "TOKEN",
      usage: DEFAULT_TOKEN,
      help: `Token to send, if neither --token-file nor env ECHOGATE_TOKEN is set (default ${DEFAULT_TOKEN})`,
    },
    { name: "delay", value: "S", usage: "2", help: "Seconds to wait before sending (default 2, as the seed's client)" },
    { name: "timeout", value: "S", help: "Seconds to wait for the reply (default 5)" },
    ...CLIENT_TLS_FLAGS,
    ...PROXY_CLIENT_FLAGS,
    TRACE_FLAG,
  ],
  run: gateKnock,
});

async function gateServe(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  // Every flag is checked before the token is read, so a bad flag gets its one line alone.
  const timeout = str(options, "timeout");
  const timeoutMs = timeout === undefined ? undefined : parseSeconds("timeout", timeout);
  if (timeoutMs === 0) {
    throw new UsageError(
      `Invalid value for "--timeout": "${timeout}" is not a positive number of seconds (0 would time every connection out at once)`,
    );
  }
  const maxPending = str(options, "max-pending");
  const maxPendingPerSource = pendingPerSourceOption(options);
  // The token comes in the first chunk; behind a proxy, perhaps in the one after the header.
  const trace = tracing(host, options, { recv: "proxy-protocol" in options ? 2 : 1 });
  const server = await prepareServer(host, options);
  const { channel } = server;
  const penalties = penaltyOptions(options);
  const report = haproxyReportSettings(options, penalties !== false);
  // The process that sees every penalty reports them: the supervisor with --workers, else the server itself.
  const reporter = report && channel === undefined ? startHaproxyReporter(host, report, server.logger) : undefined;
  const onPenalty = reporter && server.supervising && penalties ? workerPenaltyReports(penalties, reporter) : undefined;
  const localPenalties = penalties && reporter ? { ...penalties, onRefusing: reporter.refusing } : penalties;
  const settings = {
    transport: trace.transport,
    ...listenOptions(options, DEFAULT_GATE_PORT),
    timeoutMs,
    maxPending: maxPending === undefined ? undefined : parsePositiveInt("max-pending", maxPending),
    maxPendingPerSource,
    penalties: penalties && channel ? { ...penalties, share: channel.share } : localPenalties,
    handoff: await handoff(host, options),
    proxyProtocol: proxyProtocolOptions(options),
    reusePort: channel !== undefined,
    logger: trace.logger(server.logger),
  };
  // Workers read the token themselves, quietly: their supervisor has warned once.
  const quiet = channel !== undefined;
  const { tokens, source } = await chooseTokens(host, options, { quiet, commandLineWarning: true });
  if (source === "default") {
    // The seed's token is well known: fine on this machine alone, an open door anywhere else.
    if (settings.path === undefined && !(await isLoopbackHost(host, settings.hostname))) {
      throw new UsageError(
        `Refusing the seed's well-known default token on "${settings.hostname}", which is not a loopback address: ` +
          `set a token with --token-file F or env ECHOGATE_TOKEN (or listen on 127.0.0.1)`,
      );
    }
    if (!quiet) {
      host.writeErr(
        "echogate: warning: using the seed's well-known default token; set --token-file or env ECHOGATE_TOKEN",
      );
    }
  }
  try {
    return await server.run("gate", async (tls) => {
      // A worker started again first learns the penalties the others gave meanwhile.
      await channel?.synced;
      return await serveGate({ ...settings, ...(tls && { tls }), tokens });
    }, { onPenalty });
  } finally {
    reporter?.close();
  }
}

/** Reads --max-pending-per-source: a positive integer, or "none" for no limit. */
function pendingPerSourceOption(options: Options): number | undefined {
  const value = str(options, "max-pending-per-source");
  if (value === undefined) return undefined;
  if (value === "none") return Infinity;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) {
    throw new UsageError(
      `Invalid value for "--max-pending-per-source": "${value}" is not a positive integer or "none"`,
    );
  }
  return n;
}

function penaltyOptions(options: Options): PenaltyOptions | false {
  const exempt = str(options, "penalty-exempt");
  if (options["no-penalties"] === true) {
    if (exempt !== undefined) throw new UsageError(`"--penalty-exempt" and "--no-penalties" exclude each other`);
    if (options.penalties !== undefined) throw new UsageError(`"--penalties" and "--no-penalties" exclude each other`);
    return false;
  }
  const sizes = penaltySizes(options);
  if (exempt === undefined) return sizes;
  if (exempt === "none") return { ...sizes, exempt: [] };
  const blocks = exempt.split(",").map((block) => block.trim());
  for (const block of blocks) {
    try {
      parseCidr(block);
    } catch {
      throw new UsageError(`Invalid value for "--penalty-exempt": "${block}" is not a CIDR block`);
    }
  }
  return { ...sizes, exempt: blocks };
}

/** Reads --then: "echo", "HOST:PORT", "[v6]:PORT", "tls://HOST:PORT" (with --then-ca) or "unix:PATH". */
async function handoff(host: CliHost, options: Options): Promise<ConnectionHandler | undefined> {
  let then = str(options, "then");
  const thenCa = str(options, "then-ca");
  const overTls = then?.startsWith("tls://") === true;
  if (thenCa !== undefined && !overTls) {
    throw new UsageError(`Option "--then-ca" applies only with "--then tls://HOST:PORT"`);
  }
  if (overTls) then = then!.slice("tls://".length);
  if (overTls && then!.startsWith("unix:")) {
    throw new UsageError(`Invalid value for "--then": TLS upstreams are TCP only`);
  }
  const echoFlags = ["mode", "prefix", "max-line", "idle-timeout"].filter((name) => options[name] !== undefined);
  if (then !== "echo" && echoFlags.length > 0) {
    throw new UsageError(`Option "--${echoFlags[0]}" applies only with "--then echo"`);
  }
  const proxyProtocol = thenProxyVersion(options);
  if (then === undefined) return undefined;
  if (then === "echo") return createEchoHandler(echoOptions(options));
  if (then.startsWith("unix:") && then.length > 5) {
    return createForwardHandler({ transport: host.transport, upstream: { path: then.slice(5) }, proxyProtocol });
  }
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d+)$/.exec(then);
  if (!match) {
    throw new UsageError(
      `Invalid value for "--then": "${then}" is not "echo", HOST:PORT, tls://HOST:PORT or unix:PATH`,
    );
  }
  const upstream = { hostname: match[1] ?? match[2]!, port: parsePort("then", match[3]!) };
  if (!overTls) return createForwardHandler({ transport: host.transport, upstream, proxyProtocol });
  const ca = thenCa === undefined ? undefined : await readPem(host, "then-ca", thenCa, "certificate");
  return createForwardHandler({
    transport: host.transport,
    upstream,
    tls: ca === undefined ? {} : { ca },
    proxyProtocol,
  });
}

async function gateKnock(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const { target, rest } = clientTarget(positionals, options, DEFAULT_GATE_PORT);
  noPositionals(rest);
  const delay = str(options, "delay");
  const { tokens } = await chooseTokens(host, options);
  const tls = await readClientTls(host, options);
  // Everything a knock sends is the token (and a PROXY header before it).
  const { transport } = tracing(host, options, { send: Infinity });
  const result = await knockGate({
    transport,
    ...target,
    ...(tls && { tls }),
    token: tokens[0]!,
    delayMs: delay === undefined ? undefined : parseSeconds("delay", delay),
    proxyHeader: proxyHeaderOption(options),
  }).catch(suggestTls);
  if (result.reply === "") {
    host.writeErr("echogate: the gate closed without a reply (timed out?)");
    return 1;
  }
  host.writeOut(result.reply);
  return result.welcomed ? 0 : 1;
}
