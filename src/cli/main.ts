/**
 * The `echogate` command line, written against a {@linkcode CliHost} so it runs the same on
 * every runtime and can be tested without spawning the CLI.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { errorMessage } from "../log.ts";
import { VERSION } from "../version.ts";
import { type OptionSpec, parseArgs } from "./args.ts";
import { benchCommand } from "./bench_command.ts";
import type { Command } from "./command.ts";
import { echoSendCommand, echoServeCommand } from "./echo_commands.ts";
import { gateKnockCommand, gateServeCommand } from "./gate_commands.ts";
import { faultsCommand } from "./faults_command.ts";
import { demoCommand } from "./demo_command.ts";
import type { CliHost } from "./host.ts";

/** Every command, in the order `--help` lists them. */
const COMMANDS: readonly Command[] = [
  echoServeCommand,
  echoSendCommand,
  gateServeCommand,
  gateKnockCommand,
  benchCommand,
  faultsCommand,
  demoCommand,
];

const COMMON: OptionSpec = { help: "boolean", version: "boolean" };

function overview(commands: readonly Command[]): string {
  return `Usage:\n${commands.map((c) => "  " + c.usage.replaceAll("\n", "\n  ")).join("\n")}`;
}

const HELP = `echogate ${VERSION}: the seed's echo and gate protocols, on Node, Deno and Bun

${overview(COMMANDS)}

Options:
  -h, --help       Show help for the command
  -V, --version    Show the version`;

/**
 * Runs the `echogate` command line and resolves with the exit code. Servers resolve once a
 * SIGINT or SIGTERM has closed them (a second signal exits at once).
 *
 * @param host The runtime's arguments, output, signals and transport.
 * @returns 0 on success, 1 on failure, 2 on a usage error.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./main.ts";
 * import { createHost } from "../../adapters/node.ts";
 *
 * const host = createHost();
 * host.exit(await runCli(host));
 * ```
 */
export async function runCli(host: CliHost): Promise<number> {
  exitOnFatal(host);
  try {
    return await dispatch(host);
  } catch (error) {
    host.writeErr(`echogate: ${errorMessage(error)}`);
    if (error instanceof UsageError) {
      host.writeErr("Run 'echogate --help' for usage.");
      return 2;
    }
    return 1;
  }
}

async function dispatch(host: CliHost): Promise<number> {
  const args = host.args;
  const words: string[] = [];
  for (const arg of args) {
    if (arg.startsWith("-") || words.length === 2) break;
    words.push(arg);
  }
  // The longest command name the leading words spell: "echo serve", or a one-word command.
  const command = COMMANDS.find((c) => c.name === words.join(" ")) ??
    COMMANDS.find((c) => c.name === words[0]);
  if (!command) {
    // A group ("echo", "gate") or the top level: only --help and --version apply here.
    const group = words[0];
    const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
    if (group !== undefined && members.length === 0) throw new UsageError(`Unknown command "${group}"`);
    if (words.length === 2) throw new UsageError(`Unknown command "${words.join(" ")}"`);
    const { options } = parseArgs(args.slice(words.length), COMMON);
    if (options.version) {
      host.writeOut(VERSION);
      return 0;
    }
    if (options.help) {
      host.writeOut(group === undefined ? HELP : overview(members));
      return 0;
    }
    throw new UsageError(group ? `Missing command after "${group}"` : "Missing command");
  }
  const depth = command.name.split(" ").length;
  const parsed = parseArgs(args.slice(depth), { ...COMMON, ...command.options });
  if (parsed.options.version) {
    host.writeOut(VERSION);
    return 0;
  }
  if (parsed.options.help) {
    host.writeOut(command.help);
    return 0;
  }
  return await command.run(host, parsed.positionals, parsed.options);
}

/** The exit code after an error nothing caught (EX_SOFTWARE, sysexits.h). */
export const FATAL_EXIT_CODE = 70;

/**
 * Makes an error nothing caught end the process the way the CLI's own errors do: one line on
 * standard error, what is queued for output flushed (bounded, see {@linkcode CliHost.exit}), exit
 * code {@linkcode FATAL_EXIT_CODE}. The runtime's default would print a stack trace and drop the
 * queued lines. A second error while exiting changes nothing. {@linkcode runCli} calls it.
 *
 * @param host The runtime's host; without `onFatal` nothing changes.
 *
 * @example
 * ```ts ignore
 * import { exitOnFatal } from "./main.ts";
 * import { createHost } from "../../adapters/node.ts";
 *
 * exitOnFatal(createHost());
 * setTimeout(() => { throw new Error("boom"); }); // "echogate: fatal: boom", exit code 70
 * ```
 */
export function exitOnFatal(host: CliHost): void {
  let exiting = false;
  host.onFatal?.((error) => {
    if (exiting) return;
    exiting = true;
    host.writeErr(`echogate: fatal: ${errorMessage(error)}`);
    host.exit(FATAL_EXIT_CODE);
  });
}
