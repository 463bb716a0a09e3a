// The command line of every script here, read one way: node:util's parseArgs (on Node, Deno and
// Bun alike), with -h/--help, and a bad flag answered by one line and the usage (exit 2), not a
// stack trace.

import process from "node:process";
import { parseArgs } from "node:util";

/**
 * Parses the script's arguments with `config`: parseArgs' own (options, allowPositionals ...), plus
 * `strings`, the string flags as `{ name: default }` (undefined: no default).
 * --help prints `usage` and exits 0; an unknown or malformed flag prints "NAME: why" and the usage
 * and exits 2. Returns parseArgs' { values, positionals }.
 */
export function parseCommandLine(name, usage, { strings = {}, ...config }) {
  const options = { ...stringFlags(strings), ...config.options, help: { type: "boolean", short: "h", default: false } };
  let parsed;
  try {
    parsed = parseArgs({ ...config, args: joinValues(process.argv.slice(2), options), options });
  } catch (error) {
    usageError(name, usage, error.message);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed;
}

/**
 * `--name value` as `--name=value` for the string options: the word after such a flag is its value
 * even when it starts with a dash (`--server-flags "--v8-flags=…"`), which parseArgs alone refuses.
 */
function joinValues(args, options) {
  const joined = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    if (args[i] === "--") return [...joined, ...args.slice(i)];
    if (options[name]?.type === "string" && i + 1 < args.length) joined.push(`${args[i]}=${args[++i]}`);
    else joined.push(args[i]);
  }
  return joined;
}

/** Says what is wrong with the command line, then the usage, and exits 2. */
export function usageError(name, usage, message) {
  console.error(`${name}: ${message}\n\n${usage}`);
  process.exit(2);
}

/** parseArgs specs for string flags from `{ name: default }` (a default of undefined: none). */
function stringFlags(defaults) {
  return Object.fromEntries(
    Object.entries(defaults).map((
      [name, value],
    ) => [name, { type: "string", ...(value !== undefined && { default: value }) }]),
  );
}
