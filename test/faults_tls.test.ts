// echogate faults over TLS: listen_tls and upstream_tls, in process and via the CLI.

import { afterEach, describe, expect, test } from "vitest";
import { serveEcho, serveFaults } from "../src/mod.ts";
import { bytes, cleanup, cliCommand, readAll, runCommand, RUNTIME, startCliServer, text, transport } from "./_utils.ts";
import { hasOpenssl, usePki } from "./_pki.ts";
import { api, faultsKit, roundTrip } from "./_faults.ts";

const resources = cleanup();
afterEach(() => resources.run());
const { startFaults, startEcho, connect } = faultsKit(resources);

describe.skipIf(!hasOpenssl())(`echogate faults over TLS on ${RUNTIME}`, () => {
  const pki = usePki();

  test("listen_tls terminates TLS with the server's certificate; toxics act on the plaintext", async () => {
    const faults = resources.add(
      await serveFaults({ transport, port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } }),
    );
    const proxy = await faults.createProxy({ name: "tls-in", upstream: await startEcho(), listen_tls: true });
    expect(proxy.listen_tls).toBe(true);
    faults.addToxic("tls-in", { type: "limit_data", attributes: { bytes: 3 } });
    const port = Number(/:(\d+)$/.exec(proxy.listen)![1]);
    const socket = resources.add(
      await transport.connect({ hostname: "127.0.0.1", port }, { tls: { ca: pki.caCert, servername: "localhost" } }),
    );
    await socket.write(bytes("abcdef"));
    expect(text(await readAll(socket))).toBe("abc");
  });

  test("upstream_tls verifies the upstream against the system roots plus the upstream CA", async () => {
    const trusted = resources.add(
      await serveEcho({ transport, port: 0, mode: "raw", tls: { cert: pki.serverCert, key: pki.serverKey } }),
    );
    const stranger = resources.add(
      await serveEcho({ transport, port: 0, mode: "raw", tls: { cert: pki.otherServerCert, key: pki.otherServerKey } }),
    );
    const faults = resources.add(await serveFaults({ transport, port: 0, tls: { upstreamCa: pki.caCert } }));
    const good = await faults.createProxy({ name: "good", upstream: trusted.url, upstream_tls: true });
    expect(text(await roundTrip(await connect(good.listen), bytes("secure")))).toBe("secure");
    const bad = await faults.createProxy({ name: "bad", upstream: stranger.url, upstream_tls: true });
    const socket = await connect(bad.listen);
    await socket.write(bytes("never")).catch(() => {});
    expect((await readAll(socket)).length).toBe(0); // the upstream failed verification: closed
  });

  test("listen_tls without a server certificate is a 400", async () => {
    const { base } = await startFaults();
    const response = await api(base, "POST", "/proxies", { name: "x", upstream: "127.0.0.1:1", listen_tls: true });
    expect(response.status).toBe(400);
    expect(response.json.error).toMatch(/listen_tls needs the server's certificate/);
  });

  test("the CLI takes --tls-cert/--tls-key for listen_tls proxies", async () => {
    const upstream = await startEcho();
    const args = ["faults", "--port", "0", "--tls-cert", pki.files.serverCert, "--tls-key", pki.files.serverKey];
    const server = resources.child(await startCliServer(RUNTIME, args));
    const proxy = (await api(`http://${server.address}`, "POST", "/proxies", {
      name: "cli-tls",
      upstream,
      listen_tls: true,
    })).json;
    const port = Number(/:(\d+)$/.exec(proxy.listen as string)![1]);
    const socket = resources.add(
      await transport.connect({ hostname: "127.0.0.1", port }, { tls: { ca: pki.caCert, servername: "localhost" } }),
    );
    expect(text(await roundTrip(socket, bytes("via cli")))).toBe("via cli");
    expect(await server.stop("SIGTERM")).toBe(0);
    const lone = await runCommand([...cliCommand(RUNTIME), "faults", "--tls-cert", pki.files.serverCert]);
    expect(lone.code).toBe(2);
    expect(lone.stderr).toMatch(/"--tls-cert" needs --tls-key/);
  });
});
