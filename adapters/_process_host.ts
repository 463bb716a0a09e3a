// The CLI host for runtimes with Node's `process` global (Node and Bun).

import { readFile, writeFile } from "node:fs/promises";
import process from "node:process";
import type { CliHost } from "../src/cli/host.ts";
import { LineOutput } from "../src/cli/output.ts";
import type { Transport } from "../src/mod.ts";
import { fileDescriptorUsage } from "./_descriptors.ts";
import { processWorkers, readStdin } from "./_workers.ts";

export type { CliHost };

/** Builds a {@linkcode CliHost} from Node's `process` and the given transport. */
export function processHost(transport: Transport): CliHost {
  let guarded = false;
  const output = new LineOutput((text) => {
    // A closed stdout (e.g. `| head`) must not crash the process with a stack trace.
    if (!guarded) process.stdout.on("error", () => {});
    guarded = true;
    process.stdout.write(text);
  }, (text) => void process.stderr.write(text));
  return {
    transport,
    args: process.argv.slice(2),
    env: (name) => process.env[name],
    writeOut: output.out,
    writeErr: output.err,
    exit(code) {
      output.flush();
      process.exit(code);
    },
    onSignal: (signal, handler) => void process.on(signal, handler),
    readTextFile: (path) => readFile(path, "utf8"),
    fileDescriptors: fileDescriptorUsage,
    isTerminal: (stream) => process[stream].isTTY === true,
    writeTextFile: (path, text) => writeFile(path, text, "utf8"),
    workers: processWorkers,
    readInput: readStdin,
  };
}
