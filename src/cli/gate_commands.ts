// The `gate serve` and `gate knock` commands.

import { knockGate } from "../client.ts";
import { createEchoHandler } from "../echo.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT, DEFAULT_MAX_PENDING_PER_SOURCE, DEFAULT_TOKEN, serveGate } from "../gate.ts";
import { parseCidr, type PenaltyOptions } from "../penalties.ts";
import { createForwardHandler } from "../forward.ts";
import type { ConnectionHandler } from "../server.ts";
import { parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import { echoOptions } from "./echo_commands.ts";
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
import { isLoopbackHost } from "./loopback.ts";
import { chooseTokens } from "./tokens.ts";
import { supervise, WorkerChannel, workerLogger, workerNumber, workersOption } from "./workers.ts";
import {
  PROXY_CLIENT_HELP,
  PROXY_CLIENT_OPTIONS,
  PROXY_SERVE_HELP,
  PROXY_SERVE_OPTIONS,
  proxyHeaderOption,
  proxyProtocolOptions,
  thenProxyVersion,
} from "./proxy_flags.ts";
import {
  CLIENT_TLS_FLAGS,
  CLIENT_TLS_HELP,
  explainTlsConfigError,
  readClientTls,
  readPem,
  readSelfSignedTls,
  readServerTls,
  reloadOnSighup,
  selfSignedWorkerEnv,
  SERVER_TLS_FLAGS,
  SERVER_TLS_HELP,
  serverTlsFiles,
} from "./tls_options.ts";

/** `echogate gate serve`: the seed's knock gate. */
export const gateServeCommand: Command = {
  name: "gate serve",
  usage: `echogate gate serve [--host 127.0.0.1] [--port 8001] [--unix PATH [--unix-mode 0600]]
                    [--token 1 | --token-file F]
                    [--timeout 5] [--max-conns N] [--max-pending N] [--penalty-exempt CIDR,... | none]
                    [--max-pending-per-source ${DEFAULT_MAX_PENDING_PER_SOURCE} | none]
                    [--no-penalties] [--then echo | --then HOST:PORT | --then tls://HOST:PORT [--then-ca F]]
                    [--drain-timeout 5] [--workers N|auto] [--json]
                    [--tls-cert F --tls-key F | --tls-self-signed] [--tls-client-ca F] [--alpn L]
                    [--tls-handshake-timeout 10] [--tls-stalled-handshakes close|hold]
                    [--then-proxy-protocol v1|v2] [--proxy-protocol [--proxy-from CIDR,...] [--proxy-timeout 5]]
                    (env ECHOGATE_TOKEN also sets the token)`,
  help: `Usage: echogate gate serve [options]

Gives each connection --timeout seconds to send one token chunk (up to 1024 bytes, one trailing
newline ignored): the right token gets 'welcome to server!', anything else 'please go out!'.

Options:
  --host HOST          Address to bind (default 127.0.0.1)
  --port PORT          Port to bind, 0 for any free port (default ${DEFAULT_GATE_PORT})
  --unix PATH          Listen on a unix socket instead of TCP. A stale socket there is replaced;
                       anything else (a file, a directory, a symlink) is refused, untouched
  --unix-mode MODE     The socket's permission bits, octal (default 0600: this user only;
                       0660 lets the file's group connect too)
  --token-file F       Accept each non-empty line of F as a token (first choice)
  --token TOKEN        The token, if neither --token-file nor env ECHOGATE_TOKEN is set (default ${DEFAULT_TOKEN})
  --timeout S          Seconds to wait for the token, more than 0 (default 5)
  --max-conns N        Close new connections at once while N are open (default: no limit)
  --max-pending N      Close new connections at once while N wait for their token (default: no limit);
                       with --workers, both limits are per worker
  --max-pending-per-source N  Close a source's new connections at once while N of its own wait for their
                       token (default ${DEFAULT_MAX_PENDING_PER_SOURCE}; "none": no limit). A source is an IPv4 address or an IPv6 /64
                       (behind --proxy-protocol, the client the header names), penalty-exempt or not; per worker
  --penalty-exempt L   Comma-separated CIDR blocks never penalised, or "none" (default 127.0.0.0/8,::1/128)
  --no-penalties       Turn per-source penalties off. By default (as OpenSSH's PerSourcePenalties) a wrong
                       token adds 5 s to its source (IPv4 address, IPv6 /64), no token in time 10 s, leaving
                       without a byte 1 s; a source with more than 15 s accrued is refused until it decays
  --then echo          Keep a welcomed connection open as an echo session (--mode, --prefix,
                       --max-line and --idle-timeout apply, as for echo serve)
  --then HOST:PORT     Forward a welcomed connection to HOST:PORT ([::1]:PORT for IPv6, unix:PATH)
  --then tls://HOST:PORT  Forward it over TLS, verifying the upstream (system roots, plus --then-ca F)
  --then-proxy-protocol V  With --then HOST:PORT: first send the upstream a PROXY header (v1 or v2)
                       naming the client
${PROXY_SERVE_HELP}
  --drain-timeout S    On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)
  --workers N|auto     Serve the port from N processes (auto: one per core) under one supervisor;
                       TCP only. Penalties are shared between workers. On Deno the workers run
                       with --unstable-net (for reusePort)
  --json               Log one JSON object per event

${SERVER_TLS_HELP}

The token is never logged; a token on the command line (visible in ps) or the default one gets a warning,
and so do two token sources set at once, and a token file other users may read. The default token is
refused (exit 2) on an address other than loopback (127.0.0.0/8, ::1, localhost) or a unix socket.
--token-file F must be a regular file of at most 64 KiB.`,
  options: {
    ...SERVER_TLS_FLAGS,
    "then-ca": "string",
    host: "string",
    port: "string",
    unix: "string",
    "unix-mode": "string",
    token: "string",
    "token-file": "string",
    timeout: "string",
    "max-conns": "string",
    "max-pending": "string",
    "max-pending-per-source": "string",
    "penalty-exempt": "string",
    "no-penalties": "boolean",
    then: "string",
    mode: "string",
    prefix: "string",
    "max-line": "string",
    "idle-timeout": "string",
    "drain-timeout": "string",
    workers: "string",
    json: "boolean",
    "then-proxy-protocol": "string",
    ...PROXY_SERVE_OPTIONS,
  },
  run: gateServe,
};

/** `echogate gate knock`: the seed's first client. */
export const gateKnockCommand: Command = {
  name: "gate knock",
  usage: `echogate gate knock [HOST] [--port 8001] [--unix PATH] [--token 1 | --token-file F] [--delay 2]
                    [--timeout S] [--tls [--ca F | --tls-fingerprint FP] [--servername NAME]
                    [--tls-cert F --tls-key F] [--insecure]] [--proxy-header v1|v2 [--proxy-source IP:PORT]]`,
  help: `Usage: echogate gate knock [HOST] [options]

Connects, waits --delay seconds, sends the token and prints the reply. Exits 0 only when welcomed.

Options:
  --port PORT          Server port (default ${DEFAULT_GATE_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --token-file F       Send the first non-empty line of F (first choice; env ECHOGATE_TOKEN next)
  --token TOKEN        Token to send, if neither --token-file nor env ECHOGATE_TOKEN is set (default ${DEFAULT_TOKEN})
  --delay S            Seconds to wait before sending (default 2, as the seed's client)
  --timeout S          Seconds to wait for the reply (default 5)
${CLIENT_TLS_HELP}
${PROXY_CLIENT_HELP}`,
  options: {
    ...CLIENT_TLS_FLAGS,
    port: "string",
    unix: "string",
    token: "string",
    "token-file": "string",
    delay: "string",
    timeout: "string",
    ...PROXY_CLIENT_OPTIONS,
  },
  run: gateKnock,
};

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
  const workers = workersOption(host, options);
  const worker = workerNumber(host);
  const channel = worker === undefined ? undefined : new WorkerChannel(host, worker);
  const penalties = penaltyOptions(options);
  const settings = {
    transport: host.transport,
    ...listenOptions(options, DEFAULT_GATE_PORT),
    timeoutMs,
    maxPending: maxPending === undefined ? undefined : parsePositiveInt("max-pending", maxPending),
    maxPendingPerSource,
    penalties: penalties && channel ? { ...penalties, share: channel.share } : penalties,
    handoff: await handoff(host, options),
    proxyProtocol: proxyProtocolOptions(options),
    reusePort: channel !== undefined,
    logger: workerLogger(host, options, worker),
  };
  const drain = drainMs(options);
  const tlsFiles = serverTlsFiles(options);
  const tls = tlsFiles && await readServerTls(host, tlsFiles, options);
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
  if (workers !== undefined && worker === undefined) {
    return await supervise(host, {
      count: workers,
      protocol: "gate",
      json: options.json === true,
      reload: serverTlsFiles(options) !== undefined || options["tls-self-signed"] === true,
      drainMs: drain,
      env: await selfSignedWorkerEnv(host, options),
    });
  }
  const selfSigned = await readSelfSignedTls(host, options, settings.logger, worker);
  // A worker started again first learns the penalties the others gave meanwhile.
  await channel?.synced;
  const server = await serveGate({ ...settings, ...((tls ?? selfSigned) && { tls: tls ?? selfSigned }), tokens })
    .catch(explainTlsConfigError(tlsFiles)).catch(explainListenError);
  const reload = tlsFiles && reloadOnSighup(host, server, tlsFiles, options);
  if (reload) channel?.onReload(reload);
  return channel ? await channel.run(server, drain) : await untilSignal(host, server, drain);
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
    return false;
  }
  if (exempt === undefined) return {};
  if (exempt === "none") return { exempt: [] };
  const blocks = exempt.split(",").map((block) => block.trim());
  for (const block of blocks) {
    try {
      parseCidr(block);
    } catch {
      throw new UsageError(`Invalid value for "--penalty-exempt": "${block}" is not a CIDR block`);
    }
  }
  return { exempt: blocks };
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
  const result = await knockGate({
    transport: host.transport,
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
