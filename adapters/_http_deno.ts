// An HTTP server on Deno.serve that answers through one fetch-style handler (Transport.serveHttp).

import type { Address, HttpHandler, HttpServer } from "../src/types.ts";
import { AddrInUseError } from "../src/errors.ts";
import { formatEndpoint } from "../src/address.ts";

interface DenoHttpServer {
  readonly addr: { hostname: string; port: number };
  shutdown(): Promise<void>;
  readonly finished: Promise<void>;
}
interface DenoServeApi {
  serve(
    options: { hostname: string; port: number; onListen?: () => void; onError?: (error: unknown) => Response },
    handler: (request: Request) => Promise<Response>,
  ): DenoHttpServer;
  errors: { AddrInUse: new (...args: never[]) => Error };
}

/** Serves `handler` on Deno.serve at `endpoint`. */
export function serveHttpDeno(endpoint: { hostname: string; port: number }, handler: HttpHandler): Promise<HttpServer> {
  const Deno = (globalThis as unknown as { Deno: DenoServeApi }).Deno;
  let server: DenoHttpServer;
  try {
    server = Deno.serve({
      hostname: endpoint.hostname,
      port: endpoint.port,
      onListen: () => {},
      onError: () => new Response(null, { status: 500 }),
    }, handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      return Promise.reject(new AddrInUseError(formatEndpoint(endpoint), { cause: error }));
    }
    return Promise.reject(error);
  }
  const addr: Address = { transport: "tcp", hostname: server.addr.hostname, port: server.addr.port };
  return Promise.resolve({ addr, close: () => server.shutdown() });
}
