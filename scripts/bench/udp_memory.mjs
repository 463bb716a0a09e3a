// What a UDP listener costs in memory: the resident size of an idle `echo serve --udp` next to an
// idle `echo serve` (TCP) on each runtime, and how the UDP server's size moves after N distinct
// peers (source ports) sent it one datagram each, beside the same for the runtime's UDP baseline
// (bench/baseline/udp_*). Node runs echogate from npm/ (npm run build).
//
//   node scripts/bench/udp_memory.mjs [--peers 5000] [--settle 3] [--runtimes node,deno,deno-net,bun]

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommandLine } from "../_args.mjs";
import { rssKiB } from "../_proc.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseCommandLine(
  "udp_memory",
  "Usage: node scripts/bench/udp_memory.mjs [--peers 5000] [--settle 3] [--runtimes node,deno,deno-net,bun]",
  {
    strings: {
      peers: "5000",
      settle: "3",
      runtimes: "node,deno,bun",
    },
  },
);
const PEERS = Number(values.peers);
const SETTLE_MS = Number(values.settle) * 1000;
const cli = {
  node: ["node", join(ROOT, "npm/bin/echogate.mjs")],
  deno: [join(ROOT, "node_modules/.bin/deno"), "run", "-A", join(ROOT, "src/cli.ts")],
  bun: [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/cli.ts")],
  // Deno with --unstable-net: echogate's datagram sockets on Deno.listenDatagram instead of node:dgram.
  "deno-net": [join(ROOT, "node_modules/.bin/deno"), "run", "-A", "--unstable-net", join(ROOT, "src/cli.ts")],
};
const baseline = {
  node: ["node", join(ROOT, "bench/baseline/udp_node.mjs"), "udp"],
  deno: [
    join(ROOT, "node_modules/.bin/deno"),
    "run",
    "-A",
    "--unstable-net",
    join(ROOT, "bench/baseline/udp_deno.ts"),
    "udp",
  ],
  bun: [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "bench/baseline/udp_bun.ts"), "udp"],
};
baseline["deno-net"] = baseline.deno;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function start(command) {
  const child = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  while (!/listening on \S+:(\d+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`${command.join(" ")} exited`);
    await sleep(50);
  }
  return { child, port: Number(/listening on \S+:(\d+)/.exec(out)[1]) };
}

/** PEERS sockets, 100 at a time (more at once overflow the server's receive buffer), each sends one datagram and waits for its echo. */
async function visit(port) {
  let echoed = 0;
  for (let from = 0; from < PEERS; from += 100) {
    await Promise.all(Array.from({ length: Math.min(100, PEERS - from) }, () =>
      new Promise((resolve) => {
        const socket = dgram.createSocket("udp4");
        const done = () => (socket.close(), resolve());
        const timer = setTimeout(done, 2000);
        socket.on("message", () => (echoed++, clearTimeout(timer), done()));
        socket.send("hello", port, "127.0.0.1");
      })));
  }
  return echoed;
}

/** Idle size, then size after the peers, of a UDP server. */
async function peersCost(command) {
  const udp = await start(command);
  await sleep(SETTLE_MS);
  const idle = rssKiB(udp.child.pid);
  const echoed = await visit(udp.port);
  await sleep(SETTLE_MS);
  const after = rssKiB(udp.child.pid);
  udp.child.kill("SIGKILL");
  return { idle, after, perPeer: ((after - idle) / PEERS).toFixed(3), echoed };
}

console.log(`KiB resident; per peer: (after ${PEERS} peers - idle) / ${PEERS}`);
console.log("runtime  TCP idle  UDP idle  UDP after  per peer  echoed | baseline idle  after  per peer  echoed");
for (const runtime of values.runtimes.split(",")) {
  const tcp = await start([...cli[runtime], "echo", "serve", "--port", "0"]);
  await sleep(SETTLE_MS);
  const tcpIdle = rssKiB(tcp.child.pid);
  tcp.child.kill("SIGKILL");
  const e = await peersCost([...cli[runtime], "echo", "serve", "--udp", "--port", "0", "--no-udp-limits"]);
  const b = await peersCost(baseline[runtime]);
  console.log(
    [runtime, tcpIdle, e.idle, e.after, e.perPeer, e.echoed, "|", b.idle, b.after, b.perPeer, b.echoed].join("  "),
  );
}
