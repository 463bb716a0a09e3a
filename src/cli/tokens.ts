// Where `gate serve` and `gate knock` take their token from, and the checks on a token file.

import { UsageError } from "../errors.ts";
import { DEFAULT_TOKEN, MAX_TOKEN_BYTES } from "../gate/mod.ts";
import { errorMessage } from "../log.ts";
import { type Options, str } from "./command.ts";
import type { CliHost } from "./host.ts";

/** The largest token file read: room for dozens of 1024-byte tokens, and no more. */
const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * Where a token came from; the order is the precedence, first found wins.
 *
 * @example
 * ```ts ignore
 * const source: TokenSource = "env ECHOGATE_TOKEN";
 * ```
 */
export type TokenSource = "--token-file" | "env ECHOGATE_TOKEN" | "--token" | "default";

/**
 * The tokens chosen, and from where.
 *
 * @example
 * ```ts ignore
 * const choice: TokenChoice = { tokens: ["1"], source: "default" };
 * ```
 */
export interface TokenChoice {
  tokens: string[];
  source: TokenSource;
}

/**
 * Token sources, first found wins: --token-file, env ECHOGATE_TOKEN, --token, the seed's "1".
 * When more than one is set, a warning names them and the one that wins. `quiet` (a worker,
 * whose supervisor has warned once) drops every warning; `commandLineWarning` warns that a
 * --token in use is visible in ps (the server's choice; a one-shot client keeps quiet).
 *
 * @example
 * ```ts ignore
 * const { tokens, source } = await chooseTokens(host, options, { commandLineWarning: true });
 * ```
 */
export async function chooseTokens(
  host: CliHost,
  options: Options,
  { quiet = false, commandLineWarning = false }: { quiet?: boolean; commandLineWarning?: boolean } = {},
): Promise<TokenChoice> {
  const file = str(options, "token-file");
  const env = host.env("ECHOGATE_TOKEN");
  const token = str(options, "token");
  const given: TokenSource[] = [];
  if (file !== undefined) given.push("--token-file");
  if (env !== undefined && env !== "") given.push("env ECHOGATE_TOKEN");
  if (token !== undefined) given.push("--token");
  if (token === "") throw new UsageError(`Invalid value for "--token": the token is empty`);
  const source = given[0] ?? "default";
  const warn = (line: string) => !quiet && host.writeErr(`echogate: warning: ${line}`);
  if (given.length > 1) {
    const named = given.length === 2 ? `${given[0]} and ${given[1]} are both set` : `${given.join(", ")} are all set`;
    warn(`${named}; using ${source} (the first of --token-file, env ECHOGATE_TOKEN, --token)`);
  }
  switch (source) {
    case "--token-file":
      return { tokens: await readTokenFile(host, file!, warn), source };
    case "env ECHOGATE_TOKEN":
      return { tokens: fitting([env!], "env ECHOGATE_TOKEN"), source };
    case "--token":
      fitting([token!], `"--token"`);
      if (commandLineWarning) {
        warn(
          "the token was given on the command line, where other users can read it (ps); " +
            "prefer --token-file or env ECHOGATE_TOKEN",
        );
      }
      return { tokens: [token!], source };
    case "default":
      return { tokens: [DEFAULT_TOKEN], source };
  }
}

/** Each non-empty line of the file is a token (a trailing \r dropped). */
async function readTokenFile(host: CliHost, file: string, warn: (line: string) => void): Promise<string[]> {
  const flag = `Invalid value for "--token-file"`;
  let text: string;
  try {
    if (host.readSmallFile) {
      const read = await host.readSmallFile(file, MAX_TOKEN_FILE_BYTES);
      if (read.kind === "not-regular") throw new UsageError(`${flag}: "${file}" is ${read.type}, not a regular file`);
      if (read.kind === "too-big") throw tooBig(flag, file);
      // As OpenSSH does for a private key: a secret others may read is worth a word.
      if ((read.mode & 0o077) !== 0) {
        warn(
          `"${file}" is open to other users (mode ${read.mode.toString(8).padStart(4, "0")}); ` +
            `only its owner should read it: chmod 600 "${file}"`,
        );
      }
      text = read.text;
    } else {
      text = await host.readTextFile(file);
      if (new TextEncoder().encode(text).length > MAX_TOKEN_FILE_BYTES) throw tooBig(flag, file);
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${flag}: cannot read "${file}": ${errorMessage(error)}`);
  }
  const tokens = text.split("\n").map((line) => line.replace(/\r$/, "")).filter((line) => line !== "");
  if (tokens.length === 0) throw new UsageError(`${flag}: "${file}" holds no token`);
  return fitting(tokens, `"--token-file": a line of "${file}"`);
}

function tooBig(flag: string, file: string): UsageError {
  return new UsageError(`${flag}: "${file}" is over ${MAX_TOKEN_FILE_BYTES / 1024} KiB, too big for a token file`);
}

/** The gate reads one chunk of at most 1024 bytes: a longer token could never be sent whole. */
function fitting(tokens: string[], source: string): string[] {
  const encoder = new TextEncoder();
  for (const token of tokens) {
    const length = encoder.encode(token).length;
    if (length > MAX_TOKEN_BYTES) {
      throw new UsageError(
        `Invalid value for ${source}: the token is ${length} bytes, over the gate's ${MAX_TOKEN_BYTES}-byte chunk, so it could never match`,
      );
    }
  }
  return tokens;
}
