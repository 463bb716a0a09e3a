// Each flag is written once, in the table of its group (listen, TLS, PROXY...); a command's usage
// lines, --help text and parser spec are all made from the tables it lists.

import type { OptionSpec } from "./args.ts";
import type { Command } from "./command.ts";

/**
 * One command-line flag, as its group's table defines it.
 *
 * @example
 * ```ts
 * import type { Flag } from "./flags.ts";
 *
 * const port: Flag = { name: "port", value: "PORT", usage: "50007", help: "Port to bind (default 50007)" };
 * ```
 */
export interface Flag {
  /** The name without its dashes: `"port"`. */
  readonly name: string;
  /** The placeholder of its value in --help (`"PORT"`); a flag without one is a switch and takes no value. */
  readonly value?: string;
  /** The value as the usage lines show it, when not `value`: the default (`"50007"`) or the choices (`"v1|v2"`). */
  readonly usage?: string;
  /** Its --help text; further lines continue under the first. Without it, no row: another row tells of it. */
  readonly help?: string;
}

/** Where the text of a --help row begins: after `  --name VALUE` and at least one space. */
const HELP_COLUMN = 23;

/** Where the usage lines after a command's first one begin (past `echogate echo serve `). */
const USAGE_INDENT = 20;

/**
 * A --help line that continues the row above it (a note on a whole group, say).
 *
 * @example
 * ```ts
 * import { continued } from "./flags.ts";
 *
 * continued("SIGHUP re-reads the certificate"); // 23 spaces, then the text
 * ```
 */
export function continued(text: string): string {
  return " ".repeat(HELP_COLUMN) + text;
}

/** What a command is made from; see {@linkcode defineCommand}. */
export interface CommandDefinition {
  /** The words that name it: `"echo serve"`. */
  name: string;
  /** What follows the name on the --help's first line: `"[HOST] [options]"`. */
  synopsis: string;
  /** The --help text between the first line and `Options:`. */
  about: string;
  /**
   * The usage lines after `echogate <name>`, each flag written `{name}` (it becomes `--name VALUE`);
   * every flag the --help shows must appear.
   */
  usage: readonly string[];
  /** Its flags in --help order, from its groups' tables; a string is a line of its own. */
  flags: readonly (Flag | string)[];
  /** Flags it also takes that have neither row nor usage of their own (another flag's row tells of them). */
  alsoAccepts?: readonly Flag[];
  /** The --help text after the rows. */
  footer?: string;
  /** Runs it and resolves with the exit code. */
  run: Command["run"];
}

/**
 * Makes a {@linkcode Command}: its usage lines, --help text and parser spec all from `definition.flags`.
 *
 * @example
 * ```ts ignore
 * import { defineCommand } from "./flags.ts";
 *
 * const hello = defineCommand({
 *   name: "hello",
 *   synopsis: "[options]",
 *   about: "Says hello.",
 *   usage: ["[{loud}]"],
 *   flags: [{ name: "loud", help: "Say it loudly" }],
 *   run: async (host, _positionals, options) => (host.writeOut(options.loud ? "HELLO" : "hello"), 0),
 * });
 * ```
 */
export function defineCommand(definition: CommandDefinition): Command {
  const flags = definition.flags.filter((item): item is Flag => typeof item !== "string");
  const options: OptionSpec = {};
  for (const flag of [...flags, ...definition.alsoAccepts ?? []]) {
    const kind = flag.value === undefined ? "boolean" : "string";
    if (options[flag.name] !== undefined && options[flag.name] !== kind) {
      throw new Error(`${definition.name}: "--${flag.name}" is both a switch and takes a value`);
    }
    options[flag.name] = kind;
  }
  const usage = usageLines(definition, flags);
  for (const flag of flags) {
    if (!new RegExp(`--${flag.name}(?![\\w-])`).test(usage)) {
      throw new Error(`${definition.name}: "--${flag.name}" is missing from the usage lines`);
    }
  }
  const rows = definition.flags.map((item) => typeof item === "string" ? item : helpRow(item)).filter((row) =>
    row !== undefined
  );
  return {
    name: definition.name,
    usage,
    help: `Usage: echogate ${definition.name} ${definition.synopsis}\n\n${definition.about}\n\nOptions:\n${
      rows.join("\n")
    }${definition.footer === undefined ? "" : `\n\n${definition.footer}`}`,
    options,
    run: definition.run,
  };
}

/** The usage lines, `{name}` made `--name VALUE`; the commands of a group ("echo serve", "echo send") line up. */
function usageLines(definition: CommandDefinition, flags: readonly Flag[]): string {
  const byName = new Map(flags.map((flag) => [flag.name, flag]));
  const head = `echogate ${definition.name} `;
  const lines = definition.usage.map((line) =>
    line.replace(/\{([a-z-]+)\}/g, (_, name: string) => {
      const flag = byName.get(name);
      if (flag === undefined) throw new Error(`${definition.name}: the usage names "--${name}", not one of its flags`);
      const value = flag.usage ?? flag.value;
      return value === undefined ? `--${name}` : `--${name} ${value}`;
    })
  );
  const first = definition.name.includes(" ") ? head.padEnd(USAGE_INDENT) : head;
  return first + lines.join("\n" + " ".repeat(USAGE_INDENT));
}

/** `  --name VALUE` and the help text from {@linkcode HELP_COLUMN}, or undefined for a flag without help. */
function helpRow(flag: Flag): string | undefined {
  if (flag.help === undefined) return undefined;
  const head = `  --${flag.name}${flag.value === undefined ? "" : ` ${flag.value}`}`;
  const [first, ...rest] = flag.help.split("\n");
  const lead = head.length < HELP_COLUMN ? head.padEnd(HELP_COLUMN) : `${head}  `;
  return [lead + first, ...rest.map(continued)].join("\n");
}
