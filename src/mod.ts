/**
 * echogate's runtime-neutral core: the seed's gate and echo protocols, servers and clients,
 * written against the abstract {@linkcode StreamSocket}. Pair it with a transport from
 * `echogate/node`, `echogate/deno` or `echogate/bun`, or import `echogate` to get the
 * current runtime's transport picked for you.
 *
 * ```ts ignore
 * import { sendEcho, serveEcho } from "echogate/core";
 * import { transport } from "echogate/node";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * const [reply] = await sendEcho({ transport, port: server.addr.transport === "tcp" ? server.addr.port : 0 });
 * await server.close();
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./tls.ts";
export * from "./tls_self_signed.ts";
export * from "./answer.ts";
export * from "./errors.ts";
export * from "./connect_errors.ts";
export * from "./address.ts";
export * from "./log.ts";
export * from "./accept_errors.ts";
export * from "./server.ts";
export * from "./echo.ts";
export * from "./gate.ts";
export * from "./client.ts";
export * from "./datagram/mod.ts";
export * from "./read_queue.ts";
export * from "./write_queue.ts";
export * from "./bench/mod.ts";
export * from "./penalties.ts";
export * from "./forward.ts";
export * from "./proxy_protocol/mod.ts";
export * from "./version.ts";
export type { CliHost, SmallFile, WorkerProcess, WorkerSpawner } from "./cli/host.ts";
export * from "./faults/mod.ts";
