/**
 * The `echogate` command line, written against a {@linkcode CliHost} so it runs the same on
 * every runtime and can be tested without spawning a process.
 *
 * @module
 */

import { pythonRepr } from "../_bytes.ts";
import { knockGate, sendEcho } from "../client.ts";
import { DEFAULT_ECHO_PORT, DEFAULT_MAX_LINE, DEFAULT_PREFIX, ECHO_MODES, serveEcho } from "../echo.ts";
import { AddrInUseError, UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT, DEFAULT_TOKEN, serveGate } from "../gate.ts";
import { createLogger, errorMessage } from "../log.ts";
import type { EchogateServer } from "../server.ts";
import { VERSION } from "../version.ts";
import { type OptionSpec, parseArgs, parseChoice, parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import type { CliHost } from "./host.ts";

const HELP = `echogate ${VERSION}: the seed's echo and gate protocols, on Node, Deno and Bun

Usage:
  echogate echo serve [--host 127.0.0.1] [--port 50007] [--unix PATH] [--mode chunk|line|raw]
                      [--prefix 'Echo=>'] [--idle-timeout S] [--max-line BYTES] [--max-conns N]
                      [--drain-timeout 5] [--json]
  echogate echo send  [HOST] [MSG...] [--port 50007] [--unix PATH] [--timeout S]
  echogate gate serve [--host 127.0.0.1] [--port 8001] [--unix PATH] [--token 1 | --token-file F]
                      [--timeout 5] [--max-conns N] [--drain-timeout 5] [--json]
                      (env ECHOGATE_TOKEN also sets the token)
  echogate gate knock [HOST] [--port 8001] [--unix PATH] [--token 1] [--delay 2] [--timeout S]

Options:
  -h, --help       Show help for the command
  -V, --version    Show the version`;

const ECHO_HELP = `Usage:
  echogate echo serve [--host 127.0.0.1] [--port 50007] [--unix PATH] [--mode chunk|line|raw]
                      [--prefix 'Echo=>'] [--idle-timeout S] [--max-line BYTES] [--max-conns N] [--json]
  echogate echo send  [HOST] [MSG...] [--port 50007] [--unix PATH] [--timeout S]`;

const ECHO_SERVE_HELP = `Usage: echogate echo serve [options]

Answers every read with prefix + chunk until the peer closes (the seed's echo server).

Options:
  --host HOST          Address to bind: IPv4, IPv6 or a name (default 127.0.0.1)
  --port PORT          Port to bind, 0 for any free port (default ${DEFAULT_ECHO_PORT})
  --unix PATH          Listen on a unix socket instead of TCP
  --mode MODE          chunk: one answer per read; line: one per \\n-terminated line;
                       raw: bytes back unchanged (default chunk)
  --prefix STR         Put before every answer in chunk and line mode (default '${DEFAULT_PREFIX}')
  --idle-timeout S     Close a connection after S seconds without traffic (default: never)
  --max-line BYTES     Longest line in line mode; longer closes the connection (default ${DEFAULT_MAX_LINE})
  --max-conns N        Close new connections at once while N are open (default: no limit)
  --drain-timeout S    On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)
  --json               Log one JSON object per event`;

const ECHO_SEND_HELP = `Usage: echogate echo send [HOST] [MSG...] [options]

Sends each message (default 'Hello network world') and prints "Client received: '<reply>'".
With --unix, every positional is a message.

Options:
  --port PORT          Server port (default ${DEFAULT_ECHO_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --timeout S          Wait at most S seconds for each reply (default 5)`;

const GATE_HELP = `Usage:
  echogate gate serve [--host 127.0.0.1] [--port 8001] [--unix PATH] [--token 1 | --token-file F]
                      [--timeout 5] [--max-conns N] [--json]
  echogate gate knock [HOST] [--port 8001] [--unix PATH] [--token 1] [--delay 2] [--timeout S]`;

const GATE_SERVE_HELP = `Usage: echogate gate serve [options]

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
  --drain-timeout S    On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)
  --json               Log one JSON object per event`;

const GATE_KNOCK_HELP = `Usage: echogate gate knock [HOST] [options]

Connects, waits --delay seconds, sends the token and prints the reply. Exits 0 only when welcomed.

Options:
  --port PORT          Server port (default ${DEFAULT_GATE_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --token TOKEN        Token to send (default ${DEFAULT_TOKEN})
  --delay S            Seconds to wait before sending (default 2, as the seed's client)
  --timeout S          Seconds to wait for the reply (default 5)`;

const DEFAULT_DRAIN_MS = 5000;
const COMMON: OptionSpec = { help: "boolean", version: "boolean" };
const SPECS: Record<string, OptionSpec> = {
  "echo serve": {
    ...COMMON,
    host: "string",
    port: "string",
    unix: "string",
    mode: "string",
    prefix: "string",
    "idle-timeout": "string",
    "max-line": "string",
    "max-conns": "string",
    "drain-timeout": "string",
    json: "boolean",
  },
  "echo send": { ...COMMON, port: "string", unix: "string", timeout: "string" },
  "gate serve": {
    ...COMMON,
    host: "string",
    port: "string",
    unix: "string",
    token: "string",
    "token-file": "string",
    timeout: "string",
    "max-conns": "string",
    "drain-timeout": "string",
    json: "boolean",
  },
  "gate knock": { ...COMMON, port: "string", unix: "string", token: "string", delay: "string", timeout: "string" },
};
const HELPS: Record<string, string> = {
  "": HELP,
  echo: ECHO_HELP,
  gate: GATE_HELP,
  "echo serve": ECHO_SERVE_HELP,
  "echo send": ECHO_SEND_HELP,
  "gate serve": GATE_SERVE_HELP,
  "gate knock": GATE_KNOCK_HELP,
};

/**
 * Runs the `echogate` command line and resolves with the exit code. Servers resolve once a
 * SIGINT or SIGTERM has closed them (a second signal exits at once).
 *
 * @param host The runtime's arguments, output, signals and transport.
 * @returns 0 on success, 1 on failure, 2 on a usage error.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./main.ts";
 * import { host } from "../../adapters/node.ts";
 *
 * host.exit(await runCli(host));
 * ```
 */
export async function runCli(host: CliHost): Promise<number> {
  try {
    return await dispatch(host);
  } catch (error) {
    host.writeErr(`echogate: ${errorMessage(error)}`);
    if (error instanceof UsageError) {
      host.writeErr("Run 'echogate --help' for usage.");
      return 2;
    }
    return 1;
  }
}

async function dispatch(host: CliHost): Promise<number> {
  const args = host.args;
  const words: string[] = [];
  for (const arg of args) {
    if (arg.startsWith("-") || words.length === 2) break;
    words.push(arg);
  }
  const command = words.join(" ");
  const spec = SPECS[command];
  if (!spec) {
    // A group or the top level: only --help and --version apply here.
    const group = words[0];
    if (group !== undefined && group !== "echo" && group !== "gate") throw new UsageError(`Unknown command "${group}"`);
    if (words.length === 2) throw new UsageError(`Unknown command "${command}"`);
    const { options } = parseArgs(args.slice(words.length), COMMON);
    if (options.version) {
      host.writeOut(VERSION);
      return 0;
    }
    if (options.help) {
      host.writeOut(HELPS[group ?? ""]!);
      return 0;
    }
    throw new UsageError(group ? `Missing command after "${group}"` : "Missing command");
  }
  const parsed = parseArgs(args.slice(2), spec);
  if (parsed.options.version) {
    host.writeOut(VERSION);
    return 0;
  }
  if (parsed.options.help) {
    host.writeOut(HELPS[command]!);
    return 0;
  }
  switch (command) {
    case "echo serve":
      return await echoServe(host, parsed.positionals, parsed.options);
    case "echo send":
      return await echoSend(host, parsed.positionals, parsed.options);
    case "gate serve":
      return await gateServe(host, parsed.positionals, parsed.options);
    default:
      return await gateKnock(host, parsed.positionals, parsed.options);
  }
}

type Options = Record<string, string | boolean>;

function str(options: Options, name: string): string | undefined {
  const value = options[name];
  return typeof value === "string" ? value : undefined;
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
}

function listenOptions(options: Options, defaultPort: number) {
  const unix = str(options, "unix");
  if (unix === "") throw new UsageError(`Invalid value for "--unix": the path is empty`);
  const host = str(options, "host");
  if (host === "") throw new UsageError(`Invalid value for "--host": the host is empty`);
  const port = str(options, "port");
  const maxConns = str(options, "max-conns");
  return {
    hostname: host ?? "127.0.0.1",
    port: port === undefined ? defaultPort : parsePort("port", port),
    path: unix,
    maxConns: maxConns === undefined ? undefined : parsePositiveInt("max-conns", maxConns),
  };
}

async function echoServe(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  const idle = str(options, "idle-timeout");
  const maxLine = str(options, "max-line");
  const mode = str(options, "mode");
  const drain = drainMs(options);
  const server = await serveEcho({
    transport: host.transport,
    ...listenOptions(options, DEFAULT_ECHO_PORT),
    mode: mode === undefined ? "chunk" : parseChoice("mode", mode, ECHO_MODES),
    prefix: str(options, "prefix"),
    idleTimeoutMs: idle === undefined ? undefined : parseSeconds("idle-timeout", idle),
    maxLine: maxLine === undefined ? undefined : parsePositiveInt("max-line", maxLine),
    logger: createLogger({ json: options.json === true, writeOut: host.writeOut, writeErr: host.writeErr }),
  }).catch(explainListenError);
  return await untilSignal(host, server, drain);
}

async function gateServe(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  const timeout = str(options, "timeout");
  const tokens = await resolveTokens(host, options);
  const drain = drainMs(options);
  const server = await serveGate({
    transport: host.transport,
    ...listenOptions(options, DEFAULT_GATE_PORT),
    tokens,
    timeoutMs: timeout === undefined ? undefined : parseSeconds("timeout", timeout),
    logger: createLogger({ json: options.json === true, writeOut: host.writeOut, writeErr: host.writeErr }),
  }).catch(explainListenError);
  return await untilSignal(host, server, drain);
}

function drainMs(options: Options): number {
  const value = str(options, "drain-timeout");
  return value === undefined ? DEFAULT_DRAIN_MS : parseSeconds("drain-timeout", value);
}

/** Token sources, first found wins: --token-file, env ECHOGATE_TOKEN, --token, the seed's "1". */
async function resolveTokens(host: CliHost, options: Options): Promise<string[]> {
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
    return tokens;
  }
  const env = host.env("ECHOGATE_TOKEN");
  if (env !== undefined && env !== "") return [env];
  const token = str(options, "token");
  if (token === "") throw new UsageError(`Invalid value for "--token": the token is empty`);
  return [token ?? DEFAULT_TOKEN];
}

function explainListenError(error: unknown): never {
  if (error instanceof AddrInUseError) throw error;
  throw new Error(`Cannot listen: ${errorMessage(error)}`);
}

/** On SIGINT/SIGTERM: stop accepting, let connections finish, exit 0. A second signal exits at once. */
function untilSignal(host: CliHost, server: EchogateServer, drainMs: number): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return host.exit(130); // a second signal: exit at once
      stopping = true;
      server.close({ drainMs }).then(() => resolve(0), () => resolve(1));
    };
    host.onSignal("SIGINT", stop);
    host.onSignal("SIGTERM", stop);
  });
}

function clientTarget(positionals: string[], options: Options, defaultPort: number) {
  const unix = str(options, "unix");
  const port = str(options, "port");
  const timeout = str(options, "timeout");
  const timeoutMs = timeout === undefined ? undefined : parseSeconds("timeout", timeout);
  if (unix !== undefined) return { target: { path: unix, timeoutMs }, rest: positionals };
  const [hostname, ...rest] = positionals;
  return {
    target: {
      hostname: hostname ?? "localhost",
      port: port === undefined ? defaultPort : parsePort("port", port),
      timeoutMs,
    },
    rest,
  };
}

async function echoSend(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const { target, rest } = clientTarget(positionals, options, DEFAULT_ECHO_PORT);
  await sendEcho({
    transport: host.transport,
    ...target,
    messages: rest.length > 0 ? rest : undefined,
    onReply: (reply) => host.writeOut(`Client received: ${pythonRepr(reply)}`),
  });
  return 0;
}

async function gateKnock(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const { target, rest } = clientTarget(positionals, options, DEFAULT_GATE_PORT);
  noPositionals(rest);
  const delay = str(options, "delay");
  const token = str(options, "token");
  const result = await knockGate({
    transport: host.transport,
    ...target,
    token: token ?? DEFAULT_TOKEN,
    delayMs: delay === undefined ? undefined : parseSeconds("delay", delay),
  });
  if (result.reply === "") {
    host.writeErr("echogate: the gate closed without a reply (timed out?)");
    return 1;
  }
  host.writeOut(result.reply);
  return result.welcomed ? 0 : 1;
}
