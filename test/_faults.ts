// Helpers shared by the faults test files: servers that close after each test, sockets, the API.

import { type FaultsServer, serveEcho, serveFaults, type StreamSocket } from "../src/mod.ts";
import { bytes, portOf, readAll, readAtLeast, transport } from "./_net.ts";
import type { cleanup } from "./_utils.ts";

/** Starts servers and sockets that `resources` closes after each test. */
export function faultsKit(resources: ReturnType<typeof cleanup>) {
  async function startFaults(seed: number | string = 1): Promise<{ faults: FaultsServer; base: string }> {
    const faults = resources.add(await serveFaults({ transport, port: 0, seed }));
    return { faults, base: `http://${faults.url}` };
  }

  async function startEcho(): Promise<string> {
    return resources.add(await serveEcho({ transport, port: 0, mode: "raw" })).url;
  }

  /** An upstream that reads until the client's FIN, then answers how many bytes came and closes. */
  async function startCountingUpstream(): Promise<string> {
    const listener = await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
      onSocket: (socket) =>
        void (async () => {
          let n = 0;
          for (let chunk = await socket.read(); chunk !== null; chunk = await socket.read()) n += chunk.length;
          await socket.write(bytes(`got ${n}`));
          await socket.closeWrite();
          await readAll(socket).catch(() => {});
          socket.close();
        })().catch(() => socket.close()),
      onError: () => {},
    });
    resources.add(listener);
    return `127.0.0.1:${portOf(listener)}`;
  }

  async function connect(listen: string): Promise<StreamSocket> {
    const port = Number(/:(\d+)$/.exec(listen)![1]);
    return resources.add(await transport.connect({ hostname: "127.0.0.1", port }));
  }

  return { startFaults, startEcho, startCountingUpstream, connect };
}

/** Sends `message` and reads its echo (`message.length` bytes, or less at end of input). */
export async function roundTrip(socket: StreamSocket, message: Uint8Array): Promise<Uint8Array> {
  await socket.write(message);
  return await readAtLeast(socket, message.length);
}

/** Calls the API at `base` (as a non-browser) and reads the answer, parsed when it is JSON. */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "user-agent": "test", ...headers },
    ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const raw = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  return { status: response.status, json: json as Record<string, unknown>, raw, headers: response.headers };
}
