// The part of Bun's global API the Bun adapter uses: a structural copy (no dependency on
// @types/bun, whose globals clash with other runtimes' types), and the global itself.
// deno-lint-ignore-file no-explicit-any

import type { PeerCertificate } from "node:tls";

/** @see https://bun.sh/reference/bun/Socket */
export interface BunSocket<Data = any> {
  data: Data;
  readonly remoteAddress: string;
  readonly remotePort?: number;
  /** The socket's descriptor. */
  readonly fd?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  write(bytes: Uint8Array): number;
  shutdown(halfClose?: boolean): void;
  end(): void;
  pause(): void;
  resume(): void;
  setNoDelay?(noDelay?: boolean): boolean;
  /** Closes at once with an RST. */
  terminate?(): void;
  // TLS sockets only:
  readonly authorized?: boolean;
  readonly alpnProtocol?: string | false | null;
  getTLSVersion?(): string | null;
  getCipher?(): { name?: string } | undefined;
  getServername?(): string | undefined;
  getPeerCertificate?(): PeerCertificate | undefined;
}
export interface BunSocketHandler<Data = any> {
  open(socket: BunSocket<Data>): void;
  data(socket: BunSocket<Data>, chunk: Uint8Array): void;
  drain(socket: BunSocket<Data>): void;
  end(socket: BunSocket<Data>): void;
  close(socket: BunSocket<Data>, error?: Error): void;
  error(socket: BunSocket<Data>, error: Error): void;
  connectError?(socket: BunSocket<Data>, error: Error): void;
  handshake?(socket: BunSocket<Data>, success: boolean, authorizationError: Error | null): void;
}
/** @see https://bun.sh/reference/bun/TLSOptions */
export interface BunTlsOptions {
  cert?: string;
  key?: string;
  ca?: string | string[];
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  serverName?: string;
  ALPNProtocols?: ArrayBuffer;
  ciphers?: string;
  secureOptions?: number;
}
export type BunEndpoint = { hostname: string; port: number } | { unix: string };
/** @see https://bun.sh/reference/bun/TCPSocketListener */
export interface BunListener {
  readonly hostname?: string;
  readonly port?: number;
  stop(closeActiveConnections?: boolean): void;
}
/** @see https://bun.sh/reference/bun/listen */
export interface BunApi {
  listen(
    options: BunEndpoint & {
      socket: BunSocketHandler;
      allowHalfOpen: boolean;
      reusePort?: boolean;
      tls?: BunTlsOptions;
    },
  ): BunListener;
  connect(
    options: BunEndpoint & { socket: BunSocketHandler; allowHalfOpen: boolean; tls?: BunTlsOptions },
  ): Promise<BunSocket>;
  udpSocket(options: { hostname: string; port: number; socket: BunUdpHandler }): Promise<BunUdpSocket>;
}
/** @see https://bun.sh/reference/bun/udp/Socket */
export interface BunUdpSocket {
  readonly address: { address: string; port: number };
  /** False when the kernel did not take the datagram (its buffer is full); `drain` follows. */
  send(bytes: Uint8Array, port: number, hostname: string): boolean;
  close(): void;
}
export interface BunUdpHandler {
  data(socket: BunUdpSocket, bytes: Uint8Array, port: number, hostname: string): void;
  drain(socket: BunUdpSocket): void;
  /** Called with the socket as `this`. Without it, an ICMP error ends the process (oven-sh/bun#29116). */
  error(this: BunUdpSocket, error: Error): void;
}

/**
 * The `Bun` global, typed by the copy above. Loading this module outside Bun throws.
 *
 * @example
 * ```ts ignore
 * import { Bun } from "./_bun_api.ts";
 *
 * const socket = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: handler });
 * ```
 */
export const Bun: BunApi = (globalThis as unknown as { Bun: BunApi }).Bun;
if (!Bun) throw new Error("[echogate] Using the Bun adapter in a runtime without Bun");
