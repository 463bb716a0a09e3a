// The `gate serve` and `gate knock` commands.

import { knockGate } from "../client.ts";
import { UsageError } from "../errors.ts";
import { DEFAULT_GATE_PORT, DEFAULT_TOKEN, serveGate } from "../gate.ts";
import { createLogger, errorMessage } from "../log.ts";
import { parseSeconds } from "./args.ts";
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

/** `echogate gate serve`: the seed's knock gate. */
export const gateServeCommand: Command = {
  name: "gate serve",
  usage: `echogate gate serve [--host 127.0.0.1] [--port 8001] [--unix PATH] [--token 1 | --token-file F]
                    [--timeout 5] [--max-conns N] [--drain-timeout 5] [--json]
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
  --drain-timeout S    On SIGINT/SIGTERM, give open connections S seconds to finish (default 5)
  --json               Log one JSON object per event`,
  options: {
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
  run: gateServe,
};

/** `echogate gate knock`: the seed's first client. */
export const gateKnockCommand: Command = {
  name: "gate knock",
  usage: "echogate gate knock [HOST] [--port 8001] [--unix PATH] [--token 1] [--delay 2] [--timeout S]",
  help: `Usage: echogate gate knock [HOST] [options]

Connects, waits --delay seconds, sends the token and prints the reply. Exits 0 only when welcomed.

Options:
  --port PORT          Server port (default ${DEFAULT_GATE_PORT}); HOST defaults to localhost
  --unix PATH          Connect to a unix socket instead
  --token TOKEN        Token to send (default ${DEFAULT_TOKEN})
  --delay S            Seconds to wait before sending (default 2, as the seed's client)
  --timeout S          Seconds to wait for the reply (default 5)`,
  options: { port: "string", unix: "string", token: "string", delay: "string", timeout: "string" },
  run: gateKnock,
};

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
