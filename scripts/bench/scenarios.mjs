// The servers (baselines and echogate) and the scenarios each cell runs.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { IDLE_CONNS, IDLE_SETTLE_SECONDS, options, ROOT, SCENARIO_NAMES } from "./options.mjs";
import { cliCommand, runScript, scratch } from "./processes.mjs";

export const BASELINE_FILES = { node: "node.mjs", deno: "deno.ts", bun: "bun.ts" };

export function baselineCommand(runtime, protocolArgs, scenario = {}) {
  const file = scenario.baselineFiles?.[runtime] ?? BASELINE_FILES[runtime];
  return [...runScript(runtime, join(ROOT, "bench/baseline", file), scenario.baselineDenoFlags), ...protocolArgs];
}

export const ECHOGATE_ROOT = options.echogate === undefined ? ROOT : resolve(options.echogate);

export function echogateCommand(runtime, cliArgs, scenario = {}) {
  const args = [...cliArgs, ...(scenario.echogateArgs?.[runtime] ?? [])];
  if (runtime === "deno" && scenario.echogateDenoFlags) {
    return [...runScript(runtime, join(ECHOGATE_ROOT, "src/cli.ts"), scenario.echogateDenoFlags), ...args];
  }
  return [...cliCommand(runtime, ECHOGATE_ROOT), ...args];
}

/** A CA and a server certificate for localhost / 127.0.0.1, made in the scratch folder, for the TLS cells. */
export function makeBenchPki() {
  const dir = join(scratch, "pki");
  mkdirSync(dir);
  const openssl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key");
  openssl(
    ..."req -x509 -new -key ca.key -sha256 -days 2 -subj /CN=bench-ca".split(" "),
    ..."-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.crt".split(" "),
  );
  openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.ec.key");
  openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.ec.key", "-out", "server.key");
  openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr");
  writeFileSync(
    join(dir, "server.ext"),
    "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  openssl(
    ..."x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2".split(" "),
    ..."-extfile server.ext -out server.crt".split(" "),
  );
  return { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key") };
}
export const PKI = SCENARIO_NAMES.some((name) => name.startsWith("tls-")) ? makeBenchPki() : undefined;

/**
 * The scenario over TLS: the same servers with a certificate, the generator verifying it. On Deno
 * echogate runs with `--tls-stalled-handshakes hold`, on Deno.listenTls like the baseline (its
 * default, Deno's node:tls, is measured by the `*-close` cells).
 */
export function overTls(scenario, stalled = "hold") {
  const serverTls = ["--tls-cert", PKI?.cert ?? "", "--tls-key", PKI?.key ?? ""];
  return {
    ...scenario,
    what: `${scenario.what}, over TLS${stalled === "close" ? " (Deno: echogate's default, on node:tls)" : ""}`,
    baseline: [...scenario.baseline, ...serverTls],
    echogate: [...scenario.echogate, ...serverTls],
    echogateArgs: { deno: ["--tls-stalled-handshakes", stalled] },
    generator: [...scenario.generator, "--tls", "--ca", PKI?.ca ?? ""],
  };
}

export const SCENARIOS = {
  stream: {
    what: "raw mode, 64 connections, 64 KiB in flight each",
    unit: "MB/s",
    baseline: ["echo", "--mode", "raw"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "raw"],
    generator: ["--mode", "stream", "--prefix", "", "--conns", "64", "--size", "65536"],
    value: (report) => report.throughputMBps,
  },
  pingpong: {
    what: "chunk mode, prefix Echo=>, 100 connections, 64-byte messages",
    unit: "round trips/s",
    baseline: ["echo", "--mode", "chunk"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "chunk"],
    generator: ["--mode", "pingpong", "--conns", "100", "--size", "64"],
    value: (report) => report.opsPerS,
  },
  idle: {
    what:
      `${IDLE_CONNS} idle connections held (chunk mode), after one exchange each, by a server quiet for ${IDLE_SETTLE_SECONDS} s`,
    unit: "KiB/conn",
    baseline: ["echo", "--mode", "chunk"],
    echogate: ["echo", "serve", "--port", "0", "--mode", "chunk"],
  },
  udp: {
    what: "UDP pingpong, prefix Echo=>, 50 sockets, 64-byte datagrams; echogate with --no-udp-limits " +
      "(its default limits would cap one source at 10/s); on Deno both run with --unstable-net (Deno.listenDatagram)",
    unit: "round trips/s",
    baseline: ["udp"],
    baselineFiles: { node: "udp_node.mjs", deno: "udp_deno.ts", bun: "udp_bun.ts" },
    baselineDenoFlags: ["--unstable-net"],
    echogateDenoFlags: ["--unstable-net"],
    echogate: ["echo", "serve", "--udp", "--port", "0", "--no-udp-limits"],
    generator: ["--udp", "--conns", "50", "--size", "64"],
    value: (report) => report.opsPerS,
  },
  connect: {
    what: "a new connection per gate knock (token 1, answered), 32 at a time",
    unit: "conns/s",
    baseline: ["gate"],
    echogate: ["gate", "serve", "--port", "0"],
    generator: ["--mode", "connect", "--knock", "1", "--conns", "32"],
    value: (report) => report.opsPerS,
  },
  // The cost of the PROXY protocol: the same gate with --proxy-protocol, each connection sending
  // a v2 header first, against the same gate without it (echogate on both sides, not the baseline).
  "connect-proxy": {
    what: "the connect cell's gate with --proxy-protocol (a v2 header before each knock) vs the same gate without",
    unit: "conns/s",
    reference: {
      echogate: ["gate", "serve", "--port", "0"],
      generator: ["--mode", "connect", "--knock", "1", "--conns", "32"],
    },
    echogate: ["gate", "serve", "--port", "0", "--proxy-protocol"],
    generator: ["--mode", "connect", "--knock", "1", "--conns", "32", "--proxy-header", "v2"],
    value: (report) => report.opsPerS,
  },
};
// The same two gates held at one rate that every runtime's gate and the generator sustain: at
// saturation the generator sets Bun's pace (it pays for both ends of each loopback handshake), and
// a server's CPU per connection then depends on how idle it is (fewer events per wakeup). At one
// rate both do the same work per second, so their CPU per connection is the header's cost alone.
const COST_RATE = 2500;
SCENARIOS["connect-proxy-cpu"] = {
  what: `server CPU per connection at ${COST_RATE.toLocaleString("en-US")} conns/s (connect-proxy's two gates ` +
    "at a rate both hold); ratio: CPU without / with --proxy-protocol",
  unit: "µs/conn",
  cost: true,
  rate: COST_RATE,
  reference: {
    echogate: SCENARIOS["connect-proxy"].reference.echogate,
    generator: [...SCENARIOS["connect-proxy"].reference.generator, "--rate", String(COST_RATE)],
  },
  echogate: SCENARIOS["connect-proxy"].echogate,
  generator: [...SCENARIOS["connect-proxy"].generator, "--rate", String(COST_RATE)],
  value: (_report, serverCpuPerOpUs) => serverCpuPerOpUs,
};
// The faults cells: one connection through a forwarder to a raw echo upstream (the C reference,
// or bench/baseline/node.mjs without a compiler, on the generator's CPUs, the same for every
// server): `echogate faults` with one proxy and no toxics against a pass-through forwarder on the
// runtime's own sockets (bench/baseline/forward_*), and against socat. The proxy's port comes from
// its `proxy-created` event (--json); socat's from its `-d -d` notice.
for (const kind of ["stream", "pingpong"]) {
  const scenario = {
    what: `one connection (${kind}, no prefix) through a fault proxy with no toxics to a raw echo upstream`,
    unit: SCENARIOS[kind].unit,
    upstream: true,
    baseline: ["forward", "--upstream", "{upstream}"],
    baselineFiles: { node: "forward_node.mjs", deno: "forward_deno.ts", bun: "forward_bun.ts" },
    echogate: ["faults", "--port", "0", "--json", "--config", "{config}"],
    generator: ["--mode", kind, "--prefix", "", "--conns", "1", "--size", kind === "stream" ? "65536" : "64"],
    value: SCENARIOS[kind].value,
  };
  SCENARIOS[`faults-${kind}`] = { ...scenario, what: `${scenario.what}; baseline: bench/baseline/forward_*` };
  SCENARIOS[`faults-${kind}-socat`] = {
    ...scenario,
    what: `${scenario.what}; baseline: socat (fork, nodelay; its cpu ratio means nothing: a forked child forwards)`,
    referenceCommand: [
      "socat",
      "-d",
      "-d",
      "TCP-LISTEN:0,bind=127.0.0.1,fork,reuseaddr,nodelay",
      "TCP:{upstream},nodelay",
    ],
  };
}
SCENARIOS["tls-stream"] = overTls(SCENARIOS.stream);
SCENARIOS["tls-pingpong"] = overTls(SCENARIOS.pingpong);
SCENARIOS["tls-connect"] = { ...overTls(SCENARIOS.connect), unit: "handshakes/s" };
// Deno only: echogate's default there, whose handshake timeout frees stalled connections.
SCENARIOS["tls-stream-close"] = overTls(SCENARIOS.stream, "close");
SCENARIOS["tls-pingpong-close"] = overTls(SCENARIOS.pingpong, "close");
SCENARIOS["tls-connect-close"] = { ...overTls(SCENARIOS.connect, "close"), unit: "handshakes/s" };
// The same, against a node:tls baseline run on Deno (bench/baseline/node.mjs): what is Deno's node:tls, what is echogate's.
for (const name of ["tls-stream-close", "tls-pingpong-close", "tls-connect-close"]) {
  const scenario = SCENARIOS[name];
  SCENARIOS[`${name}-nodetls`] = {
    ...scenario,
    what: `${scenario.what}; baseline: bench/baseline/node.mjs (node:tls) on Deno`,
    baselineFiles: { deno: "node.mjs" },
  };
}
