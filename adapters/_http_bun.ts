// An HTTP server on Bun.serve that answers through one fetch-style handler (Transport.serveHttp).

import type { Address, HttpHandler, HttpLimits, HttpServer } from "../src/types.ts";
import { AddrInUseError } from "../src/errors.ts";
import { formatEndpoint } from "../src/address.ts";

interface BunServeApi {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request) => Promise<Response>;
    error?: (error: unknown) => Response;
    idleTimeout?: number;
    maxRequestBodySize?: number;
  }): { readonly hostname?: string; readonly port?: number; stop(closeActiveConnections?: boolean): Promise<void> };
}

/** Serves `handler` on Bun.serve at `endpoint`. */
export function serveHttpBun(
  endpoint: { hostname: string; port: number },
  handler: HttpHandler,
  limits: HttpLimits = {},
): Promise<HttpServer> {
  const Bun = (globalThis as unknown as { Bun: BunServeApi }).Bun;
  let server: ReturnType<BunServeApi["serve"]>;
  try {
    server = Bun.serve({
      hostname: endpoint.hostname,
      port: endpoint.port,
      fetch: handler,
      error: () => new Response(null, { status: 500 }),
      // Bun.serve takes seconds (at most 255); it has no connection limit (adapters/bun.ts goes
      // elsewhere when one is asked for).
      ...(limits.idleTimeoutMs !== undefined && { idleTimeout: Math.min(255, Math.ceil(limits.idleTimeoutMs / 1000)) }),
      ...(limits.maxRequestBytes !== undefined && { maxRequestBodySize: limits.maxRequestBytes }),
    });
  } catch (error) {
    if ((error as { code?: string }).code === "EADDRINUSE") {
      return Promise.reject(new AddrInUseError(formatEndpoint(endpoint), { cause: error }));
    }
    return Promise.reject(error);
  }
  const addr: Address = { transport: "tcp", hostname: server.hostname ?? endpoint.hostname, port: server.port ?? 0 };
  return Promise.resolve({ addr, close: async () => void await server.stop(true) });
}
