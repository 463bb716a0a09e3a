// The soak's servers: echogate's CLI in child processes, each with --json, and what /proc says of them.

import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { rssKiB, rssPartsKiB } from "../_proc.mjs";
import { INSPECTOR_NOTICE, inspectorUrl } from "../_inspector.mjs";
import { round, sleep } from "./analysis.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const bin = `${root}node_modules/.bin`;

/** The CLI's command line; `flags` go to the runtime (e.g. `--v8-flags=…`, `--inspect=…`). */
export function cliCommand(runtime, flags, baseline = false) {
  if (baseline) return baselineCommand(runtime, flags);
  switch (runtime) {
    case "node":
      return ["node", ...flags, `${root}npm/bin/echogate.mjs`];
    case "deno":
      return [`${bin}/deno`, "run", ...flags, "-A", `${root}src/cli.ts`];
    case "bun":
      return [`${bin}/bun`, ...flags, `${root}src/cli.ts`];
  }
}

/** The plain server on the runtime's own API that `npm run bench` compares echogate with. */
function baselineCommand(runtime, flags) {
  switch (runtime) {
    case "node":
      return ["node", ...flags, `${root}bench/baseline/node.mjs`];
    case "deno":
      return [`${bin}/deno`, "run", ...flags, "-A", `${root}bench/baseline/deno.ts`];
    case "bun":
      return [`${bin}/bun`, ...flags, `${root}bench/baseline/bun.ts`];
  }
}

// --- servers ---

const EXPECTED_SERVER_ERROR = /ECONNRESET|EPIPE|reset by peer|Broken pipe|Connection reset|Socket is closed/i;

/**
 * Starts one CLI server with --json, counting its events and keeping unexpected errors; with
 * `baseline`, the plain server of bench/baseline/ instead (it logs nothing but where it listens).
 * With `output` (a directory), lines on standard output that are not events go to `output/NAME.txt`
 * instead of counting as unexpected: what `--v8-flags=--trace-gc-nvp` prints, for one.
 */
export function startServer(name, args, { runtime, flags, token, baseline = false, output }) {
  const [command, ...rest] = cliCommand(runtime, flags, baseline);
  const child = spawn(command, [...rest, ...args, ...(baseline ? [] : ["--json"])], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", ECHOGATE_TOKEN: token },
  });
  const server = {
    name,
    child,
    port: 0,
    inspector: undefined, // the inspector's ws:// URL with --heap
    events: {},
    lines: 0,
    unexpected: [],
    expectedErrors: 0,
    exited: new Promise((resolve) => child.on("close", (code, signal) => resolve(code ?? signal))),
  };
  const onEvent = (line) => {
    if (line === "") return;
    server.lines++;
    let event;
    const listening = baseline ? / listening on \S+:(\d+)$/.exec(line) : null;
    if (listening) return void (server.port = Number(listening[1]));
    try {
      event = JSON.parse(line);
    } catch {
      if (output !== undefined) return void appendFileSync(`${output}/${name.replace(/\W+/g, "-")}.txt`, `${line}\n`);
      server.unexpected.push(`not a JSON line: ${line.slice(0, 200)}`);
      return;
    }
    server.events[event.event] = (server.events[event.event] ?? 0) + 1;
    if (event.event === "listening") server.port = Number(/:(\d+)$/.exec(event.address)?.[1]);
    if (event.event === "error" || event.event === "accept-error" || event.event === "log-dropped") {
      if (event.event === "error" && EXPECTED_SERVER_ERROR.test(event.message)) server.expectedErrors++;
      else server.unexpected.push(line.slice(0, 300));
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop();
      for (const line of lines) {
        if (stream === child.stderr && !line.startsWith("{")) {
          server.inspector ??= inspectorUrl(line);
          // Warnings are fine; anything else on stderr that is not an event is not.
          if (line !== "" && !/^echogate: warning:/.test(line) && !INSPECTOR_NOTICE.test(line)) {
            server.unexpected.push(line.slice(0, 300));
          }
        } else onEvent(line);
      }
    });
  }
  return server;
}

export async function waitListening(server, heap) {
  const end = Date.now() + 30_000;
  while (server.port === 0 || (heap && server.inspector === undefined)) {
    if (server.child.exitCode !== null || Date.now() > end) throw new Error(`${server.name} did not start`);
    await sleep(20);
  }
}

export const rssMiB = (pid) => rssKiB(pid) / 1024;

export const MALLOC_TRIM =
  `Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } }).symbols.malloc_trim(0n)`;

/** RSS split into anonymous memory (heaps, buffers) and file-backed pages (the binary), in MiB. */
export function rssParts(pid) {
  const { anon, file } = rssPartsKiB(pid);
  return { anon: round(anon / 1024, 1), file: round(file / 1024, 1) };
}
