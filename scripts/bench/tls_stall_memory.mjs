// Resident memory and descriptors of an echogate TLS server while N connections stall in the handshake
// (--tls-handshake-timeout 4), then after the timeout. Node runs the built package (npm run build).
//
//   node scripts/bench/tls_stall_memory.mjs node|bun|deno N server.crt server.key [SERVER FLAGS...]
import { spawn } from "node:child_process";
import * as net from "node:net";
import { fdCount, rssKiB } from "../_proc.mjs";
const [runtime, nStr, cert, key, ...flags] = process.argv.slice(2);
const N = Number(nStr);

const ROOT = new URL("../../", import.meta.url).pathname;
const cmd = {
  node: ["node", ROOT + "npm/bin/echogate.mjs"],
  deno: [ROOT + "node_modules/.bin/deno", "run", "-A", ROOT + "src/cli.ts"],
  bun: [ROOT + "node_modules/.bin/bun", ROOT + "src/cli.ts"],
}[runtime];
const child = spawn(cmd[0], [
  ...cmd.slice(1),
  "echo",
  "serve",
  "--port",
  "0",
  "--tls-cert",
  cert,
  "--tls-key",
  key,
  "--tls-handshake-timeout",
  "4",
  ...flags,
], { stdio: ["ignore", "pipe", "inherit"] });
let out = "";
child.stdout.on("data", (c) => (out += c));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
while (!/listening on \S+:(\d+)/.test(out)) await sleep(50);
const port = Number(/listening on \S+:(\d+)/.exec(out)[1]);
const rss = () => Math.round(rssKiB(child.pid) / 1024);
const fds = () => fdCount(child.pid);
await sleep(1000);
const before = { rss: rss(), fds: fds() };
const socks = [];
for (let i = 0; i < N; i++) {
  const s = net.connect({ host: "127.0.0.1", port });
  s.on("error", () => {});
  socks.push(s);
  if (i % 200 === 199) await sleep(10);
}
await sleep(1500);
const stalled = { rss: rss(), fds: fds() };
await sleep(5000);
const after = { rss: rss(), fds: fds() };
const closedByServer = socks.filter((s) => s.destroyed || s.readableEnded).length;
console.log(
  JSON.stringify({
    runtime,
    N,
    before,
    stalled,
    afterTimeout: after,
    closedByServer,
    logLines: out.split("\n").filter((l) => /TLS handshake/.test(l)),
  }),
);
for (const s of socks) s.destroy();
child.kill("SIGKILL");
process.exit(0);
