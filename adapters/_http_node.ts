// An HTTP server on node:http that answers through one fetch-style handler (Transport.serveHttp).

import * as http from "node:http";
import * as net from "node:net";
import { Readable } from "node:stream";
import { AddrInUseError } from "../src/errors.ts";
import { formatEndpoint } from "../src/address.ts";
import type { Address, HttpHandler, HttpLimits, HttpServer } from "../src/types.ts";

/** Serves `handler` on node:http at `endpoint`; resolves once listening. */
export function serveHttpNode(
  endpoint: { hostname: string; port: number },
  handler: HttpHandler,
  limits: HttpLimits = {},
): Promise<HttpServer> {
  const server = http.createServer(
    limits.maxRequestBytes === undefined ? {} : { maxHeaderSize: limits.maxRequestBytes },
    (req, res) => void answer(req, res, handler),
  );
  if (limits.maxConnections !== undefined) server.maxConnections = limits.maxConnections;
  if (limits.idleTimeoutMs !== undefined) {
    // A slow or stalled peer is dropped: the head must arrive in time, and so must the next request.
    server.headersTimeout = server.requestTimeout = limits.idleTimeoutMs;
    server.keepAliveTimeout = limits.idleTimeoutMs;
    server.timeout = limits.idleTimeoutMs;
  }
  return listening(server, endpoint, () => server.closeAllConnections());
}

/**
 * Serves `handler` on node:http behind a node:net listener that bounds the peers itself, for a
 * runtime whose node:http keeps neither `maxConnections` nor its timeouts (Bun's: its server sees a
 * connection only once a request arrives). Connections over `maxConnections` are closed at accept;
 * each must complete a request within `idleTimeoutMs` of opening or of its last answer.
 */
export function serveHttpNodeFronted(
  endpoint: { hostname: string; port: number },
  handler: HttpHandler,
  limits: HttpLimits,
): Promise<HttpServer> {
  const deadlines = new Map<net.Socket, ReturnType<typeof setTimeout> | undefined>();
  const armDeadline = (socket: net.Socket) => {
    clearTimeout(deadlines.get(socket));
    if (limits.idleTimeoutMs === undefined) return;
    deadlines.set(socket, setTimeout(() => socket.destroy(), limits.idleTimeoutMs));
  };
  const server = http.createServer(
    limits.maxRequestBytes === undefined ? {} : { maxHeaderSize: limits.maxRequestBytes },
    (req, res) => {
      res.once("finish", () => deadlines.has(req.socket) && armDeadline(req.socket));
      void answer(req, res, handler);
    },
  );
  const front = net.createServer((socket) => {
    if (limits.maxConnections !== undefined && deadlines.size >= limits.maxConnections) return void socket.destroy();
    socket.on("error", () => {});
    socket.once("close", () => {
      clearTimeout(deadlines.get(socket));
      deadlines.delete(socket);
    });
    armDeadline(socket);
    server.emit("connection", socket);
  });
  return listening(front, endpoint, () => {
    for (const socket of deadlines.keys()) socket.destroy();
  });
}

/** Listens with `server` at `endpoint`; its close also ends the open connections (`closeAll`). */
function listening(
  server: net.Server,
  endpoint: { hostname: string; port: number },
  closeAll: () => void,
): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(error.code === "EADDRINUSE" ? new AddrInUseError(formatEndpoint(endpoint), { cause: error }) : error);
    });
    server.listen({ host: endpoint.hostname, port: endpoint.port }, () => {
      server.removeAllListeners("error");
      server.on("error", () => {}); // accept failures: keep serving
      const bound = server.address() as { address: string; port: number };
      const addr: Address = { transport: "tcp", hostname: bound.address, port: bound.port };
      resolve({
        addr,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            closeAll();
          }),
      });
    });
  });
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, handler: HttpHandler): Promise<void> {
  try {
    const headers = new Headers();
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD";
    const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
      method,
      headers,
      ...(hasBody && { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: "half" }),
    } as RequestInit);
    const response = await handler(request);
    const body = new Uint8Array(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(body);
    if (!req.complete) req.destroy(); // a body the handler refused (413): do not read the rest
  } catch {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  }
}
