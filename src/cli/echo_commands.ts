// The `echo serve` and `echo send` commands.

import { pythonRepr } from "../_bytes.ts";
import { sendEcho } from "../client.ts";
import {
  DEFAULT_ECHO_PORT,
  DEFAULT_MAX_LINE,
  DEFAULT_PREFIX,
  ECHO_MODES,
  type EchoOptions,
  serveEcho,
} from "../echo.ts";
import { createLogger } from "../log.ts";
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
  untilSignal,
} from "./command.ts";
import type { CliHost } from "./host.ts";
import {
  CLIENT_TLS_FLAGS,
  CLIENT_TLS_HELP,
  explainTlsConfigError,
  readClientTls,
  readServerTls,
  reloadOnSighup,
  SERVER_TLS_FLAGS,
  SERVER_TLS_HELP,
  serverTlsFiles,
} from "./tls_options.ts";

/** `echogate echo serve`: the seed's echo server. */
export const echoServeCommand: Command = {
  name: "echo serve",
  usage: `echogate echo serve [--host 127.0.0.1] [--port 50007] [--unix PATH] [--mode chunk|line|raw]
                    [--prefix 'Echo=>'] [--idle-timeout S] [--max-line BYTES] [--max-conns N]
                    [--drain-timeout 5] [--json]
                    [--tls-cert F --tls-key F [--tls-client-ca F] [--alpn L] [--tls-handshake-timeout 10]]`,
  help: `Usage: echogate echo serve [options]

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
  --json               Log one JSON object per event
${SERVER_TLS_HELP}`,
  options: {
    ...SERVER_TLS_FLAGS,
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
  usage: `echogate echo send  [HOST] [MSG...] [--port 50007] [--unix PATH] [--timeout S]
                    [--tls [--ca F] [--servername NAME] [--tls-cert F --tls-key F] [--insecure]]`,
  help: `Usage: echogate echo send [HOST] [MSG...] [options]

Sends each message (default 'Hello network world') and prints "Client received: '<reply>'".
With --unix, every positional is a message.

Options:
  --port PORT          Server port (default ${DEFAULT_ECHO_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --timeout S          Wait at most S seconds for each reply (default 5)
${CLIENT_TLS_HELP}`,
  options: { ...CLIENT_TLS_FLAGS, port: "string", unix: "string", timeout: "string" },
  run: echoSend,
};

async function echoServe(host: CliHost, positionals: string[], options: Options): Promise<number> {
  noPositionals(positionals);
  const drain = drainMs(options);
  const settings = { ...listenOptions(options, DEFAULT_ECHO_PORT), ...echoOptions(options) };
  const tlsFiles = serverTlsFiles(options);
  const tls = tlsFiles && await readServerTls(host, tlsFiles, options);
  const server = await serveEcho({
    transport: host.transport,
    ...settings,
    ...(tls && { tls }),
    logger: createLogger({ json: options.json === true, writeOut: host.writeOut, writeErr: host.writeErr }),
  }).catch(explainTlsConfigError(tlsFiles)).catch(explainListenError);
  if (tlsFiles) reloadOnSighup(host, server, tlsFiles, options);
  return await untilSignal(host, server, drain);
}

async function echoSend(host: CliHost, positionals: string[], options: Options): Promise<number> {
  const { target, rest } = clientTarget(positionals, options, DEFAULT_ECHO_PORT);
  const tls = await readClientTls(host, options);
  await sendEcho({
    transport: host.transport,
    ...target,
    ...(tls && { tls }),
    messages: rest.length > 0 ? rest : undefined,
    onReply: (reply) => host.writeOut(`Client received: ${pythonRepr(reply)}`),
  });
  return 0;
}
