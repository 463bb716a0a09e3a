// The CLI host for runtimes with Node's `process` global (Node and Bun).

import { fstatSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import process from "node:process";
import type { CliHost } from "../src/cli/host.ts";
import { EXIT_FLUSH_MS, LineOutput, type WriteText } from "../src/cli/output.ts";
import type { Transport } from "../src/mod.ts";
import { fileDescriptorUsage, openFds } from "./_descriptors.ts";
import { checkOutputFile } from "./_output_file.ts";
import { lookupAddresses } from "./_lookup.ts";
import { readSmallFile } from "./_small_file.ts";
import { processWorkers, readStdin, sendToSupervisor } from "./_workers.ts";

export type { CliHost };

/**
 * How text goes to `stream`: written at once to a terminal or a file (as Node and Bun do it
 * synchronously there), and to a pipe or socket one write at a time, each awaited through its
 * callback, so a reader that does not read can hold at most one write's text in the runtime's own
 * buffer (its write() returns false and buffers everything, without limit).
 */
function writerFor(stream: NodeJS.WriteStream, fd: number): WriteText {
  // A closed reader (e.g. `| head`) must not crash the process with a stack trace.
  stream.on("error", () => {});
  let direct = stream.isTTY === true;
  try {
    direct ||= fstatSync(fd).isFile();
  } catch {
    // Unknown: treat it as a pipe.
  }
  if (direct) return (text) => void stream.write(text);
  return (text) =>
    new Promise<void>((resolve, reject) => void stream.write(text, (error) => (error ? reject(error) : resolve())));
}

/** Builds a {@linkcode CliHost} from Node's `process` and the given transport. */
export function processHost(transport: Transport): CliHost {
  const output = new LineOutput(writerFor(process.stdout, 1), writerFor(process.stderr, 2));
  return {
    transport,
    args: process.argv.slice(2),
    env: (name) => process.env[name],
    writeOut: output.out,
    writeErr: output.err,
    exit(code) {
      void output.close(EXIT_FLUSH_MS).then(() => process.exit(code));
    },
    onFatal(handler) {
      process.on("uncaughtException", handler);
      process.on("unhandledRejection", handler);
    },
    onSignal: (signal, handler) => void process.on(signal, handler),
    readTextFile: (path) => readFile(path, "utf8"),
    readSmallFile,
    lookupAddresses,
    fileDescriptors: fileDescriptorUsage,
    processFacts: () => {
      const { user, system } = process.cpuUsage();
      return { residentMemoryBytes: process.memoryUsage.rss(), cpuSeconds: (user + system) / 1e6, openFds: openFds() };
    },
    isTerminal: (stream) => process[stream].isTTY === true,
    onOutputDropped: (reporter) => output.onDropped(reporter),
    writeTextFile: (path, text) => writeFile(path, text, "utf8"),
    checkOutputFile,
    workers: processWorkers,
    readInput: readStdin,
    sendToSupervisor,
  };
}
