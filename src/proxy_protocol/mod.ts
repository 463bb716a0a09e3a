/**
 * The PROXY protocol (haproxy's `doc/proxy-protocol.txt`), v1 and v2: an incremental parser,
 * an encoder, and the receiving side a server runs before its protocol, so that logs and
 * per-source penalties see the client behind a load balancer rather than the balancer.
 *
 * Runtime-free, like the rest of `src/`.
 *
 * @example Parse a header and keep what follows it
 * ```ts
 * import { encodeProxyHeader, ProxyHeaderParser } from "./mod.ts";
 *
 * const header = encodeProxyHeader({
 *   version: 2,
 *   source: { transport: "tcp", hostname: "2001:db8::7", port: 40000 },
 *   destination: { transport: "tcp", hostname: "2001:db8::1", port: 8001 },
 * });
 * const result = new ProxyHeaderParser().push(new Uint8Array([...header, 0x31]));
 * console.log(result.status === "header" && result.header.source); // { transport: "tcp", hostname: "2001:db8::7", port: 40000 }
 * ```
 *
 * @module
 */

export * from "./header.ts";
export * from "./parser.ts";
export * from "./encoder.ts";
export * from "./crc32c.ts";
export * from "../ip.ts";
export * from "./receive.ts";
