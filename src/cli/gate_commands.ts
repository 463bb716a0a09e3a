// The `gate serve` and `gate knock` commands.

import { knockGate } from "../client.ts";
import { createEchoHandler } from "../echo.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT, DEFAULT_TOKEN, MAX_TOKEN_BYTES, serveGate } from "../gate.ts";
import { errorMessage } from "../log.ts";
import { parseCidr, type PenaltyOptions } from "../penalties.ts";
import { createProxyHandler } from "../proxy.ts";
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
  untilSignal,
} from "./command.ts";
import type { CliHost } from "./host.ts";
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
  usage: `echogate gate serve [--host 127.0.0.1] [--port 8001] [--unix PATH] [--token 1 | --token-file F]
                    [--timeout 5] [--max-conns N] [--max-pending N] [--penalty-exempt CIDR,... | none]
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
  --unix PATH          Listen on a unix socket instead of TCP
  --token-file F       Accept each non-empty line of F as a token (first choice)
  --token TOKEN        The token, if neither --token-file nor env ECHOGATE_TOKEN is set (default ${DEFAULT_TOKEN})
  --timeout S          Seconds to wait for the token (default 5)
  --max-conns N        Close new connections at once while N are open (default: no limit)
  --max-pending N      Close new connections at once while N wait for their token (default: no limit);
                       with --workers, both limits are per worker
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

The token is never logged; a token on the command line (visible in ps) or the default one gets a warning.`,
  options: {
    ...SERVER_TLS_FLAGS,
    "then-ca": "string",
    host: "string",
    port: "string",
    unix: "string",
    token: "string",
    "token-file": "string",
    timeout: "string",
    "max-conns": "string",
    "max-pending": "string",
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
  usage: `echogate gate knock [HOST] [--port 8001] [--unix PATH] [--token 1] [--delay 2] [--timeout S]
                    [--tls [--ca F | --tls-fingerprint FP] [--servername NAME] [--tls-cert F --tls-key F]
                    [--insecure]] [--proxy-header v1|v2 [--proxy-source IP:PORT]]`,
  help: `Usage: echogate gate knock [HOST] [options]

Connects, waits --delay seconds, sends the token and prints the reply. Exits 0 only when welcomed.

Options:
  --port PORT          Server port (default ${DEFAULT_GATE_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --token TOKEN        Token to send (default ${DEFAULT_TOKEN})
  --delay S            Seconds to wait before sending (default 2, as the seed's client)
  --timeout S          Seconds to wait for the reply (default 5)
${CLIENT_TLS_HELP}
${PROXY_CLIENT_HELP}`,
  options: {
    ...CLIENT_TLS_FLAGS,
    port: "string",
    unix: "string",
    token: "string",
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
  const maxPending = str(options, "max-pending");
  const workers = workersOption(host, options);
  const worker = workerNumber(host);
  const channel = worker === undefined ? undefined : new WorkerChannel(host, worker);
  const penalties = penaltyOptions(options);
  const settings = {
    transport: host.transport,
    ...listenOptions(options, DEFAULT_GATE_PORT),
    timeoutMs: timeout === undefined ? undefined : parseSeconds("timeout", timeout),
    maxPending: maxPending === undefined ? undefined : parsePositiveInt("max-pending", maxPending),
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
  const tokens = await resolveTokens(host, options, channel !== undefined);
  if (workers !== undefined && worker === undefined) {
    return await supervise(host, {
      count: workers,
      protocol: "gate",
      json: options.json === true,
      reload: serverTlsFiles(options) !== undefined || options["tls-self-signed"] === true,
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

/** Token sources, first found wins: --token-file, env ECHOGATE_TOKEN, --token, the seed's "1". */
async function resolveTokens(host: CliHost, options: Options, quiet = false): Promise<string[]> {
  const file = str(options, "token-file");
  if (file !== undefined) {
    let text: string;
    try {
      text = await host.readTextFile(file);
    } catch (error) {
      throw new UsageError(`Invalid value for "--token-file": cannot read "${file}": ${errorMessage(error)}`);
    }
    const tokens = text.split("\n").map((line) => line.replace(/\r$/, "")).filter((line) => line !== "");
    if (tokens.length === 0) throw new UsageError(`Invalid value for "--token-file": "${file}" holds no token`);
    return fitting(tokens, `"--token-file": a line of "${file}"`);
  }
  const env = host.env("ECHOGATE_TOKEN");
  if (env !== undefined && env !== "") return fitting([env], "env ECHOGATE_TOKEN");
  const token = str(options, "token");
  if (token === "") throw new UsageError(`Invalid value for "--token": the token is empty`);
  if (token !== undefined) {
    fitting([token], `"--token"`);
    if (quiet) return [token];
    host.writeErr(
      "echogate: warning: the token was given on the command line, where other users can read it (ps); " +
        "prefer --token-file or env ECHOGATE_TOKEN",
    );
    return [token];
  }
  if (!quiet) {
    host.writeErr(
      "echogate: warning: using the seed's well-known default token; set --token-file or env ECHOGATE_TOKEN",
    );
  }
  return [DEFAULT_TOKEN];
}

/** The gate reads one chunk of at most 1024 bytes: a longer token could never be sent whole. */
function fitting(tokens: string[], source: string): string[] {
  const encoder = new TextEncoder();
  for (const token of tokens) {
    const length = encoder.encode(token).length;
    if (length > MAX_TOKEN_BYTES) {
      throw new UsageError(
        `Invalid value for ${source}: the token is ${length} bytes, over the gate's ${MAX_TOKEN_BYTES}-byte chunk, so it could never match`,
      );
    }
  }
  return tokens;
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
    return createProxyHandler(host.transport, { path: then.slice(5) }, undefined, { proxyProtocol });
  }
  const match = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d+)$/.exec(then);
  if (!match) {
    throw new UsageError(
      `Invalid value for "--then": "${then}" is not "echo", HOST:PORT, tls://HOST:PORT or unix:PATH`,
    );
  }
  const upstream = { hostname: match[1] ?? match[2]!, port: parsePort("then", match[3]!) };
  if (!overTls) return createProxyHandler(host.transport, upstream, undefined, { proxyProtocol });
  const ca = thenCa === undefined ? undefined : await readPem(host, "then-ca", thenCa, "certificate");
  return createProxyHandler(host.transport, upstream, { tls: ca === undefined ? {} : { ca } }, { proxyProtocol });
}

async function gateKnock(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const { target, rest } = clientTarget(positionals, options, DEFAULT_GATE_PORT);
  noPositionals(rest);
  const delay = str(options, "delay");
  const token = str(options, "token");
  const tls = await readClientTls(host, options);
  const result = await knockGate({
    transport: host.transport,
    ...target,
    ...(tls && { tls }),
    token: token ?? DEFAULT_TOKEN,
    delayMs: delay === undefined ? undefined : parseSeconds("delay", delay),
    proxyHeader: proxyHeaderOption(options),
  });
  if (result.reply === "") {
    host.writeErr("echogate: the gate closed without a reply (timed out?)");
    return 1;
  }
  host.writeOut(result.reply);
  return result.welcomed ? 0 : 1;
}
