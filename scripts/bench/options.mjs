// `npm run bench`'s options: parsed once from the command line, shared by every part of the run.

import { execFileSync } from "node:child_process";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseCommandLine, usageError as usageErrorOf } from "../_args.mjs";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "node_modules/.bin");
export const DENO = join(BIN, "deno");
export const BUN = join(BIN, "bun");

export const USAGE = `Usage: node scripts/bench.mjs [options]

Options:
  --runtimes LIST      node,deno,bun (default all three)
  --scenarios LIST     stream,pingpong,idle,connect,connect-proxy,connect-proxy-cpu,tls-stream,
                       tls-pingpong,tls-connect,
                       tls-stream-close,tls-pingpong-close,tls-connect-close,tls-stream-close-nodetls,
                       tls-pingpong-close-nodetls,tls-connect-close-nodetls,udp,faults-stream,
                       faults-pingpong,faults-stream-socat,faults-pingpong-socat
                       (default all); connect-proxy compares echogate's gate with and without
                       --proxy-protocol, connect-proxy-cpu the server CPU per connection of the
                       same two at a fixed rate both hold (the header's cost where the generator
                       sets the pace at saturation); the tls- ones are the same over TLS (a throwaway EC P-256
                       certificate made with openssl), tls-connect a full handshake per knock; on Deno
                       they run echogate with --tls-stalled-handshakes hold (Deno.listenTls, as the
                       baseline) and the -close ones (Deno only) with its default; the -close-nodetls
                       ones (Deno only) the same against a node:tls baseline
                       (bench/baseline/node.mjs run on Deno); udp a UDP pingpong;
                       faults-stream,faults-pingpong one connection through \`echogate faults\` (no
                       toxics) to a raw echo upstream, against a forwarder on the runtime's own
                       sockets (bench/baseline/forward_*), and the -socat ones against socat
  --seconds S          length of one measurement (default 2.5)
  --rounds N           rounds per cell, alternating the order (default 4)
  --idle-conns N       connections held in the idle scenario (default 5000)
  --idle-settle S      seconds the idle scenario's server stays quiet after its warm-up, before the
                       first reading (default 6)
  --generator RT       runtime that runs the load generator: bun, node or deno (default bun)
  --check-generator    first measure the generator against a C epoll server (needs cc)
  --no-pin             do not pin servers and generator to separate CPUs
  --skip-build         do not run the npm build first (node runs echogate from npm/)
  --out DIR            where results.json and results.md go (default bench)
  --echogate DIR       run echogate's servers from another checkout (built, for node), e.g. to
                       measure a change; the baselines and the generator stay this checkout's`;

export const options = parseCommandLine("bench", USAGE, {
  strings: {
    runtimes: "node,deno,bun",
    scenarios: "stream,pingpong,idle,connect,connect-proxy,connect-proxy-cpu,tls-stream,tls-pingpong,tls-connect," +
      "tls-stream-close,tls-pingpong-close,tls-connect-close,tls-stream-close-nodetls," +
      "tls-pingpong-close-nodetls,tls-connect-close-nodetls,udp,faults-stream,faults-pingpong,faults-stream-socat," +
      "faults-pingpong-socat",
    seconds: "2.5",
    rounds: "4",
    "idle-conns": "5000",
    "idle-settle": "6",
    generator: "bun",
    out: "bench",
    echogate: undefined,
  },
  options: {
    "check-generator": { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    "skip-build": { type: "boolean", default: false },
  },
}).values;

export const RUNTIMES = list(options.runtimes, ["node", "deno", "bun"], "--runtimes");
export const SCENARIO_NAMES = list(
  options.scenarios,
  [
    "stream",
    "pingpong",
    "idle",
    "connect",
    "connect-proxy",
    "connect-proxy-cpu",
    "tls-stream",
    "tls-pingpong",
    "tls-connect",
    "tls-stream-close",
    "tls-pingpong-close",
    "tls-connect-close",
    "tls-stream-close-nodetls",
    "tls-pingpong-close-nodetls",
    "tls-connect-close-nodetls",
    "udp",
    "faults-stream",
    "faults-pingpong",
    "faults-stream-socat",
    "faults-pingpong-socat",
  ],
  "--scenarios",
);
export const SECONDS = positive(options.seconds, "--seconds");
export const ROUNDS = Math.round(positive(options.rounds, "--rounds"));
export const IDLE_CONNS = Math.round(positive(options["idle-conns"], "--idle-conns"));
export const IDLE_SETTLE_SECONDS = positive(options["idle-settle"], "--idle-settle");
export const GENERATOR = list(options.generator, ["node", "deno", "bun"], "--generator")[0];
export const OUT = resolve(ROOT, options.out);
export const WARMUP_SECONDS = Math.min(0.5, SECONDS);
// Descriptors for the idle scenario's server and holder (hard limit permitting).
export const FD_LIMIT = IDLE_CONNS + 1000;
if (SCENARIO_NAMES.includes("idle")) {
  // Said up front: past the hard limit, `ulimit -n` fails quietly and the holder dies midway with EMFILE.
  const hard = execFileSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim();
  if (hard !== "unlimited" && Number(hard) < FD_LIMIT) {
    console.error(
      `bench: --idle-conns ${IDLE_CONNS} needs ${FD_LIMIT} descriptors per process; the hard limit here is ${hard}`,
    );
    process.exit(2);
  }
}

export function list(value, allowed, flag) {
  const items = value.split(",").map((s) => s.trim()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item)) usageError(`${flag}: "${item}" is not one of ${allowed.join(", ")}`);
  }
  if (items.length === 0) usageError(`${flag}: empty`);
  return items;
}
export function positive(value, flag) {
  const n = Number(value);
  if (!(n > 0)) usageError(`${flag}: "${value}" is not a positive number`);
  return n;
}
export function usageError(message) {
  usageErrorOf("bench", USAGE, message);
}
