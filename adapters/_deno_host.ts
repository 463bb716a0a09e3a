// The CLI host for Deno, as _process_host.ts is for Node and Bun: arguments, environment,
// output, exit, signals, files and workers, on Deno's own API.

import type { CliHost, WorkerSpawner } from "../src/cli/host.ts";
import { EXIT_FLUSH_MS, LineOutput, type WriteText } from "../src/cli/output.ts";
import type { Transport } from "../src/mod.ts";
import { Deno } from "./_deno_api.ts";
import { checkOutputFile } from "./_output_file.ts";
import { lookupAddresses } from "./_lookup.ts";
import { cpuSecondsFromStat, softOpenFilesLimit } from "./_proc_limits.ts";
import type { ProcessFacts } from "../src/metrics/mod.ts";
import { readSmallFile } from "./_small_file.ts";
import { sendToSupervisor, spawnWorker } from "./_workers.ts";

const encoder = new TextEncoder();

/**
 * How text goes to standard output or error: written at once to a terminal or a file, as before
 * (writeSync never waits on a reader there), and to a pipe or socket with the async write, which
 * runs off the event loop: writeSync on a full pipe blocks the whole server until its reader reads.
 */
function writerFor(name: "stdout" | "stderr"): WriteText {
  const stream = Deno[name];
  let direct = stream.isTerminal();
  try {
    direct ||= Deno.statSync(`/proc/self/fd/${name === "stdout" ? 1 : 2}`).isFile;
  } catch {
    // Not Linux, or no permission: treat it as a pipe.
  }
  if (direct) {
    return (text) => {
      const bytes = encoder.encode(text);
      for (let written = 0; written < bytes.length;) written += stream.writeSync(bytes.subarray(written));
    };
  }
  return async (text) => {
    const bytes = encoder.encode(text);
    for (let written = 0; written < bytes.length;) written += await stream.write(bytes.subarray(written));
  };
}

async function* textOf(stream: ReadableStream<Uint8Array>): AsyncIterable<string> {
  const decoder = new TextDecoder();
  for await (const bytes of stream) yield decoder.decode(bytes, { stream: true });
}

// The permissions a worker is started with: those this process holds in full.
const PERMISSIONS = ["read", "write", "net", "env", "run", "sys", "ffi", "import"];

function permissionFlags(): string[] {
  const granted = PERMISSIONS.filter((name) => {
    try {
      return Deno.permissions.querySync({ name }).state === "granted";
    } catch {
      return false; // a permission this Deno does not know
    }
  });
  return granted.length === PERMISSIONS.length ? ["--allow-all"] : granted.map((name) => `--allow-${name}`);
}

/**
 * Deno's workers: this script again under `Deno.execPath()` with the permissions this process
 * holds and `--unstable-net`, which `Deno.listen({ reusePort: true })` needs. Started through
 * Deno's `node:child_process`, as Deno.Command cannot open the IPC channel a worker's messages take.
 */
const denoWorkers: WorkerSpawner = {
  sharedSocket: false,
  cores: () => (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1,
  spawn: (args, env) =>
    spawnWorker(Deno.execPath(), ["run", ...permissionFlags(), "--unstable-net", Deno.mainModule, ...args], env),
};

/**
 * Builds Deno's {@linkcode CliHost} around the given transport. Its output starts at once: call it
 * once per process.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "../src/cli/main.ts";
 * import { denoHost } from "./_deno_host.ts";
 * import { transport } from "./deno.ts";
 *
 * const host = denoHost(transport);
 * host.exit(await runCli(host));
 * ```
 */
export function denoHost(transport: Transport): CliHost {
  const output = new LineOutput(writerFor("stdout"), writerFor("stderr"));
  return {
    transport,
    get args() {
      return Deno.args;
    },
    env: (name) => Deno.env.get(name),
    writeOut: output.out,
    writeErr: output.err,
    exit(code) {
      void output.close(EXIT_FLUSH_MS).then(() => Deno.exit(code));
    },
    onFatal(handler) {
      // preventDefault keeps Deno from printing the error and exiting at once.
      globalThis.addEventListener("error", (event) => {
        event.preventDefault();
        handler(event.error);
      });
      globalThis.addEventListener("unhandledrejection", (event) => {
        event.preventDefault();
        handler(event.reason);
      });
    },
    onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
    readTextFile: (path) => Deno.readTextFile(path),
    readSmallFile,
    lookupAddresses,
    fileDescriptors() {
      try {
        const limit = softOpenFilesLimit(Deno.readTextFileSync("/proc/self/limits"));
        return limit === undefined ? undefined : { limit, open: [...Deno.readDirSync("/proc/self/fd")].length };
      } catch {
        return undefined; // not Linux, or no read permission
      }
    },
    processFacts() {
      // Deno has no CPU-time API: Linux /proc tells it (and the descriptors).
      const facts: ProcessFacts = { residentMemoryBytes: Deno.memoryUsage().rss };
      try {
        facts.cpuSeconds = cpuSecondsFromStat(Deno.readTextFileSync("/proc/self/stat"));
        facts.openFds = [...Deno.readDirSync("/proc/self/fd")].length;
      } catch {
        // not Linux, or no read permission
      }
      return facts;
    },
    isTerminal: (stream) => Deno[stream].isTerminal(),
    onOutputDropped: (reporter) => output.onDropped(reporter),
    writeTextFile: (path, text) => Deno.writeTextFile(path, text),
    checkOutputFile,
    workers: denoWorkers,
    readInput: () => textOf(Deno.stdin.readable),
    sendToSupervisor,
  };
}
