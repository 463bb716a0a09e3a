#!/usr/bin/env -S deno run -A
/**
 * The `echogate` executable: runs the CLI on whichever runtime loads it.
 *
 * ```sh
 * deno run -A src/cli.ts echo serve --port 0
 * bun src/cli.ts gate knock localhost --delay 0
 * ```
 *
 * @module
 */

import { loadAdapter } from "../adapters/mod.ts";
import { runCli } from "./cli/main.ts";

loadAdapter().then(async ({ host }) => host.exit(await runCli(host)));
