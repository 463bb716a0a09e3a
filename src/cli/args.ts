// Command-line parsing without runtime APIs (Node's util.parseArgs is not available in the core).

import { UsageError } from "../errors.ts";

/** Which options a command takes: `"string"` options need a value, `"boolean"` ones take none. */
export type OptionSpec = Record<string, "string" | "boolean">;

/** Parsed arguments: positionals in order, options by name (last one wins). */
export interface ParsedArgs {
  positionals: string[];
  options: Record<string, string | boolean>;
}

/**
 * Parses `--name value`, `--name=value` and `--flag`; `--` ends the options. An option not in
 * `spec` is a {@linkcode UsageError}. `-h` and `-V` stand for `--help` and `--version`.
 */
export function parseArgs(args: readonly string[], spec: OptionSpec): ParsedArgs {
  const positionals: string[] = [];
  const options: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h" || arg === "-V") {
      options[arg === "-h" ? "help" : "version"] = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-" && !/^-\d/.test(arg)) throw new UsageError(`Unknown option "${arg}"`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined) throw new UsageError(`Unknown option "--${name}"`);
    if (kind === "boolean") {
      if (eq !== -1) throw new UsageError(`Option "--${name}" takes no value`);
      options[name] = true;
      continue;
    }
    if (eq !== -1) {
      options[name] = arg.slice(eq + 1);
    } else {
      const value = args[i + 1];
      if (value === undefined) throw new UsageError(`Option "--${name}" needs a value`);
      options[name] = value;
      i++;
    }
  }
  return { positionals, options };
}

/** Reads a port number (0 to 65535). */
export function parsePort(flag: string, value: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`Invalid value for "--${flag}": "${value}" is not a port number (0-65535)`);
  }
  return port;
}

/** Reads a non-negative number of seconds and returns milliseconds. */
export function parseSeconds(flag: string, value: string): number {
  const seconds = /^\d+(\.\d+)?$|^\.\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(seconds)) {
    throw new UsageError(`Invalid value for "--${flag}": "${value}" is not a non-negative number of seconds`);
  }
  return Math.round(seconds * 1000);
}

/** Reads a positive integer. */
export function parsePositiveInt(flag: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) {
    throw new UsageError(`Invalid value for "--${flag}": "${value}" is not a positive integer`);
  }
  return n;
}

/** Reads one of a fixed set of words. */
export function parseChoice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`Invalid value for "--${flag}": "${value}" is not one of ${choices.join(", ")}`);
  }
  return value as T;
}
