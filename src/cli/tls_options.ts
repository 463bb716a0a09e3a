// The TLS flags of the servers (--tls-cert, --tls-key, --tls-self-signed, --tls-client-ca, --alpn,
// --tls-handshake-timeout, --tls-stalled-handshakes) and of the clients (--tls, --ca, --servername, --tls-cert, --tls-key,
// --insecure, --tls-fingerprint), and SIGHUP reloading for servers.

import { UsageError } from "../errors.ts";
import { createLogger, errorMessage, type Logger } from "../log.ts";
import type { EchogateServer } from "../server.ts";
import { type TlsClientOptions, TlsConfigError, type TlsServerOptions } from "../tls.ts";
import { createSelfSignedTls, normalizeFingerprint, type SelfSignedTls } from "../tls_self_signed.ts";
import { parseSeconds } from "./args.ts";
import { type Options, str } from "./command.ts";
import { continued, type Flag } from "./flags.ts";
import type { CliHost } from "./host.ts";

/** The servers' TLS flags. */
export const SERVER_TLS_FLAGS: readonly Flag[] = [
  { name: "tls-cert", value: "F", help: "Serve TLS with this PEM certificate chain (needs --tls-key)" },
  { name: "tls-key", value: "F", help: "The certificate's PEM private key" },
  {
    name: "tls-self-signed",
    help: `Serve TLS with a throwaway EC P-256 certificate made at start (SANs: --host, localhost,
127.0.0.1, ::1) and print its SHA-256 fingerprint, for clients' --tls-fingerprint`,
  },
  { name: "tls-client-ca", value: "F", help: "Require a client certificate signed by this PEM CA (mutual TLS)" },
  { name: "alpn", value: "LIST", usage: "L", help: "Comma-separated ALPN protocols to offer" },
  {
    name: "tls-handshake-timeout",
    value: "S",
    usage: "10",
    help: "Close connections that have not finished the handshake in S seconds (default 10)",
  },
  {
    name: "tls-stalled-handshakes",
    value: "close|hold",
    help: `hold: on Deno, serve with Deno.listenTls (faster), whose timed-out
handshakes keep their descriptors until the peer leaves (default close)`,
  },
];

/** The --help line after {@linkcode SERVER_TLS_FLAGS}' rows. */
export const SERVER_TLS_NOTE: string = continued(
  "SIGHUP re-reads the certificate, key and client CA for new connections",
);

/** Their usage lines. */
export const SERVER_TLS_USAGE: readonly string[] = [
  "[{tls-cert} {tls-key} | {tls-self-signed}] [{tls-client-ca}] [{alpn}]",
  "[{tls-handshake-timeout}] [{tls-stalled-handshakes}]",
];

/** The clients' TLS flags. */
export const CLIENT_TLS_FLAGS: readonly Flag[] = [
  { name: "tls", help: "Speak TLS (implied by the flags below)" },
  { name: "ca", value: "F", help: "Trust this PEM CA in addition to the system roots" },
  { name: "servername", value: "NAME", help: "Name sent as SNI and verified in the certificate (default: the host)" },
  { name: "tls-cert", value: "F", help: "Present this PEM client certificate (needs --tls-key)" },
  { name: "tls-key", value: "F", help: "The client certificate's PEM private key" },
  { name: "insecure", help: "Do not verify the server's certificate (a warning is printed)" },
  {
    name: "tls-fingerprint",
    value: "FP",
    help: `Accept only the server certificate whose SHA-256 is FP (AB:CD:… as openssl
and --tls-self-signed print it), instead of verifying it against CAs and a name`,
  },
];

/** Reads a PEM file named by `--flag`: a usage error naming both when it cannot be read or is not PEM. */
export async function readPem(host: CliHost, flag: string, path: string, kind: "certificate" | "key"): Promise<string> {
  if (path === "") throw new UsageError(`Invalid value for "--${flag}": the path is empty`);
  let text: string;
  try {
    text = await host.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Invalid value for "--${flag}": cannot read "${path}": ${errorMessage(error)}`);
  }
  const shape = kind === "certificate" ? /-----BEGIN CERTIFICATE-----/ : /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
  if (!shape.test(text)) {
    throw new UsageError(`Invalid value for "--${flag}": "${path}" is not a PEM ${kind}`);
  }
  return text;
}

/** The files a server's TLS settings were read from, to re-read on SIGHUP. */
export interface ServerTlsFiles {
  cert: string;
  key: string;
  clientCa?: string;
}

/** Checks the server TLS flags (no file is read yet); `undefined` without --tls-cert/--tls-key. */
export function serverTlsFiles(options: Options): ServerTlsFiles | undefined {
  const cert = str(options, "tls-cert");
  const key = str(options, "tls-key");
  const clientCa = str(options, "tls-client-ca");
  if (options["tls-self-signed"] === true) {
    if (cert !== undefined || key !== undefined) {
      throw new UsageError(`Option "--tls-self-signed" does not go with --tls-cert/--tls-key (use one or the other)`);
    }
    return undefined;
  }
  if (cert === undefined && key === undefined) {
    for (const flag of ["tls-client-ca", "alpn", "tls-handshake-timeout", "tls-stalled-handshakes"]) {
      if (options[flag] !== undefined) throw new UsageError(`Option "--${flag}" needs --tls-cert and --tls-key`);
    }
    return undefined;
  }
  if (cert === undefined) throw new UsageError(`Option "--tls-key" needs --tls-cert`);
  if (key === undefined) throw new UsageError(`Option "--tls-cert" needs --tls-key`);
  return { cert, key, ...(clientCa !== undefined && { clientCa }) };
}

/** Reads the files and the other flags into the library's server options. */
export async function readServerTls(host: CliHost, files: ServerTlsFiles, options: Options): Promise<TlsServerOptions> {
  const settings = serverTlsSettings(options);
  return {
    cert: await readPem(host, "tls-cert", files.cert, "certificate"),
    key: await readPem(host, "tls-key", files.key, "key"),
    ...(files.clientCa !== undefined &&
      { clientCa: await readPem(host, "tls-client-ca", files.clientCa, "certificate") }),
    ...settings,
  };
}

/** The environment variable in which a supervisor hands its workers the --tls-self-signed certificate. */
export const SELF_SIGNED_ENV = "ECHOGATE_TLS_SELF_SIGNED";

/**
 * With --tls-self-signed, the server options of a certificate made now (its fingerprint logged),
 * or, in a worker, the one its supervisor made (so every worker serves the same); `undefined`
 * without the flag. SIGHUP keeps the certificate: clients have pinned it.
 */
export async function readSelfSignedTls(
  host: CliHost,
  options: Options,
  logger: Logger,
  worker: number | undefined,
): Promise<TlsServerOptions | undefined> {
  if (options["tls-self-signed"] !== true) return undefined;
  const settings = serverTlsSettings(options);
  const clientCa = str(options, "tls-client-ca");
  const pair = (worker !== undefined && inheritedSelfSigned(host)) || await makeSelfSigned(options, logger);
  // Without a handler SIGHUP would end the process; a worker hears it from its supervisor instead.
  if (worker === undefined) host.onSignal("SIGHUP", () => {});
  return {
    cert: pair.cert,
    key: pair.key,
    ...(clientCa !== undefined && { clientCa: await readPem(host, "tls-client-ca", clientCa, "certificate") }),
    ...settings,
  };
}

/**
 * For a supervisor with --tls-self-signed: makes the certificate (its fingerprint logged) and
 * returns the environment that hands it to the workers; `{}` without the flag.
 */
export async function selfSignedWorkerEnv(host: CliHost, options: Options): Promise<Record<string, string>> {
  if (options["tls-self-signed"] !== true) return {};
  serverTlsSettings(options); // a bad flag is reported before anything is made
  const logger = createLogger({ json: options.json === true, writeOut: host.writeOut, writeErr: host.writeErr });
  const { cert, key } = await makeSelfSigned(options, logger);
  return { [SELF_SIGNED_ENV]: JSON.stringify({ cert, key }) };
}

async function makeSelfSigned(options: Options, logger: Logger): Promise<SelfSignedTls> {
  const made = await createSelfSignedTls({ hosts: [str(options, "host") ?? "127.0.0.1"] });
  logger.log({ event: "tls-self-signed", fingerprint: made.fingerprint });
  return made;
}

function inheritedSelfSigned(host: CliHost): { cert: string; key: string } | undefined {
  const text = host.env(SELF_SIGNED_ENV);
  if (text === undefined) return undefined;
  try {
    const { cert, key } = JSON.parse(text) as { cert?: unknown; key?: unknown };
    if (typeof cert === "string" && typeof key === "string") return { cert, key };
  } catch {
    // Not ours: make one.
  }
  return undefined;
}

/** The server TLS flags other than the certificate, key and client CA. */
function serverTlsSettings(options: Options): Omit<TlsServerOptions, "cert" | "key" | "clientCa"> {
  const alpn = str(options, "alpn");
  const timeout = str(options, "tls-handshake-timeout");
  const protocols = alpn?.split(",").map((name) => name.trim());
  if (protocols?.some((name) => name === "" || new TextEncoder().encode(name).length > 255)) {
    throw new UsageError(`Invalid value for "--alpn": "${alpn}" is not a comma-separated list of protocol names`);
  }
  const handshakeTimeoutMs = timeout === undefined ? undefined : parseSeconds("tls-handshake-timeout", timeout);
  if (handshakeTimeoutMs === 0) throw new UsageError(`Invalid value for "--tls-handshake-timeout": it must be above 0`);
  const stalled = str(options, "tls-stalled-handshakes");
  if (stalled !== undefined && stalled !== "close" && stalled !== "hold") {
    throw new UsageError(`Invalid value for "--tls-stalled-handshakes": "${stalled}" (use close or hold)`);
  }
  return {
    ...(protocols && { alpn: protocols }),
    ...(handshakeTimeoutMs !== undefined && { handshakeTimeoutMs }),
    ...(stalled !== undefined && { stalledHandshakes: stalled }),
  };
}

/** Turns a certificate or key the runtime refused at listen into a usage error naming the files. */
export function explainTlsConfigError(files: ServerTlsFiles | undefined): (error: unknown) => never {
  return (error) => {
    if (files && error instanceof TlsConfigError) {
      throw new UsageError(
        `Invalid value for "--tls-key": "${files.key}" does not go with "--tls-cert" "${files.cert}": ${error.message}`,
      );
    }
    throw error;
  };
}

/**
 * On SIGHUP, re-reads the certificate, key and client CA; a bad file is logged and the old ones kept.
 * Returns the reload itself (for a worker, whose supervisor passes SIGHUP on as a message), or
 * undefined when the server cannot reload.
 */
export function reloadOnSighup(
  host: CliHost,
  server: EchogateServer,
  files: ServerTlsFiles,
  options: Options,
): (() => void) | undefined {
  if (!server.reloadTls) return undefined;
  let reloading = false;
  const reload = () => {
    if (reloading) return;
    reloading = true;
    readServerTls(host, files, options)
      .then((tls) => server.reloadTls!(tls))
      .catch((error) => {
        // reloadTls logged a refusal itself; a file that cannot be read is reported here.
        if (error instanceof UsageError) {
          host.writeErr(`echogate: TLS reload failed, keeping the old certificate: ${error.message}`);
        }
      })
      .finally(() => (reloading = false));
  };
  host.onSignal("SIGHUP", reload);
  return reload;
}

/** Reads the client TLS flags; `undefined` when none is given. */
export async function readClientTls(host: CliHost, options: Options): Promise<TlsClientOptions | undefined> {
  const ca = str(options, "ca");
  const servername = str(options, "servername");
  const cert = str(options, "tls-cert");
  const key = str(options, "tls-key");
  const insecure = options.insecure === true;
  const pinned = str(options, "tls-fingerprint");
  const wanted = options.tls === true || ca !== undefined || servername !== undefined || cert !== undefined ||
    key !== undefined || insecure || pinned !== undefined;
  if (!wanted) return undefined;
  const fingerprint = pinned === undefined ? undefined : normalizeFingerprint(pinned);
  if (pinned !== undefined && fingerprint === undefined) {
    throw new UsageError(
      `Invalid value for "--tls-fingerprint": "${pinned}" is not a SHA-256 fingerprint (32 bytes of hex, AB:CD:…)`,
    );
  }
  for (const flag of ["ca", "insecure"]) {
    if (pinned !== undefined && options[flag] !== undefined) {
      throw new UsageError(`Option "--${flag}" does not go with --tls-fingerprint (the fingerprint alone decides)`);
    }
  }
  if (cert !== undefined && key === undefined) throw new UsageError(`Option "--tls-cert" needs --tls-key`);
  if (key !== undefined && cert === undefined) throw new UsageError(`Option "--tls-key" needs --tls-cert`);
  if (servername === "") throw new UsageError(`Invalid value for "--servername": the name is empty`);
  if (insecure) {
    host.writeErr("echogate: warning: --insecure: the server's certificate is not verified; anyone can pose as it");
  }
  return {
    ...(ca !== undefined && { ca: await readPem(host, "ca", ca, "certificate") }),
    ...(servername !== undefined && { servername }),
    ...(cert !== undefined && {
      cert: await readPem(host, "tls-cert", cert, "certificate"),
      key: await readPem(host, "tls-key", key!, "key"),
    }),
    ...(insecure && { insecure }),
    ...(fingerprint !== undefined && { fingerprint }),
  };
}
