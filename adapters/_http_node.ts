// An HTTP server on node:http that answers through one fetch-style handler (Transport.serveHttp).

import * as http from "node:http";
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
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      reject(error.code === "EADDRINUSE" ? new AddrInUseError(formatEndpoint(endpoint), { cause: error }) : error);
    });
    server.listen({ host: endpoint.hostname, port: endpoint.port }, () => {
      server.removeAllListeners("error");
      server.on("error", () => {}); // accept failures: node:http keeps serving
      const bound = server.address() as { address: string; port: number };
      const addr: Address = { transport: "tcp", hostname: bound.address, port: bound.port };
      resolve({
        addr,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
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
