// One mapping from what Node, Deno and Bun throw when a client connects (or when a TLS client
// reads the server's verdict on it) to echogate's connect errors, so every adapter words them alike.
// Runtimes differ in shape: Node and Bun carry `code` (ECONNREFUSED, ENOTFOUND, OpenSSL's
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); Deno names its
// errors (ConnectionRefused, NotFound) and words rustls' verdicts in the message.

import {
  ConnectError,
  ConnectionRefusedError,
  ConnectPermissionError,
  type Endpoint,
  HostNotFoundError,
  NoSuchUnixSocketError,
  TlsClientError,
  type TlsClientOptions,
} from "../src/mod.ts";
import { formatEndpoint } from "../src/address.ts";

const UNTRUSTED_CODES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unknown issuer",
  UNABLE_TO_GET_ISSUER_CERT: "unknown issuer",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unknown issuer",
  SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in the chain",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  CERT_HAS_EXPIRED: "expired",
  CERT_NOT_YET_VALID: "not yet valid",
  CERT_UNTRUSTED: "untrusted",
  CERT_REVOKED: "revoked",
};

/** rustls' words for an untrusted certificate (Deno: `invalid peer certificate: UnknownIssuer`). */
const UNTRUSTED_RUSTLS: [RegExp, string][] = [
  [/UnknownIssuer/, "unknown issuer"],
  [/Expired/, "expired"],
  [/NotValidYet/, "not yet valid"],
  [/Revoked/, "revoked"],
  [/BadSignature/, "bad signature"],
];

/**
 * The connect error `error` stands for, or `error` itself when it is none of them.
 *
 * @param error What the runtime threw, from connecting or from a TLS client's first read or write.
 * @param endpoint Where the client connected.
 * @param tls The client's TLS options, when it spoke TLS (the name verified is `servername` or the host).
 * @returns The connect error, or `error` as it was.
 *
 * @example
 * ```ts ignore
 * const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
 * console.log(String(explainConnectError(refused, { hostname: "127.0.0.1", port: 1 })));
 * // "ConnectionRefusedError: connection refused by 127.0.0.1:1"
 * ```
 */
export function explainConnectError(error: unknown, endpoint: Endpoint, tls?: TlsClientOptions): unknown {
  if (!(error instanceof Error) || error instanceof ConnectError) return error;
  const code = (error as { code?: unknown }).code;
  const text = `${typeof code === "string" ? code : ""} ${error.name} ${error.message}`;
  const address = formatEndpoint(endpoint);
  const options = { cause: error };
  if (code === "ECONNREFUSED" || error.name === "ConnectionRefused") {
    return new ConnectionRefusedError(address, options);
  }
  if ("path" in endpoint) {
    if (code === "ENOENT" || code === "ENOTDIR" || error.name === "NotFound") {
      return new NoSuchUnixSocketError(endpoint.path, options);
    }
    if (code === "EACCES" || code === "EPERM" || error.name === "PermissionDenied") {
      return new ConnectPermissionError(address, options);
    }
  } else {
    if (
      code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME" || code === "EAI_FAIL" ||
      /failed to lookup address|getaddrinfo/i.test(error.message)
    ) {
      return new HostNotFoundError(endpoint.hostname, options);
    }
  }
  if (tls === undefined) return error;
  if (/certificate[ _]?required/i.test(text)) return TlsClientError.clientCertificateRequired(address, options);
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID" || /not valid for name|NotValidForName|does not match/i.test(text)) {
    const name = tls.servername ?? ("path" in endpoint ? "" : endpoint.hostname);
    return TlsClientError.nameMismatch(address, name, options);
  }
  const untrusted = typeof code === "string" ? UNTRUSTED_CODES[code] : undefined;
  if (untrusted !== undefined) return TlsClientError.untrusted(address, untrusted, options);
  if (/invalid peer certificate/i.test(error.message) || /not trusted/i.test(error.message)) {
    const detail = UNTRUSTED_RUSTLS.find(([pattern]) => pattern.test(error.message))?.[1] ?? "unknown issuer";
    return TlsClientError.untrusted(address, detail, options);
  }
  // Any other OpenSSL / BoringSSL failure: its reason alone, without OpenSSL's source path and line.
  const reason = (error as { reason?: unknown }).reason ?? /OPENSSL_internal:(\w+)/.exec(error.message)?.[1] ??
    /^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):/.exec(error.message)?.[1];
  if (typeof reason === "string") {
    return new ConnectError(address, `TLS: ${reason.replaceAll("_", " ").toLowerCase()}`, options);
  }
  return error;
}
