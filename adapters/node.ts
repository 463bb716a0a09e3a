/**
 * The Node adapter: echogate's {@linkcode Transport} over `node:net`.
 *
 * @see https://nodejs.org/api/net.html
 * @module
 */

import * as net from "node:net";
import * as tls from "node:tls";
import { Buffer } from "node:buffer";
import type { Address, ConnectOptions, Endpoint, TlsClientOptions, Transport } from "../src/mod.ts";
import { isSpecificIp } from "../src/address.ts";
import { checkFingerprint } from "../src/tls_self_signed.ts";
import { type CliHost, processHost } from "./_process_host.ts";
import { socketBudget } from "./_descriptors.ts";
import { bindNodeDatagram } from "./_dgram.ts";
import { lookupHost } from "./_lookup.ts";
import { explainConnectError } from "./_connect_errors.ts";
import { serveHttpNode } from "./_http_node.ts";
import { tcpListenOptions } from "./_reuse_port.ts";
import { bindWithMode, removeStaleSocketFile } from "./_socket_file.ts";
import { localTcpAddress, NodeStreamSocket, remoteTcpAddress } from "./_node_socket.ts";
import { listenTls } from "./_node_tls_server.ts";
import { toListenError } from "./_listen.ts";
import { serverName } from "./_tls_common.ts";

// --- connect ---

/** A plain TCP (or unix) connection to `endpoint`, once it is open. */
function openConnection(endpoint: Endpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = "path" in endpoint
      ? net.createConnection({ path: endpoint.path, allowHalfOpen: true })
      : net.createConnection({ host: endpoint.hostname, port: endpoint.port, allowHalfOpen: true, noDelay: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

/** A TCP (or unix) connection with `prefix` written in clear text on it, for a TLS handshake to follow. */
async function connectWithPrefix(
  endpoint: Endpoint,
  prefix: NonNullable<ConnectOptions["beforeTls"]>,
): Promise<net.Socket> {
  const socket = await openConnection(endpoint);
  const local: Address = "path" in endpoint ? { transport: "unix", path: endpoint.path } : localTcpAddress(socket);
  const remote: Address = "path" in endpoint ? local : remoteTcpAddress(socket);
  let bytes: Uint8Array;
  try {
    bytes = prefix({ localAddr: local, remoteAddr: remote });
  } catch (error) {
    socket.destroy();
    throw error;
  }
  // Written out before the handshake starts: Deno's node:tls writes its ClientHello past
  // whatever the socket still holds.
  await new Promise<void>((resolve, reject) => socket.write(bytes, (error) => error ? reject(error) : resolve()));
  return socket;
}

async function connectTls(
  endpoint: Endpoint,
  options: TlsClientOptions,
  beforeTls?: ConnectOptions["beforeTls"],
): Promise<NodeStreamSocket> {
  // The clear-text prefix goes out first; the ClientHello follows on the same connection.
  const tcp = beforeTls ? await connectWithPrefix(endpoint, beforeTls) : undefined;
  return await new Promise((resolve, reject) => {
    const where = "path" in endpoint ? { path: endpoint.path } : { host: endpoint.hostname, port: endpoint.port };
    // For an address no SNI is sent, and the address is verified by our own check.
    const { name, sni } = serverName(endpoint, options);
    const byAddress = sni === "";
    const socket = tls.connect({
      ...where,
      ...(tcp && { socket: tcp }),
      allowHalfOpen: true,
      // Trusted in addition to the system roots, not instead of them.
      ...(options.ca !== undefined && { ca: [...tls.rootCertificates, options.ca] }),
      ...(sni !== undefined && { servername: sni }),
      ...(byAddress &&
        { checkServerIdentity: (_: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(name!, cert) }),
      ...(options.cert !== undefined && { cert: options.cert, key: options.key }),
      ...(options.alpn && { ALPNProtocols: [...options.alpn] }),
      // A pinned fingerprint replaces the CA and name checks (checked on secureConnect).
      rejectUnauthorized: options.insecure !== true && options.fingerprint === undefined,
    } as unknown as tls.ConnectionOptions);
    const failed = (error: Error) => {
      tcp?.destroy();
      reject(error);
    };
    socket.once("error", failed);
    socket.once("secureConnect", () => {
      const ready = () => {
        socket.off("error", failed);
        if (!("path" in endpoint)) socket.setNoDelay(true);
        resolve(
          new NodeStreamSocket(socket, "path" in endpoint ? { transport: "unix", path: endpoint.path } : undefined),
        );
      };
      if (options.fingerprint === undefined) return ready();
      // Before the socket is handed out, so nothing is sent to a server that is not the pinned one.
      checkFingerprint(socket.getPeerCertificate()?.raw, options.fingerprint).then(ready, (error) => {
        socket.destroy();
        failed(error);
      });
    });
  });
}

// --- transport ---

/**
 * echogate's transport for Node (`node:net`), with half-open sockets.
 *
 * @example
 * ```ts ignore
 * import { serveEcho } from "../src/mod.ts";
 * import { transport } from "./node.ts";
 *
 * const server = await serveEcho({ transport, port: 0 });
 * ```
 */
export const transport: Transport = {
  runtime: "node",
  // For --trace. The backlog: Node's documented default.
  calls: { listen: "net.Server.listen()", connect: "net.connect()", bindDatagram: "dgram bind()", backlog: 511 },
  serveHttp: serveHttpNode,
  listen(endpoint, handlers, options) {
    if (options?.tls) return listenTls(endpoint, handlers, options.tls, options.reusePort, options.deferTls);
    const unixPath = "path" in endpoint ? endpoint.path : undefined;
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    // Every accepted socket's local address, when the listener is bound to one.
    let local: Address | undefined = unixPath !== undefined ? { transport: "unix", path: unixPath } : undefined;
    server.on("connection", (socket) => handlers.onSocket(new NodeStreamSocket(socket, local)));
    return new Promise((resolve, reject) => {
      server.once("error", (error) => reject(toListenError(error, endpoint)));
      const ready = () => {
        server.removeAllListeners("error");
        // After listening, errors are accept failures: Node keeps listening, and libuv has already
        // skipped ECONNABORTED and handled EMFILE (it accepts and closes the pending connection).
        server.on("error", handlers.onError);
        const bound = server.address();
        const addr: Address = unixPath !== undefined || typeof bound === "string" || bound === null
          ? { transport: "unix", path: unixPath ?? String(bound) }
          : { transport: "tcp", hostname: bound.address, port: bound.port };
        if (addr.transport === "tcp" && isSpecificIp(addr.hostname)) local = addr;
        // server.close() stops accepting at once; its callback would wait for every open connection.
        resolve({ addr, close: () => Promise.resolve(void server.close()), maxSockets: socketBudget() });
      };
      // Node binds a path synchronously (outside node:cluster workers, which refuse --unix).
      if ("path" in endpoint) {
        bindWithMode(endpoint.path, options?.unixMode, () => server.listen({ path: endpoint.path }, ready));
      } else {
        // `reusePort` is for workers: under node:cluster the primary owns the socket and shares it.
        let where: ReturnType<typeof tcpListenOptions>;
        try {
          where = tcpListenOptions(endpoint.hostname, endpoint.port, options?.reusePort);
        } catch (error) {
          return reject(error);
        }
        server.listen(where, ready);
      }
    });
  },
  connect(endpoint, options) {
    const explained = (error: unknown) => Promise.reject(explainConnectError(error, endpoint, options?.tls));
    if (options?.tls) return connectTls(endpoint, options.tls, options.beforeTls).catch(explained);
    const local: Address | undefined = "path" in endpoint ? { transport: "unix", path: endpoint.path } : undefined;
    return openConnection(endpoint).then((socket) => new NodeStreamSocket(socket, local), explained);
  },
  removeSocketFile: removeStaleSocketFile,
  explainError: explainConnectError,
  // Node writes a Buffer as is; any other Uint8Array gets wrapped in a new Buffer first.
  allocate: (size) => Buffer.allocUnsafeSlow(size),
  bindDatagram: bindNodeDatagram,
  lookup: lookupHost,
};

/**
 * Builds what the CLI needs from Node: arguments, environment, output, exit, signals and files. Its output starts at once (listeners on the
 * process's streams): call it once, when the CLI runs, never at import.
 *
 * @returns A new host around {@linkcode transport}.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { createHost } from "./node.ts";
 *
 * const host = createHost();
 * host.exit(await runCli(host));
 * ```
 */
export function createHost(): CliHost {
  return processHost(transport);
}
