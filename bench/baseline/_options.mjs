// The flags every baseline server takes, parsed the same way on node, deno and bun (plain JS, so
// node.mjs can import it too).

import { parseArgs } from "node:util";

/**
 * Parses `PROTOCOL [--mode raw|chunk] [--prefix P] [--token T] [--host H] [--port N]
 * [--tls-cert F --tls-key F] [--upstream HOST:PORT]` (with the two TLS files, the server speaks
 * TLS; `--upstream` is where the pass-through forwarders of `forward_*` connect).
 *
 * @param {string[]} args The command-line arguments after the script.
 * @returns {{ protocol: string, values: { mode: string, prefix: string, token: string, host: string, port: string, "tls-cert"?: string, "tls-key"?: string, upstream: string } }}
 */
export function baselineOptions(args) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      mode: { type: "string", default: "chunk" },
      prefix: { type: "string", default: "Echo=>" },
      token: { type: "string", default: "1" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      upstream: { type: "string", default: "127.0.0.1:50007" }, // forward: where to
    },
  });
  return { protocol: positionals[0] ?? "echo", values };
}
