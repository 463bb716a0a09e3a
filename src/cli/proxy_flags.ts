// The PROXY protocol flags: --proxy-protocol/--proxy-from/--proxy-timeout on the servers,
// --proxy-header/--proxy-source on the clients, --then-proxy-protocol on the gate's forwarder.

import { UsageError } from "../errors.ts";
import { parseCidr } from "../ip.ts";
import { DEFAULT_PROXY_TRUSTED, type ProxyHeaderInit, type ProxyProtocolOptions } from "../proxy_protocol/mod.ts";
import type { Address } from "../types.ts";
import { parseChoice, parsePort, parseSeconds } from "./args.ts";
import { type Options, str } from "./command.ts";
import type { Flag } from "./flags.ts";

/** The servers' PROXY protocol flags. */
export const PROXY_SERVE_FLAGS: readonly Flag[] = [
  {
    name: "proxy-protocol",
    help: `Every connection must begin with a PROXY protocol v1 or v2 header (as HAProxy's
send-proxy / send-proxy-v2 send); logs, --max-conns and penalties see the client it names`,
  },
  {
    name: "proxy-from",
    value: "L",
    usage: "CIDR,...",
    help: `Comma-separated CIDR blocks of the proxies allowed to connect; any other peer is
refused (default ${DEFAULT_PROXY_TRUSTED.join(",")})`,
  },
  {
    name: "proxy-timeout",
    value: "S",
    usage: "5",
    help: "Seconds a connection has to send its complete header, at least 3 (default 5)",
  },
];

/** Their usage. */
export const PROXY_SERVE_USAGE = "[{proxy-protocol} [{proxy-from}] [{proxy-timeout}]]";

/** The clients' PROXY protocol flags. */
export const PROXY_CLIENT_FLAGS: readonly Flag[] = [
  {
    name: "proxy-header",
    value: "V",
    usage: "v1|v2",
    help: "Send a PROXY protocol header first, V is v1 or v2 (to test a --proxy-protocol server)",
  },
  {
    name: "proxy-source",
    value: "A",
    usage: "IP:PORT",
    help: "The client IP:PORT the header names ([v6]:PORT for IPv6; default this connection's own)",
  },
];

/** Their usage. */
export const PROXY_CLIENT_USAGE = "[{proxy-header} [{proxy-source}]]";

const VERSIONS = ["v1", "v2"] as const;

/** Reads --proxy-protocol, --proxy-from and --proxy-timeout. */
export function proxyProtocolOptions(options: Options): ProxyProtocolOptions | undefined {
  const from = str(options, "proxy-from");
  const timeout = str(options, "proxy-timeout");
  if (options["proxy-protocol"] !== true) {
    const stray = from !== undefined ? "proxy-from" : timeout !== undefined ? "proxy-timeout" : undefined;
    if (stray) throw new UsageError(`Option "--${stray}" applies only with "--proxy-protocol"`);
    return undefined;
  }
  let trusted: string[] | undefined;
  if (from !== undefined) {
    trusted = from.split(",").map((block) => block.trim());
    for (const block of trusted) {
      try {
        parseCidr(block);
      } catch {
        throw new UsageError(`Invalid value for "--proxy-from": "${block}" is not a CIDR block`);
      }
    }
  }
  const timeoutMs = timeout === undefined ? undefined : parseSeconds("proxy-timeout", timeout);
  if (timeoutMs !== undefined && timeoutMs < 3000) {
    throw new UsageError(`Invalid value for "--proxy-timeout": the PROXY protocol asks for at least 3 seconds`);
  }
  return { trusted, timeoutMs };
}

/**
 * Reads --proxy-header and --proxy-source. With `--tls` the header goes in clear text before the
 * handshake, as HAProxy sends it in front of TLS servers.
 */
export function proxyHeaderOption(options: Options): ProxyHeaderInit | undefined {
  const version = str(options, "proxy-header");
  const source = str(options, "proxy-source");
  if (version === undefined) {
    if (source !== undefined) throw new UsageError(`Option "--proxy-source" applies only with "--proxy-header"`);
    return undefined;
  }
  const init: ProxyHeaderInit = { version: parseChoice("proxy-header", version, VERSIONS) === "v1" ? 1 : 2 };
  if (source !== undefined) init.source = parseIpPort("proxy-source", source);
  return init;
}

/** Reads --then-proxy-protocol: 1, 2, or undefined. */
export function thenProxyVersion(options: Options): 1 | 2 | undefined {
  const version = str(options, "then-proxy-protocol");
  if (version === undefined) return undefined;
  const then = str(options, "then");
  if (then === undefined || then === "echo") {
    throw new UsageError(`Option "--then-proxy-protocol" applies only with "--then HOST:PORT"`);
  }
  return parseChoice("then-proxy-protocol", version, VERSIONS) === "v1" ? 1 : 2;
}

function parseIpPort(flag: string, value: string): Address {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d+)$/.exec(value);
  if (!match) throw new UsageError(`Invalid value for "--${flag}": "${value}" is not IP:PORT ([v6]:PORT for IPv6)`);
  return { transport: "tcp", hostname: match[1] ?? match[2]!, port: parsePort(flag, match[3]!) };
}
