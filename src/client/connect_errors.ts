/**
 * What a client's connection can fail with, in one wording on every runtime. Each adapter turns
 * its runtime's errors (codes, OpenSSL and rustls messages) into these (`adapters/_connect_errors.ts`),
 * so a failure reads the same on Node, Deno and Bun and names the address it concerns.
 *
 * @module
 */

/**
 * The base of every connect failure: `target` is the address, host or socket path concerned.
 *
 * @example
 * ```ts
 * import { ConnectError, ConnectionRefusedError } from "../mod.ts";
 *
 * const error = new ConnectionRefusedError("127.0.0.1:50007");
 * console.log(error instanceof ConnectError, error.target); // true "127.0.0.1:50007"
 * ```
 */
export class ConnectError extends Error {
  /** The address (`host:port`, `[v6]:port`, `unix:PATH`), host name or path the failure concerns. */
  readonly target: string;
  /** Creates the error with its one-line message. */
  constructor(target: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectError";
    this.target = target;
  }
}

/**
 * Nothing listens at the address (`ECONNREFUSED`).
 *
 * @example
 * ```ts
 * import { ConnectionRefusedError } from "../mod.ts";
 *
 * console.log(new ConnectionRefusedError("127.0.0.1:50007").message); // "connection refused by 127.0.0.1:50007"
 * ```
 */
export class ConnectionRefusedError extends ConnectError {
  /** Creates the error for the printable address. */
  constructor(address: string, options?: ErrorOptions) {
    super(address, `connection refused by ${address}`, options);
    this.name = "ConnectionRefusedError";
  }
}

/**
 * The host name does not resolve.
 *
 * @example
 * ```ts
 * import { HostNotFoundError } from "../mod.ts";
 *
 * console.log(new HostNotFoundError("nope.invalid").message); // 'cannot resolve host "nope.invalid"'
 * ```
 */
export class HostNotFoundError extends ConnectError {
  /** Creates the error for the host name (escaped as JSON, it may come from anywhere). */
  constructor(hostname: string, options?: ErrorOptions) {
    super(hostname, `cannot resolve host ${JSON.stringify(hostname)}`, options);
    this.name = "HostNotFoundError";
  }
}

/**
 * No unix socket at the path (the file or a directory on the way is missing).
 *
 * @example
 * ```ts
 * import { NoSuchUnixSocketError } from "../mod.ts";
 *
 * console.log(new NoSuchUnixSocketError("/x/y.sock").message); // "no such unix socket: /x/y.sock"
 * ```
 */
export class NoSuchUnixSocketError extends ConnectError {
  /** Creates the error for the socket path. */
  constructor(path: string, options?: ErrorOptions) {
    super(path, `no such unix socket: ${path}`, options);
    this.name = "NoSuchUnixSocketError";
  }
}

/**
 * The address refused this process (`EACCES`, `EPERM`: a unix socket it may not open).
 *
 * @example
 * ```ts
 * import { ConnectPermissionError } from "../mod.ts";
 *
 * console.log(new ConnectPermissionError("unix:/run/x.sock").message); // "permission denied: unix:/run/x.sock"
 * ```
 */
export class ConnectPermissionError extends ConnectError {
  /** Creates the error for the printable address. */
  constructor(address: string, options?: ErrorOptions) {
    super(address, `permission denied: ${address}`, options);
    this.name = "ConnectPermissionError";
  }
}

/**
 * A TLS failure seen by the client: the server wants a client certificate, its certificate is not
 * trusted or does not match the name. `reason` says which.
 *
 * @example
 * ```ts
 * import { TlsClientError } from "../mod.ts";
 *
 * const error = TlsClientError.nameMismatch("127.0.0.1:50007", "wrong.example");
 * console.log(error.message); // 'TLS: the server\'s certificate does not match "wrong.example"'
 * ```
 */
export class TlsClientError extends ConnectError {
  /** Which failure: `client-certificate-required`, `untrusted` or `name-mismatch`. */
  readonly reason: "client-certificate-required" | "untrusted" | "name-mismatch";

  /** Creates the error; prefer the static constructors. */
  constructor(target: string, reason: TlsClientError["reason"], message: string, options?: ErrorOptions) {
    super(target, `TLS: ${message}`, options);
    this.name = "TlsClientError";
    this.reason = reason;
  }

  /** The server asked for a client certificate and got none. */
  static clientCertificateRequired(address: string, options?: ErrorOptions): TlsClientError {
    return new TlsClientError(
      address,
      "client-certificate-required",
      "the server requires a client certificate",
      options,
    );
  }

  /** The server's certificate does not chain to a trusted CA; `detail` says why (`unknown issuer`). */
  static untrusted(address: string, detail: string, options?: ErrorOptions): TlsClientError {
    return new TlsClientError(address, "untrusted", `the server's certificate is not trusted (${detail})`, options);
  }

  /** The server's certificate does not name `name` (the host, or `servername`). */
  static nameMismatch(address: string, name: string, options?: ErrorOptions): TlsClientError {
    return new TlsClientError(
      address,
      "name-mismatch",
      `the server's certificate does not match ${JSON.stringify(name)}`,
      options,
    );
  }
}

/**
 * A plain (non-TLS) client got a TLS record back: the server speaks TLS.
 *
 * @example
 * ```ts
 * import { ServerSpeaksTlsError } from "../mod.ts";
 *
 * console.log(new ServerSpeaksTlsError("127.0.0.1:50007").message); // "the server at 127.0.0.1:50007 speaks TLS"
 * ```
 */
export class ServerSpeaksTlsError extends ConnectError {
  /** Creates the error for the printable address. */
  constructor(address: string, options?: ErrorOptions) {
    super(address, `the server at ${address} speaks TLS`, options);
    this.name = "ServerSpeaksTlsError";
  }
}

/**
 * True when `bytes` begin like a TLS record a server sends first: an alert (21) or a handshake (22),
 * version 3.x. A plain client that gets this back reached a TLS server.
 *
 * @param bytes The first bytes of a reply.
 * @returns Whether they look like a TLS record header.
 *
 * @example
 * ```ts
 * import { looksLikeTlsRecord } from "./connect_errors.ts";
 *
 * console.log(looksLikeTlsRecord(new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]))); // true
 * console.log(looksLikeTlsRecord(new TextEncoder().encode("Echo=>hi"))); // false
 * ```
 */
export function looksLikeTlsRecord(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03 && bytes[2]! <= 0x04;
}
