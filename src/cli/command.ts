// What every CLI command is, and the helpers the commands share.

import { AddrInUseError, UsageError } from "../errors.ts";
import { ServerSpeaksTlsError } from "../client/connect_errors.ts";
import { createLogger, errorMessage, type Logger } from "../log.ts";
import type { EchogateServer } from "../server.ts";
import { type OptionSpec, parsePort, parsePositiveInt, parseSeconds } from "./args.ts";
import type { Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/** Parsed options of one command, by name. */
export type Options = Record<string, string | boolean>;

/** One `echogate` command, such as `echo serve`. */
export interface Command {
  /** The words that name it: `"echo serve"`, or one word for a top-level command. */
  name: string;
  /** Its usage lines for the overview (`echogate --help`). */
  usage: string;
  /** The full text of `echogate <name> --help`. */
  help: string;
  /** The options it takes (`--help` and `--version` are added). */
  options: OptionSpec;
  /** Runs it and resolves with the exit code. */
  run(host: CliHost, positionals: string[], options: Options): Promise<number>;
}

/** How long a shutting-down server waits for its connections by default, in ms. */
export const DEFAULT_DRAIN_MS = 5000;

/** The value of a string option, if given. */
export function str(options: Options, name: string): string | undefined {
  const value = options[name];
  return typeof value === "string" ? value : undefined;
}

/** Fails on positionals for commands that take none. */
export function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
}

/** Reads --unix-mode: octal permission bits such as 0660 (three digits, an optional leading 0). */
export function parseUnixMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) {
    throw new UsageError(`Invalid value for "--unix-mode": "${value}" is not an octal mode such as 0600 or 0660`);
  }
  return Number.parseInt(value, 8);
}

/**
 * The flags of the address a server listens on.
 *
 * @example
 * ```ts ignore
 * listenFlags(50007); // --host, --port (default 50007), --unix, --unix-mode
 * ```
 */
export function listenFlags(defaultPort: number): Flag[] {
  return [
    {
      name: "host",
      value: "HOST",
      usage: "127.0.0.1",
      help: "Address to bind: IPv4, IPv6 or a name (default 127.0.0.1)",
    },
    {
      name: "port",
      value: "PORT",
      usage: String(defaultPort),
      help: `Port to bind, 0 for any free port (default ${defaultPort})`,
    },
    {
      name: "unix",
      value: "PATH",
      help: `Listen on a unix socket instead of TCP. A stale socket there is replaced;
anything else (a file, a directory, a symlink) is refused, untouched`,
    },
    {
      name: "unix-mode",
      value: "MODE",
      usage: "0600",
      help: `The socket's permission bits, octal (default 0600: this user only;
0660 lets the file's group connect too)`,
    },
  ];
}

/** Their usage. */
export const LISTEN_USAGE = "[{host}] [{port}] [{unix} [{unix-mode}]]";

/** A server's --max-conns flag. */
export const MAX_CONNS_FLAG: Flag = {
  name: "max-conns",
  value: "N",
  help: `Close new connections at once while N are open (default: no limit);
with --workers, per worker`,
};

/** Reads --host, --port, --unix, --unix-mode and --max-conns. */
export function listenOptions(options: Options, defaultPort: number) {
  const unix = str(options, "unix");
  if (unix === "") throw new UsageError(`Invalid value for "--unix": the path is empty`);
  const unixMode = str(options, "unix-mode");
  if (unixMode !== undefined && unix === undefined) throw new UsageError(`Option "--unix-mode" needs --unix`);
  const host = str(options, "host");
  if (host === "") throw new UsageError(`Invalid value for "--host": the host is empty`);
  const port = str(options, "port");
  const maxConns = str(options, "max-conns");
  return {
    hostname: host ?? "127.0.0.1",
    port: port === undefined ? defaultPort : parsePort("port", port),
    path: unix,
    unixMode: unixMode === undefined ? undefined : parseUnixMode(unixMode),
    maxConns: maxConns === undefined ? undefined : parsePositiveInt("max-conns", maxConns),
  };
}

/** Reads --drain-timeout. */
export function drainMs(options: Options): number {
  const value = str(options, "drain-timeout");
  return value === undefined ? DEFAULT_DRAIN_MS : parseSeconds("drain-timeout", value);
}

/** The logger of a server command (--json or human lines), which also reports dropped log lines. */
export function serverLogger(host: CliHost, options: Options, worker?: number): Logger {
  const logger = createLogger({
    json: options.json === true,
    writeOut: host.writeOut,
    writeErr: host.writeErr,
    worker,
  });
  host.onOutputDropped?.((stream, lines) => logger.log({ event: "log-dropped", stream, lines }));
  return logger;
}

/** Passes "in use" on as it is; any other listen failure gets context. */
export function explainListenError(error: unknown): never {
  if (error instanceof AddrInUseError || error instanceof UsageError) throw error;
  throw new Error(`Cannot listen: ${errorMessage(error)}`);
}

/**
 * The one line a server prints when a signal finds connections open, so a Ctrl-C that waits for
 * them does not wait silently; undefined when there is nothing to wait for.
 *
 * @example
 * ```ts ignore
 * drainingNotice(2, 5000, "SIGINT"); // "echogate: draining 2 connections for up to 5 s; Ctrl-C again to stop now"
 * ```
 */
export function drainingNotice(connections: number, drainMs: number, signal: "SIGINT" | "SIGTERM"): string | undefined {
  if (connections === 0 || drainMs === 0) return undefined;
  const again = signal === "SIGINT" ? "Ctrl-C again" : "SIGTERM again";
  return `echogate: draining ${connections} connection${connections === 1 ? "" : "s"} for up to ${
    drainMs / 1000
  } s; ${again} to stop now`;
}

/**
 * On SIGINT/SIGTERM: stop accepting, let connections finish, exit 0. With connections open it
 * says so in one line; a second signal exits at once.
 */
export function untilSignal(host: CliHost, server: EchogateServer, drainMs: number): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: "SIGINT" | "SIGTERM") => {
      if (stopping) return host.exit(130); // a second signal: exit at once
      stopping = true;
      const notice = drainingNotice(server.connections, drainMs, signal);
      if (notice !== undefined) host.writeErr(notice);
      server.close({ drainMs }).then(() => resolve(0), () => resolve(1));
    };
    host.onSignal("SIGINT", () => stop("SIGINT"));
    host.onSignal("SIGTERM", () => stop("SIGTERM"));
  });
}

/**
 * The flags of a client's target (with [HOST]): --port and --unix.
 *
 * @example
 * ```ts ignore
 * clientFlags(8001); // --port (default 8001), --unix
 * ```
 */
export function clientFlags(defaultPort: number, defaults: string = String(defaultPort)): Flag[] {
  return [
    {
      name: "port",
      value: "PORT",
      usage: String(defaultPort),
      help: `Server port (default ${defaults}); HOST defaults to localhost`,
    },
    { name: "unix", value: "PATH", help: "Connect to a unix socket instead" },
  ];
}

/** Reads a client's target: [HOST] and --port, or --unix (then every positional is left over). */
export function clientTarget(positionals: string[], options: Options, defaultPort: number) {
  const unix = str(options, "unix");
  const port = str(options, "port");
  const timeout = str(options, "timeout");
  const timeoutMs = timeout === undefined ? undefined : parseSeconds("timeout", timeout);
  if (unix !== undefined) return { target: { path: unix, timeoutMs }, rest: positionals };
  const [host, ...rest] = positionals;
  // "[v6]" and "[v6]:PORT", the forms servers print, as well as a bare host.
  const bracketed = host === undefined ? null : /^\[([^\]]*)\](?::(\d*))?$/.exec(host);
  if (bracketed && bracketed[2] !== undefined && port !== undefined) {
    throw new UsageError(`"${host}" names a port and so does "--port": give one`);
  }
  const hostPort = bracketed?.[2];
  return {
    target: {
      hostname: bracketed ? bracketed[1]! : host ?? "localhost",
      port: hostPort !== undefined
        ? parsePort("port", hostPort)
        : port === undefined
        ? defaultPort
        : parsePort("port", port),
      timeoutMs,
    },
    rest,
  };
}

/** Passes a client's failure on, telling a plain client that reached a TLS server which flag it needs. */
export function suggestTls(error: unknown): never {
  if (error instanceof ServerSpeaksTlsError) throw new Error(`${error.message}: use --tls`, { cause: error });
  throw error;
}
