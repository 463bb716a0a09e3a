// Importing the package has no side effects ("sideEffects": false in the npm package): loading an
// adapter adds no listener to the process or its output streams; only the CLI host does, when made.

import { expect, test } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RUNTIME } from "./_net.ts";
import { ROOT, runCommand, scriptCommand } from "./_child.ts";
import { useCleanup } from "./_utils.ts";

const resources = useCleanup();

test("loadAdapter() and the adapter modules add no process or stream listeners until the host is read", async () => {
  const dir = mkdtempSync(join(tmpdir(), "echogate-imports-"));
  resources.add({ close: () => rmSync(dir, { recursive: true, force: true }) });
  // Node runs the npm build (as the CLI tests do); Deno and Bun run the sources.
  const from = RUNTIME === "node" ? `${ROOT}npm/esm/` : ROOT;
  const ext = RUNTIME === "node" ? "js" : "ts";
  const script = `${dir}/imports.mjs`;
  writeFileSync(
    script,
    `import process from "node:process";
const listeners = () => [
  process.stdout.listenerCount("error"),
  process.stderr.listenerCount("error"),
  process.listenerCount("uncaughtException"),
  process.listenerCount("unhandledRejection"),
].join(",");
const before = listeners();
const { loadAdapter } = await import("${from}adapters/mod.${ext}");
await import("${from}adapters/${RUNTIME}.${ext}");
const adapter = await loadAdapter();
const loaded = listeners();
adapter.host.onFatal(() => {});
console.log(JSON.stringify({ before, loaded, hostMade: listeners() !== loaded || "${RUNTIME}" === "deno" }));
`,
  );
  const { code, stdout, stderr } = await runCommand([...scriptCommand(RUNTIME), script]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const { before, loaded, hostMade } = JSON.parse(stdout);
  expect(loaded).toBe(before);
  expect(hostMade).toBe(true);
});
