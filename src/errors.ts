/**
 * Error classes the core and the adapters share.
 *
 * @module
 */

/**
 * Thrown by {@linkcode Transport.listen} when the address is already bound.
 *
 * @example Telling "in use" apart
 * ```ts
 * import { AddrInUseError } from "./mod.ts";
 *
 * const error = new AddrInUseError("127.0.0.1:8001");
 * console.log(error.message); // "Address 127.0.0.1:8001 is already in use"
 * ```
 */
export class AddrInUseError extends Error {
  /** Creates the error for the given printable address. */
  constructor(address: string, options?: ErrorOptions) {
    super(`Address ${address} is already in use`, options);
    this.name = "AddrInUseError";
  }
}

/**
 * Thrown when a unix socket path is taken by something other than a socket (a regular file, a
 * directory, a symlink): only a stale socket is ever replaced, so the path is left untouched.
 *
 * @example
 * ```ts
 * import { NotASocketError } from "./mod.ts";
 *
 * const error = new NotASocketError("notes.txt", "regular file");
 * console.log(error.message); // "notes.txt is a regular file, not a unix socket: not replacing it"
 * ```
 */
export class NotASocketError extends Error {
  /** Creates the error for `path`, which lstat found to be a `kind` ("regular file", "directory", …). */
  constructor(readonly path: string, readonly kind: string) {
    super(`${path} is a ${kind}, not a unix socket: not replacing it`);
    this.name = "NotASocketError";
  }
}

/**
 * Thrown for a bad command line or bad option value; the CLI prints its message alone.
 *
 * @example
 * ```ts
 * import { UsageError } from "./mod.ts";
 *
 * const error = new UsageError('Invalid value for "--port": "x" is not a port number');
 * console.log(error.name); // "UsageError"
 * ```
 */
export class UsageError extends Error {
  /** Creates the error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
