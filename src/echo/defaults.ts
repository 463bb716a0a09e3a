/**
 * The seed's echo defaults, shared by the stream and the datagram echo servers (a module of its
 * own, so neither server imports the other's module for them).
 *
 * @module
 */

/**
 * The seed's echo port.
 *
 * @example
 * ```ts
 * import { DEFAULT_ECHO_PORT } from "../mod.ts";
 *
 * console.log(DEFAULT_ECHO_PORT); // 50007
 * ```
 */
export const DEFAULT_ECHO_PORT = 50007;

/** The seed's reply prefix. */
export const DEFAULT_PREFIX = "Echo=>";
