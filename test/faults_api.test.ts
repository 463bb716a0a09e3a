// echogate faults: toxiproxy 2.12's own API tests (api_test.go), ported case by case and driven
// with the request bodies its Go client sends (`"toxics": null`, `"attributes": null`, a stream
// left out, a toxicity of -1 sent as 1). Ports are 0 where toxiproxy's tests use fixed ones.

import { afterEach, describe, expect, test } from "vitest";
import { cleanup, portOf, RUNTIME, transport } from "./_utils.ts";
import { api, faultsKit } from "./_faults.ts";

const resources = cleanup();
afterEach(() => resources.run());

const { startFaults, startEcho, connect } = faultsKit(resources);

type ProxyJson = { name: string; listen: string; upstream: string; enabled: boolean; toxics: ToxicJson[] | null };
type ToxicJson = { name: string; type: string; stream: string; toxicity: number; attributes: Record<string, number> };

/** The calls of toxiproxy's Go client (client/*.go), with its bodies and its error strings. */
function goClient(base: string) {
  async function call(method: string, path: string, body?: unknown) {
    const response = await api(base, method, path, body, { "user-agent": "Go-http-client/1.1" });
    if (response.status >= 300) throw new Error(`HTTP ${response.status}: ${response.json?.error}`);
    return response.json as unknown;
  }
  const prefixed = async <T>(prefix: string, promise: Promise<T>): Promise<T> => {
    try {
      return await promise;
    } catch (error) {
      throw new Error(`${prefix}: ${(error as Error).message}`);
    }
  };
  return {
    proxies: () => call("GET", "/proxies") as Promise<Record<string, ProxyJson>>,
    proxy: (name: string) => call("GET", `/proxies/${name}`) as Promise<ProxyJson>,
    /** client.CreateProxy and Proxy.Save of a new proxy (enabled as given). */
    createProxy: (name: string, listen: string, upstream: string, enabled = true) =>
      prefixed(
        "create",
        call("POST", "/proxies", { name, listen, upstream, enabled, toxics: null }) as Promise<ProxyJson>,
      ),
    /** Proxy.Save of an existing proxy: the whole proxy, toxics included, posted to its path. */
    save: (proxy: ProxyJson) => call("POST", `/proxies/${proxy.name}`, proxy) as Promise<ProxyJson>,
    deleteProxy: (name: string) => prefixed("Delete", call("DELETE", `/proxies/${name}`)),
    populate: (config: Partial<ProxyJson>[]) =>
      prefixed("Populate", call("POST", "/populate", config) as Promise<{ proxies: ProxyJson[] }>),
    toxics: (proxy: string) => call("GET", `/proxies/${proxy}/toxics`) as Promise<ToxicJson[]>,
    addToxic: (proxy: string, name: string, type: string, stream: string, toxicity: number, attributes?: object) =>
      prefixed(
        "AddToxic",
        call("POST", `/proxies/${proxy}/toxics`, {
          name,
          type,
          ...(stream !== "" && { stream }), // `json:"stream,omitempty"`
          toxicity: toxicity === -1 ? 1 : toxicity,
          attributes: attributes ?? null,
        }) as Promise<ToxicJson>,
      ),
    updateToxic: (proxy: string, name: string, toxicity: number, attributes: object) =>
      call("PATCH", `/proxies/${proxy}/toxics/${name}`, {
        attributes,
        ...(toxicity !== -1 && { toxicity }),
      }) as Promise<ToxicJson>,
    removeToxic: (proxy: string, name: string) => call("DELETE", `/proxies/${proxy}/toxics/${name}`),
    resetState: () => call("POST", "/reset", ""),
  };
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const listener = await transport.listen({ hostname: "127.0.0.1", port: 0 }, {
    onSocket: (s) => s.close(),
    onError: () => {},
  });
  const port = portOf(listener);
  await listener.close();
  return port;
}

/** toxiproxy's AssertProxyUp: whether a connection to `listen` is accepted. */
async function isUp(listen: string): Promise<boolean> {
  try {
    (await connect(listen)).close();
    return true;
  } catch {
    return false;
  }
}

/** toxiproxy's AssertToxicExists: the toxic of that name, checked for type and stream. */
function findToxic(toxics: ToxicJson[] | null, name: string): ToxicJson | undefined {
  return (toxics ?? []).find((toxic) => toxic.name === name);
}

/** A downstream latency toxic of toxicity 1, as the API shows it. */
function latencyJson(name: string, latency: number, jitter: number): ToxicJson {
  return { name, type: "latency", stream: "downstream", toxicity: 1, attributes: { latency, jitter } };
}

describe(`toxiproxy's api_test.go against echogate faults on ${RUNTIME}`, () => {
  test("TestRequestId, TestBrowserGets403, TestNonBrowserGets200, TestVersionEndpointReturnsVersion", async () => {
    const { base } = await startFaults();
    const version = await api(base, "GET", "/version", undefined, { "user-agent": "curl" });
    expect(version.headers.has("x-toxiproxy-request-id")).toBe(true);
    expect(version.raw).toMatch(/^\{"version": "[^"]+"\}\n$/); // echogate's version where toxiproxy's says "git"
    const browser = await api(base, "GET", "/proxies", undefined, {
      "user-agent": "Mozilla/5.0 (Linux; Android 4.4.2); Nexus 5 Build/KOT49H) AppleWebKit/537.36",
    });
    expect(browser.status).toBe(403);
    expect((await api(base, "GET", "/proxies", undefined, { "user-agent": "Wget/2.1" })).status).toBe(200);
  });

  test("TestIndexWithNoProxies, TestCreateProxyBlankName, TestCreateProxyBlankUpstream", async () => {
    const client = goClient((await startFaults()).base);
    expect(await client.proxies()).toEqual({});
    await expect(client.createProxy("", "", "")).rejects.toThrow(
      /^create: HTTP 400: missing required field: name$/,
    );
    await expect(client.createProxy("test", "", "")).rejects.toThrow(
      /^create: HTTP 400: missing required field: upstream$/,
    );
  });

  test("TestPopulateProxy, TestPopulateDefaultEnabled, TestPopulateDisabledProxy", async () => {
    const { base } = await startFaults();
    const client = goClient(base);
    const upstream = await startEcho();
    const [one, two] = [await freePort(), await freePort()];
    const populated = await client.populate([
      { name: "one", listen: `localhost:${one}`, upstream, enabled: false },
      { name: "two", listen: `localhost:${two}`, upstream, enabled: true },
    ]);
    expect(populated.proxies.map((proxy) => proxy.name)).toEqual(["one", "two"]);
    expect(await isUp(`127.0.0.1:${one}`)).toBe(false);
    expect(await isUp(populated.proxies[1]!.listen)).toBe(true);
    // Without "enabled", a populated proxy is enabled.
    const raw = await api(
      base,
      "POST",
      "/populate",
      `[{"name": "test", "listen": "localhost:0", "upstream": "${upstream}"}]`,
    );
    expect(raw.status).toBe(201);
    const test = (await client.proxies()).test!;
    expect(test.enabled).toBe(true);
    expect(await isUp(test.listen)).toBe(true);
  });

  test("TestPopulateExistingProxy: a proxy populated again is kept with its toxics, moved if its listen changed", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    const one = await client.createProxy("one", "localhost:0", upstream);
    await client.createProxy("two", "localhost:0", upstream);
    await client.addToxic("one", "", "latency", "downstream", 1);
    const port = await freePort();
    const { proxies } = await client.populate([
      { name: "one", listen: one.listen.replace("127.0.0.1", "localhost"), upstream, enabled: true },
      { name: "two", listen: `127.0.0.1:${port}`, upstream, enabled: true },
    ]);
    expect(proxies.map((proxy) => [proxy.name, proxy.listen])).toEqual([["one", one.listen], [
      "two",
      `127.0.0.1:${port}`,
    ]]);
    const toxics = await client.toxics("one");
    expect(toxics.map((toxic) => toxic.type)).toEqual(["latency"]);
    for (const proxy of proxies) expect(await isUp(proxy.listen)).toBe(true);
  });

  test("TestPopulateWithBadName: nothing is created, the error names the proxy", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    await expect(client.populate([
      { name: "one", listen: "localhost:0", upstream, enabled: true },
      { name: "", listen: "", enabled: true },
    ])).rejects.toThrow(/^Populate: HTTP 400: missing required field: name at proxy 2$/);
    expect(await client.proxies()).toEqual({});
  });

  test("TestPopulateProxyWithBadDataShouldReturnError: a bad listen fails populate (before any is created)", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    await expect(client.populate([
      { name: "one", listen: "localhost:0", upstream, enabled: true },
      { name: "two", listen: "local373", upstream, enabled: true },
      { name: "three", listen: "localhost:0", upstream, enabled: true },
    ])).rejects.toThrow(/^Populate: HTTP 400: /);
    // toxiproxy has created "one" by then (it checks only names and upstreams first); echogate
    // checks listen too, so nothing is created (docs/faults.md).
    expect(Object.keys(await client.proxies())).toEqual([]);
  });

  test("TestPopulateAddToxic, TestListingProxies, TestCreateAndGetProxy, TestCreateProxyWithSave", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    const { proxies: [one] } = await client.populate([{ name: "one", listen: "localhost:0", upstream, enabled: true }]);
    expect(one!.name).toBe("one");
    expect((await client.addToxic("one", "", "latency", "downstream", 1)).name).toBe("latency_downstream");
    await client.createProxy("mysql_master", "localhost:0", upstream);
    const listed = (await client.proxies()).mysql_master!;
    expect(listed).toMatchObject({ name: "mysql_master", upstream, enabled: true, toxics: [] });
    expect(listed.listen).toMatch(/^127\.0\.0\.1:[1-9]\d*$/); // resolved
    expect(await client.proxy("mysql_master")).toEqual(listed);
    expect(await isUp(listed.listen)).toBe(true);
  });

  test("TestCreateDisabledProxy, TestCreateDisabledProxyAndEnable: listen stays as given until enabled", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    const port = await freePort();
    await client.createProxy("mysql_master", `localhost:${port}`, upstream, false);
    const proxy = await client.proxy("mysql_master");
    expect(proxy).toMatchObject({ listen: `localhost:${port}`, upstream, enabled: false });
    expect(await isUp(`127.0.0.1:${port}`)).toBe(false);
    const enabled = await client.save({ ...proxy, enabled: true });
    expect(enabled).toMatchObject({ listen: `127.0.0.1:${port}`, enabled: true });
    expect(await isUp(enabled.listen)).toBe(true);
    const disabled = await client.save({ ...enabled, enabled: false });
    expect(disabled.enabled).toBe(false);
    expect(await isUp(enabled.listen)).toBe(false);
  });

  test("TestDeleteProxy: its listener closes; deleting it again is a 404", async () => {
    const client = goClient((await startFaults()).base);
    const proxy = await client.createProxy("mysql_master", "localhost:0", await startEcho());
    expect(await isUp(proxy.listen)).toBe(true);
    await client.deleteProxy("mysql_master");
    expect(await isUp(proxy.listen)).toBe(false);
    expect(await client.proxies()).toEqual({});
    await expect(client.deleteProxy("mysql_master")).rejects.toThrow(/^Delete: HTTP 404: proxy not found$/);
  });

  test("TestCreateProxyPortConflict (500), TestCreateProxyNameConflict (409); both free again after delete", async () => {
    const client = goClient((await startFaults()).base);
    const upstream = await startEcho();
    const first = await client.createProxy("mysql_master", "localhost:0", upstream);
    const port = first.listen.split(":")[1];
    await expect(client.createProxy("test", `localhost:${port}`, upstream)).rejects.toThrow(
      /^create: HTTP 500: listen localhost:\d+: .*(in use|EADDRINUSE)/i,
    );
    await expect(client.createProxy("mysql_master", "localhost:0", upstream)).rejects.toThrow(
      /^create: HTTP 409: proxy already exists$/,
    );
    await client.deleteProxy("mysql_master");
    expect((await client.createProxy("test", `localhost:${port}`, upstream)).listen).toBe(first.listen);
    await client.createProxy("mysql_master", "localhost:0", upstream);
  });

  test("TestResetState: the proxy stays, enabled, with no toxics", async () => {
    const client = goClient((await startFaults()).base);
    const proxy = await client.createProxy("mysql_master", "localhost:0", await startEcho());
    const latency = await client.addToxic("mysql_master", "", "latency", "downstream", 1, { latency: 100, jitter: 10 });
    expect(latency.attributes).toEqual({ latency: 100, jitter: 10 });
    await client.save({ ...proxy, enabled: false });
    await client.resetState();
    const after = (await client.proxies()).mysql_master!;
    expect(after.enabled).toBe(true);
    expect(await client.toxics("mysql_master")).toEqual([]);
    expect(await isUp(after.listen)).toBe(true);
  });

  test("TestListingToxics, TestAddToxic, TestAddMultipleToxics, TestAddNoop, TestAddToxicWithToxicity", async () => {
    const client = goClient((await startFaults()).base);
    await client.createProxy("mysql_master", "localhost:0", await startEcho());
    expect(await client.toxics("mysql_master")).toEqual([]);
    const foobar = await client.addToxic("mysql_master", "foobar", "latency", "downstream", 1, {
      latency: 100,
      jitter: 10,
    });
    expect(foobar).toEqual(latencyJson("foobar", 100, 10));
    await client.addToxic("mysql_master", "latency1", "latency", "downstream", 1);
    await client.addToxic("mysql_master", "latency2", "latency", "downstream", 1);
    const noop = await client.addToxic("mysql_master", "noop", "noop", "", 1); // no stream: downstream
    expect(noop).toMatchObject({ name: "noop", type: "noop", stream: "downstream", toxicity: 1 });
    const partial = await client.addToxic("mysql_master", "", "latency", "upstream", 0.2, { latency: 100, jitter: 10 });
    expect(partial).toMatchObject({
      name: "latency_upstream",
      toxicity: 0.2,
      attributes: { latency: 100, jitter: 10 },
    });
    const toxics = await client.toxics("mysql_master");
    expect(findToxic(toxics, "foobar")).toEqual(foobar);
    expect(findToxic(toxics, "latency2")).toEqual(latencyJson("latency2", 0, 0));
    expect(findToxic(toxics, "noop")?.stream).toBe("downstream");
    expect(toxics.map((toxic) => toxic.name)).toEqual(["latency_upstream", "foobar", "latency1", "latency2", "noop"]);
  });

  test("TestAddConflictingToxic, TestAddConflictingToxicsMultistream(Defaults): names are unique over both streams", async () => {
    const client = goClient((await startFaults()).base);
    await client.createProxy("mysql_master", "localhost:0", await startEcho());
    await client.addToxic("mysql_master", "foobar", "latency", "downstream", 1);
    await expect(client.addToxic("mysql_master", "foobar", "slow_close", "downstream", 1)).rejects.toThrow(
      /^AddToxic: HTTP 409: toxic already exists$/,
    );
    await expect(client.addToxic("mysql_master", "foobar", "latency", "upstream", 1)).rejects.toThrow(
      /^AddToxic: HTTP 409: toxic already exists$/,
    );
    const toxics = await client.toxics("mysql_master");
    expect(toxics).toEqual([latencyJson("foobar", 0, 0)]);
    // The default names differ by stream, so both defaults fit.
    await client.addToxic("mysql_master", "", "latency", "upstream", 1);
    await client.addToxic("mysql_master", "", "latency", "downstream", 1);
    const names = (await client.toxics("mysql_master")).map((toxic) => `${toxic.name}/${toxic.stream}`);
    expect(names).toEqual(["latency_upstream/upstream", "foobar/downstream", "latency_downstream/downstream"]);
  });

  test("TestUpdateToxics: attributes merge; a toxicity left out (-1 in the Go client) is kept", async () => {
    const client = goClient((await startFaults()).base);
    await client.createProxy("mysql_master", "localhost:0", await startEcho());
    const added = await client.addToxic("mysql_master", "", "latency", "downstream", -1, { latency: 100, jitter: 10 });
    expect(added).toMatchObject({ toxicity: 1, attributes: { latency: 100, jitter: 10 } });
    const first = await client.updateToxic("mysql_master", "latency_downstream", 0.5, { latency: 1000 });
    expect(first).toMatchObject({ toxicity: 0.5, attributes: { latency: 1000, jitter: 10 } });
    const second = await client.updateToxic("mysql_master", "latency_downstream", -1, { latency: 500 });
    expect(second).toMatchObject({ toxicity: 0.5, attributes: { latency: 500, jitter: 10 } });
    expect(findToxic(await client.toxics("mysql_master"), "latency_downstream")).toEqual(second);
  });

  test("TestRemoveToxic, TestInvalidStream", async () => {
    const client = goClient((await startFaults()).base);
    await client.createProxy("mysql_master", "localhost:0", await startEcho());
    await client.addToxic("mysql_master", "", "latency", "downstream", 1);
    await client.removeToxic("mysql_master", "latency_downstream");
    expect(await client.toxics("mysql_master")).toEqual([]);
    await expect(client.addToxic("mysql_master", "", "latency", "walrustream", 1)).rejects.toThrow(/HTTP 400/);
  });
});
