// Moves source files to new paths and rewrites every reference to them, for issue 26's folders by concern.
// Idempotent: a second run finds every file in place and every reference already rewritten, and changes nothing.
//
//   node scripts/_restructure.mjs                 the mapping below (MAPPING)
//   node scripts/_restructure.mjs map.json        a mapping of your own: {"old/path.ts": "new/path.ts", "dead.ts": null}
//   node scripts/_restructure.mjs --dry-run       say what would move and which files would change, touch nothing
//
// For each entry: `git mv old new` (null: `git rm old`, refused while anything imports it). Then, in every tracked
// file under src/, adapters/, test/, scripts/, docs/ and the README files:
//   - relative import/export specifiers (`from "…"`, `import("…")`, `import "…"`), resolved from where the file was,
//     that name a moved file, and a moved file's own relative specifiers, are rewritten relative to where it is now;
//   - Markdown links to a moved file (`](../src/gate.ts)`) likewise;
//   - the repository path of a moved file written out (`src/gate.ts` in prose, comments and docs) becomes its new path.
// Last, `deno fmt` over what changed. Run it on a clean checkout and read `git diff --stat` before committing.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, posix } from "node:path";
import { fileURLToPath } from "node:url";

/** Issue 26's layout: echo in one folder, the gate in another, the clients together, one module for IP addresses. */
export const MAPPING = {
  // All of echo: stream and datagram, the defaults both share, the per-source table, the datagram clock.
  "src/echo.ts": "src/echo/stream.ts",
  "src/echo_defaults.ts": "src/echo/defaults.ts",
  "src/datagram/echo.ts": "src/echo/datagram.ts",
  "src/datagram/sources.ts": "src/echo/sources.ts",
  "src/datagram/clock.ts": "src/echo/clock.ts",
  "src/datagram/mod.ts": "src/echo/mod.ts", // the folder's index (only examples import it; src/mod.ts names its own)
  // All of the gate: the protocol, the penalties, the per-source pending count, the constant-time compare.
  "src/gate.ts": "src/gate/mod.ts",
  "src/penalties.ts": "src/gate/penalties.ts",
  "src/_pending_sources.ts": "src/gate/_pending_sources.ts",
  "src/_constant_time.ts": "src/gate/_constant_time.ts",
  // The clients: stream (echo send, gate knock), datagram, how they connect and what connecting fails with.
  "src/client.ts": "src/client/stream.ts",
  "src/datagram/client.ts": "src/client/datagram.ts",
  "src/_client_connect.ts": "src/client/_connect.ts",
  "src/connect_errors.ts": "src/client/connect_errors.ts",
  // One module for IP addresses (penalties.ts's parsing joins it by hand: see the issue).
  "src/proxy_protocol/ip.ts": "src/ip.ts",
};

/**
 * With MAPPING: names that moved from one module to another before the files move. Every import and export of them
 * from `from` names `to` instead (a statement that also names others is split in two), and `from` loses its
 * forwarding line. Paths are the ones before the moves.
 */
const SYMBOL_MOVES = [{
  from: "src/penalties.ts",
  to: "src/proxy_protocol/ip.ts",
  names: ["Cidr", "cidrContains", "parseCidr", "parseIp"],
  forwarding:
    /\n\/\/ Until every importer names src\/proxy_protocol\/ip\.ts[^\n]*\nexport \{[^}]*\} from "\.\/proxy_protocol\/ip\.ts";\n/,
}];

/** With MAPPING: docs/architecture.md's layout tree, one line per folder, for the folders it makes and empties. */
const LAYOUT = {
  file: "docs/architecture.md",
  from: "src/datagram/         UDP: the echo server, the per-source table, the client\n",
  to: [
    "src/echo/             the echo protocol: stream (stream.ts) and datagram (datagram.ts, RFC 862), the defaults both\n",
    "                      share, the UDP per-source table and its clock; mod.ts names the datagram API\n",
    "src/gate/             the gate protocol (mod.ts), per-source penalties, the pending count per source, the\n",
    "                      constant-time token compare\n",
    "src/client/           the clients: stream (echo send, gate knock), datagram, connecting and its errors\n",
  ].join(""),
};

const ROOTS = ["src/", "adapters/", "test/", "scripts/", "docs/", "examples/"];
const TOP_FILES = ["README.md", "bench/README.md"];
const CODE = /\.(ts|mts|mjs|js|cjs)$/;

const root = fileURLToPath(new URL("..", import.meta.url));
const SELF = "scripts/_restructure.mjs"; // its mapping names the old paths: never rewritten
const git = (...args) => execFileSync("git", args, { cwd: root, encoding: "utf8" });

function main() {
  const args = process.argv.slice(2);
  const dryRun = args.includes("--dry-run");
  const file = args.find((arg) => !arg.startsWith("--"));
  const mapping = file ? JSON.parse(readFileSync(file, "utf8")) : MAPPING;
  const moves = new Map(Object.entries(mapping).map(([from, to]) => [normalize(from), to && normalize(to)]));

  const pending = [...moves].filter(([from]) => existsSync(join(root, from)));
  for (const [from, to] of pending) {
    if (to !== null && existsSync(join(root, to))) throw new Error(`${to} exists already; ${from} would replace it`);
  }

  // Rewrite first (the files still stand where their specifiers were written from), then move.
  const changed = [];
  for (const path of trackedFiles()) {
    const before = readFileSync(join(root, path), "utf8");
    const after = rewrite(path, before, moves, mapping === MAPPING ? SYMBOL_MOVES : []);
    if (after !== before) {
      changed.push(path);
      if (!dryRun) writeFileSync(join(root, path), after);
    }
  }
  if (mapping === MAPPING) {
    const layout = join(root, LAYOUT.file);
    const text = readFileSync(layout, "utf8");
    if (text.includes(LAYOUT.from)) {
      if (!changed.includes(LAYOUT.file)) changed.push(LAYOUT.file);
      if (!dryRun) writeFileSync(layout, text.replace(LAYOUT.from, LAYOUT.to));
    }
  }
  const removals = pending.filter(([, to]) => to === null).map(([from]) => from);
  for (const dead of removals) {
    const users = trackedFiles().filter((path) => CODE.test(path) && importsOf(path).includes(dead));
    if (users.length > 0) throw new Error(`${dead} is to be removed, but ${users.join(", ")} import it`);
  }
  for (const [from, to] of pending) {
    console.log(to === null ? `remove ${from}` : `move   ${from} -> ${to}`);
    if (dryRun) continue;
    if (to === null) git("rm", "-q", from);
    else {
      mkdirSync(dirname(join(root, to)), { recursive: true });
      git("mv", from, to);
    }
  }
  // Folders the moves emptied (src/datagram/) go too.
  for (const [from] of pending) {
    const folder = join(root, dirname(from));
    if (!dryRun && existsSync(folder) && readdirSync(folder).length === 0) rmdirSync(folder);
  }
  const now = changed.map((path) => moves.get(path) ?? path).filter((path) => path !== null);
  console.log(`${pending.length} moved or removed, ${changed.length} files rewritten${dryRun ? " (dry run)" : ""}`);
  // What deno.json's fmt covers (docs/ and the README are formatted by hand).
  const formattable = now.filter((path) => /^(src|adapters|scripts|test)\//.test(path));
  if (!dryRun && formattable.length > 0) {
    execFileSync(join(root, "node_modules/.bin/deno"), ["fmt", "--quiet", ...formattable], { cwd: root });
  }
}

/** Tracked text files in the folders that hold references. */
function trackedFiles() {
  return git("ls-files", "-z", ...ROOTS, ...TOP_FILES).split("\0").filter((path) =>
    path !== "" && path !== SELF && (CODE.test(path) || path.endsWith(".md")) && existsSync(join(root, path))
  );
}

/** The repository paths a code file's relative specifiers resolve to (from where it stands). */
function importsOf(path) {
  const text = readFileSync(join(root, path), "utf8");
  return [...text.matchAll(SPECIFIER)].map((m) => posix.join(posix.dirname(path), m[2]));
}

// `from "./x.ts"`, `import("../x.ts")`, `import "./x.ts"`, `export * from "./x.ts"`: relative specifiers only.
const SPECIFIER = /((?:\bfrom|\bimport)\s*\(?\s*)["'](\.{1,2}\/[^"'\n]+)["']/g;
// Markdown link targets that are relative paths: `](../src/gate.ts)`, `](../src/gate.ts#anchor)`.
const LINK = /(\]\()(\.{0,2}\/?[^)\s#]+)(#[^)\s]*)?\)/g;

/**
 * `text` of the file at `path` with its references to moved files rewritten. The file may be moving too: its
 * specifiers are resolved from where they were written (its old place, or its new one on a second run).
 */
function rewrite(path, text, moves, symbolMoves) {
  const target = moves.has(path) ? moves.get(path) : path;
  if (target === null) return text;
  if (CODE.test(path)) text = moveSymbols(path, text, symbolMoves);
  const movedTo = (repoPath) => (moves.has(repoPath) && moves.get(repoPath) !== null ? moves.get(repoPath) : repoPath);
  // Where a relative reference of this file resolves: from its old place while that file still exists there.
  const base = existsSync(join(root, path)) ? path : target;
  const relink = (spec, keepDot) => {
    const resolved = posix.normalize(posix.join(posix.dirname(base), spec));
    if (!existsSync(join(root, resolved)) && !moves.has(resolved)) return spec; // not a file of ours
    const now = movedTo(resolved);
    if (now === resolved && target === base) return spec; // neither end moves
    let next = posix.relative(posix.dirname(target), now);
    if (keepDot && !next.startsWith(".")) next = `./${next}`;
    return next;
  };
  let out = text;
  if (CODE.test(path)) {
    out = out.replace(SPECIFIER, (all, _head, spec) => {
      const next = relink(spec, true);
      return next === spec ? all : all.replace(spec, next);
    });
  }
  if (path.endsWith(".md")) {
    out = out.replace(LINK, (all, open, spec, anchor = "") => {
      if (/^[a-z]+:/.test(spec)) return all; // a URL
      const next = relink(spec, spec.startsWith("./"));
      return next === spec ? all : `${open}${next}${anchor})`;
    });
  }
  // Repository paths written out: `src/gate.ts` (not part of a longer path such as `xsrc/gate.ts` or `src/gate.tsx`).
  for (const [from, to] of moves) {
    if (to === null || from === to) continue;
    const pattern = new RegExp(`(?<![\\w./-])${escape(from)}(?![\\w/-])`, "g");
    out = out.replace(pattern, to);
  }
  return out;
}

// `import { a, type B } from "…";`, `import type { A } from "…";`, `export { a } from "…";` (one line or several).
const NAMED = /(import|export)(\s+type)?\s*\{([^}]*)\}\s*from\s*["']([^"']+)["'];?/g;

/** `text` of `path` with its imports of moved names pointed at their new module (specifiers as from `path`). */
function moveSymbols(path, text, symbolMoves) {
  let out = text;
  for (const { from, to, names, forwarding } of symbolMoves) {
    if (path === from) {
      out = out.replace(forwarding, "\n");
      continue;
    }
    out = out.replace(NAMED, (all, keyword, typeOnly = "", list, spec, offset, whole) => {
      if (!spec.startsWith(".") || posix.normalize(posix.join(posix.dirname(path), spec)) !== from) return all;
      const items = list.split(",").map((item) => item.trim()).filter(Boolean);
      const bare = (item) => item.replace(/^type\s+/, "").split(/\s+as\s+/)[0];
      const moving = items.filter((item) => names.includes(bare(item)));
      if (moving.length === 0) return all;
      let toSpec = posix.relative(posix.dirname(path), to);
      if (!toSpec.startsWith(".")) toSpec = `./${toSpec}`;
      const statement = (list, specifier) => {
        // Types only: `import type { A }`, as deno lint's verbatim-module-syntax wants.
        const types = !typeOnly && list.every((item) => /^type\s/.test(item));
        const named = types ? list.map((item) => item.replace(/^type\s+/, "")) : list;
        return `${keyword}${types ? " type" : typeOnly} { ${named.join(", ")} } from "${specifier}";`;
      };
      const staying = items.filter((item) => !moving.includes(item));
      if (staying.length === 0) return statement(moving, toSpec);
      // Two statements; inside a JSDoc example the second keeps the comment's " * ".
      const lineStart = whole.lastIndexOf("\n", offset) + 1;
      const indent = /^\s*(\*\s)?/.exec(whole.slice(lineStart))?.[0] ?? "";
      return `${statement(staying, spec)}\n${indent}${statement(moving, toSpec)}`;
    });
  }
  return out;
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
