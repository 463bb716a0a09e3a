/**
 * toxiproxy's HTTP API (2.12) as one fetch-style handler over a {@linkcode FaultsController}.
 *
 * @module
 */

import type { HttpHandler } from "../types.ts";
import { METRICS_CONTENT_TYPE } from "../metrics/exposition.ts";
import { VERSION } from "../version.ts";
import type { FaultsController } from "./controller.ts";
import { FaultsError, type ProxyInfo } from "./model.ts";

/** The largest request body accepted; larger gets a 413. */
export const MAX_BODY_BYTES = 1024 * 1024;

const JSON_TYPE = { "content-type": "application/json" };

type Route = (faults: FaultsController, body: () => Promise<unknown>, params: [string, string]) => Promise<Response>;

const ok = (value: unknown, status = 200) => new Response(JSON.stringify(value), { status, headers: JSON_TYPE });
const noContent = () => new Response(null, { status: 204 });

/** [method, path pattern, route]; `{}` in a pattern matches one path segment. */
const ROUTES: [string, RegExp, Route][] = [
  ["GET", /^\/version$/, () =>
    Promise.resolve(
      new Response(`{"version": "${VERSION}"}\n`, {
        headers: { "content-type": "application/json;charset=utf-8" },
      }),
    )],
  ["POST", /^\/reset$/, async (faults) => (await faults.reset(), noContent())],
  ["GET", /^\/proxies$/, (faults) => Promise.resolve(ok(faults.listProxies()))],
  ["POST", /^\/proxies$/, async (faults, body) => ok(await faults.createProxy(await body() as never), 201)],
  ["POST", /^\/populate$/, populate],
  ["GET", /^\/proxies\/([^/]+)$/, (faults, _, [p]) => Promise.resolve(ok(faults.getProxy(p)))],
  ["POST|PATCH", /^\/proxies\/([^/]+)$/, async (faults, body, [p]) => {
    faults.getProxy(p); // a 404 before a 400
    return ok(await faults.updateProxy(p, await body() as never));
  }],
  ["DELETE", /^\/proxies\/([^/]+)$/, async (faults, _, [p]) => (await faults.removeProxy(p), noContent())],
  ["GET", /^\/proxies\/([^/]+)\/toxics$/, (faults, _, [p]) => Promise.resolve(ok(faults.listToxics(p)))],
  ["POST", /^\/proxies\/([^/]+)\/toxics$/, async (faults, body, [p]) => {
    faults.getProxy(p);
    return ok(faults.addToxic(p, await body() as never));
  }],
  ["GET", /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/, (faults, _, [p, t]) => Promise.resolve(ok(faults.getToxic(p, t)))],
  ["POST|PATCH", /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/, async (faults, body, [p, t]) => {
    faults.getToxic(p, t);
    return ok(faults.updateToxic(p, t, await body() as never));
  }],
  [
    "DELETE",
    /^\/proxies\/([^/]+)\/toxics\/([^/]+)$/,
    (faults, _, [p, t]) => Promise.resolve((faults.removeToxic(p, t), noContent())),
  ],
  ["GET", /^\/metrics$/, (faults) =>
    Promise.resolve(
      new Response(faults.metrics(), {
        headers: { "content-type": METRICS_CONTENT_TYPE },
      }),
    )],
];

async function populate(faults: FaultsController, body: () => Promise<unknown>): Promise<Response> {
  try {
    return ok({ proxies: await faults.populate(await body() as never) }, 201);
  } catch (error) {
    if (!(error instanceof FaultsError)) throw error;
    const proxies = (error as FaultsError & { proxies?: ProxyInfo[] }).proxies ?? [];
    return ok({ error: error.message, status: error.status, proxies }, error.status);
  }
}

/**
 * Builds the API's handler: every route of toxiproxy 2.12, its status codes and error bodies
 * (`{"error": "...", "status": N}`), an `X-Toxiproxy-Request-Id` on every answer, and a 403 for
 * browsers (a `Mozilla/` user agent), so that a web page cannot drive it.
 *
 * @param faults The proxies it manages.
 * @returns A fetch-style handler.
 *
 * @example
 * ```ts ignore
 * import { createFaultsHandler } from "./api.ts";
 *
 * const handler = createFaultsHandler(faults);
 * const response = await handler(new Request("http://localhost/version"));
 * ```
 */
export function createFaultsHandler(faults: FaultsController): HttpHandler {
  let requests = 0;
  const prefix = Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, "0");
  return async (request) => {
    const response = await answer(faults, request);
    response.headers.set("x-toxiproxy-request-id", `${prefix}${(++requests).toString(16).padStart(12, "0")}`);
    return response;
  };
}

async function answer(faults: FaultsController, request: Request): Promise<Response> {
  if ((request.headers.get("user-agent") ?? "").startsWith("Mozilla/")) {
    return new Response("User agent not allowed\n", { status: 403, headers: { "content-type": "text/plain" } });
  }
  const path = new URL(request.url).pathname;
  let pathMatched = false;
  for (const [methods, pattern, route] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    pathMatched = true;
    if (!methods.split("|").includes(request.method)) continue;
    let params: string[];
    try {
      params = match.slice(1).map((segment) => decodeURIComponent(segment));
    } catch {
      return apiError("bad request: the path is not valid percent-encoding", 400);
    }
    try {
      return await route(faults, () => readJson(request), params as [string, string]);
    } catch (error) {
      if (error instanceof FaultsError) return apiError(error.message, error.status);
      return apiError(error instanceof Error ? error.message : String(error), 500);
    }
  }
  // gorilla/mux: an unknown path is a 404, a known one with another method a 405.
  return pathMatched
    ? new Response("", { status: 405 })
    : new Response("404 page not found\n", { status: 404, headers: { "content-type": "text/plain" } });
}

function apiError(message: string, status: number): Response {
  return new Response(JSON.stringify({ error: message, status }) + "\n", { status, headers: JSON_TYPE });
}

/** Reads the body as JSON, at most {@linkcode MAX_BODY_BYTES}: 413 beyond, 400 when it is not JSON. */
async function readJson(request: Request): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new FaultsError("request body too large", 413);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new FaultsError("request body too large", 413);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) bytes.set(chunk, (offset += chunk.length) - chunk.length);
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") return {}; // toxiproxy-node-client's reset() posts nothing; so may others
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FaultsError(`bad request body: ${error instanceof Error ? error.message : "not JSON"}`, 400);
  }
}
