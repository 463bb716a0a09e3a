/**
 * echogate's version; `scripts/build_npm.ts` and a test check it against deno.json.
 *
 * @example
 * ```ts
 * import { VERSION } from "./mod.ts";
 *
 * console.log(VERSION);
 * ```
 */
export const VERSION = "0.1.0";
