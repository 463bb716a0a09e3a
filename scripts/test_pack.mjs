// Checks the npm package as a user gets it: `npm pack` of npm/ (run `npm run build` first),
// installed into a fresh temporary project, then used from Node ESM and CommonJS, TypeScript,
// npx, bunx and `deno run npm:echogate`, and run straight from the tarball the ways its README
// gives (npx and bunx, relative and absolute paths); plus publint and arethetypeswrong on the
// package, and its README, metadata and help checked for what the package lacks.
// Prints one line per check and ends with "N passed, N failed". Run: `npm run test:pack`.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { basename, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = `${root}node_modules/.bin`;
const work = mkdtempSync(join(tmpdir(), "echogate-pack-"));
const project = join(work, "project");
// An empty directory beside the project, for the runs straight from the tarball: in the project,
// npx and bunx would find the installed package instead.
const elsewhere = join(work, "elsewhere");
let tarball = "";

/**
 * Signals a detached child's whole process group: npx and bunx start the server as a child of
 * their own, which a signal to the launcher alone would leave running.
 */
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Gone already.
  }
}

/** Runs a command to completion (bounded) and returns its exit code and output. */
function run(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? project,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), options.ms ?? 60_000);
    child.on("error", (error) => (stderr += String(error)));
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Starts a CLI server, waits for its "listening on" line and checks it answers like the seed. */
async function serverAnswers(command, args) {
  const child = spawn(command, args, {
    cwd: project,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
    detached: true,
  });
  const closed = new Promise((resolve) => child.on("close", resolve));
  let out = "";
  let err = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stderr.on("data", (chunk) => (err += chunk));
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening on" line in 30 s: ${out}${err}`)), 30_000);
      child.stdout.on("data", () => {
        const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (match) (clearTimeout(timer), resolve(Number(match[1])));
      });
      child.on("close", () => (clearTimeout(timer), reject(new Error(`exited early: ${err}`))));
    });
    const reply = await exchange(port, "Hello network world");
    if (reply !== "Echo=>Hello network world") throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  } finally {
    // The server (and its launcher) shut down on SIGTERM; whatever is left after 10 s is killed.
    killGroup(child, "SIGTERM");
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
    await closed;
    clearTimeout(timer);
    killGroup(child, "SIGKILL");
  }
}

/** Sends one message over a plain node:net socket and returns the reply (the server closes after our FIN). */
function exchange(port, message) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => socket.end(message));
    let reply = "";
    socket.setTimeout(10_000, () => socket.destroy(new Error("no reply in 10 s")));
    socket.on("data", (chunk) => (reply += chunk));
    socket.on("end", () => resolve(reply));
    socket.on("error", reject);
  });
}

const LIBRARY_CHECK = `
  const server = await serveEcho({ port: 0 });
  const [reply] = await sendEcho({ hostname: "127.0.0.1", port: server.addr.port, messages: ["hi"] });
  await server.close();
  if (new TextDecoder().decode(reply) !== "Echo=>hi") throw new Error("bad reply");
  console.log("ok");
`;

/** The markdown links of `text` (inline `[text](target)`), less anchors-only ones. */
function markdownLinks(text) {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]).filter((target) => !target.startsWith("#"));
}

/** Checks `echogate --version` run by `command args` in the empty directory prints the package's version. */
async function runsFromTarball(command, args) {
  const version = JSON.parse(readFileSync(`${root}npm/package.json`, "utf8")).version;
  const result = await run(command, [...args, "--version"], { cwd: elsewhere });
  if (result.stdout.trim() !== version) throw new Error(`exit ${result.code}: ${result.stdout}${result.stderr}`);
}

const checks = [
  ["the package README is for users: no npm test/start, every relative link inside the package", () => {
    const readme = readFileSync(`${root}npm/README.md`, "utf8");
    const devLine = readme.split("\n").find((line) => /\bnpm (run )?(test|start)\b/.test(line));
    if (devLine) throw new Error(`a developer's line: ${devLine}`);
    const broken = markdownLinks(readme).filter((target) => {
      if (/^https?:\/\//.test(target)) return false;
      const path = normalize(join(`${root}npm`, target.split("#")[0]));
      return !path.startsWith(`${root}npm/`) || !existsSync(path);
    });
    if (broken.length) throw new Error(`links that do not resolve in the package: ${broken.join(", ")}`);
  }],
  ["package.json has repository, homepage and bugs", () => {
    const pkg = JSON.parse(readFileSync(`${root}npm/package.json`, "utf8"));
    if (!/^git\+https:\/\/.+\.git$/.test(pkg.repository?.url ?? "") || !pkg.homepage || !pkg.bugs?.url) {
      throw new Error(JSON.stringify({ repository: pkg.repository, homepage: pkg.homepage, bugs: pkg.bugs }));
    }
  }],
  ["bench --help names the report schema by a file the package ships", async () => {
    const help =
      (await run(process.execPath, [join(project, "node_modules/echogate/bin/echogate.mjs"), "bench", "--help"]))
        .stdout;
    const named = [...help.matchAll(/[\w./-]+\.schema\.json/g)].map((match) => match[0]);
    const shipped = named.filter((file) => existsSync(join(project, "node_modules/echogate", file)));
    if (shipped.length === 0) throw new Error(`names ${named.join(", ") || "no schema file"}, none in the package`);
  }],
  [
    "npx ./relative/echogate.tgz runs the CLI from the tarball",
    () => runsFromTarball("npx", ["--yes", `../${basename(tarball)}`]),
  ],
  [
    "npx --package /absolute/echogate.tgz echogate runs the CLI",
    () => runsFromTarball("npx", ["--yes", "--package", tarball, "echogate"]),
  ],
  ["npx file:/absolute/echogate.tgz runs the CLI", () => runsFromTarball("npx", ["--yes", `file:${tarball}`])],
  [
    "bunx --package /absolute/echogate.tgz echogate runs the CLI",
    () => runsFromTarball(`${bin}/bun`, ["x", "--package", tarball, "echogate"]),
  ],
  ["publint reports no problems", async () => {
    const result = await run(`${bin}/publint`, ["npm"], { cwd: root });
    if (result.code !== 0 || !/All good/.test(result.stdout)) throw new Error(result.stdout + result.stderr);
  }],
  ["arethetypeswrong reports no problems", async () => {
    const result = await run(`${bin}/attw`, ["--pack", "npm"], { cwd: root });
    if (result.code !== 0) throw new Error(result.stdout + result.stderr);
  }],
  ["the package has no runtime dependencies", () => {
    const pkg = JSON.parse(readFileSync(`${root}npm/package.json`, "utf8"));
    if (Object.keys(pkg.dependencies ?? {}).length || pkg.peerDependencies) throw new Error("dependencies found");
  }],
  [`Node ${process.version} ESM: import { serveEcho } from "echogate" serves and answers`, async () => {
    writeFileSync(join(project, "esm.mjs"), `import { sendEcho, serveEcho } from "echogate";\n${LIBRARY_CHECK}`);
    const result = await run(process.execPath, ["esm.mjs"]);
    if (result.stdout.trim() !== "ok") throw new Error(result.stderr);
  }],
  [`Node ${process.version} CJS: require("echogate") serves and answers`, async () => {
    writeFileSync(
      join(project, "cjs.cjs"),
      `const { sendEcho, serveEcho } = require("echogate");\n(async () => {${LIBRARY_CHECK}})();`,
    );
    const result = await run(process.execPath, ["cjs.cjs"]);
    if (result.stdout.trim() !== "ok") throw new Error(result.stderr);
  }],
  ["TypeScript (nodenext) type-checks a consumer of echogate and its subpaths", async () => {
    writeFileSync(
      join(project, "consumer.ts"),
      [
        `import { serveEcho, type EchogateServer } from "echogate";`,
        `import { serveGate } from "echogate/core";`,
        `import { transport } from "echogate/node";`,
        `const server: Promise<EchogateServer> = serveEcho({ port: 0, mode: "line" });`,
        `void serveGate({ transport, tokens: ["x"] });`,
        `void server;`,
      ].join("\n"),
    );
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { module: "nodenext", moduleResolution: "nodenext", strict: true, noEmit: true, types: [] },
        files: ["consumer.ts"],
      }),
    );
    const result = await run(`${bin}/tsc`, ["-p", "tsconfig.json"]);
    if (result.code !== 0) throw new Error(result.stdout + result.stderr);
  }],
  ['each runtime gets its own adapter from "echogate/adapter"', async () => {
    writeFileSync(
      join(project, "adapter.mjs"),
      `import { transport } from "echogate/adapter"; console.log(transport.runtime);`,
    );
    const seen = [];
    for (const [command, args] of [[process.execPath, []], [`${bin}/bun`, []], [`${bin}/deno`, ["run", "-A"]]]) {
      seen.push((await run(command, [...args, "adapter.mjs"])).stdout.trim());
    }
    if (seen.join(",") !== "node,bun,deno") throw new Error(`got ${seen.join(",")}`);
  }],
  [
    "npx echogate echo serve --port 0 answers a client",
    () => serverAnswers("npx", ["--no-install", "echogate", "echo", "serve", "--port", "0"]),
  ],
  [
    "bunx --bun echogate echo serve --port 0 answers a client",
    () => serverAnswers(`${bin}/bun`, ["x", "--bun", "echogate", "echo", "serve", "--port", "0"]),
  ],
  [
    "deno run -A npm:echogate echo serve --port 0 answers a client",
    () => serverAnswers(`${bin}/deno`, ["run", "-A", "npm:echogate", "echo", "serve", "--port", "0"]),
  ],
];

let passed = 0;
let failed = 0;
try {
  const pack = await run("npm", ["pack", `${root}npm`, "--pack-destination", work, "--silent"], { cwd: root });
  tarball = join(work, pack.stdout.trim().split("\n").pop() ?? "");
  await run("mkdir", ["-p", project], { cwd: work });
  mkdirSync(elsewhere);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "pack-test", private: true }));
  // Deno uses the project's node_modules instead of fetching echogate from a registry.
  writeFileSync(join(project, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
  // --engine-strict: the install fails unless the package's "engines" admit the Node running npm
  // (this one: test.mjs runs this script on each Node of the matrix, first on PATH).
  const install = await run("npm", ["install", "--no-audit", "--no-fund", "--engine-strict", tarball]);
  if (pack.code !== 0 || install.code !== 0) {
    throw new Error(`npm pack/install failed: ${pack.stderr}${install.stderr}`);
  }
  passed++;
  console.log(`✓ npm install --engine-strict of the packed tarball on Node ${process.version}`);
  // On the extra Nodes of the matrix (test.mjs sets this), only the checks whose outcome depends
  // on the Node that runs them: the others (publint, attw, tsc, bunx, deno) ran on the machine's Node.
  const nodeOnly = process.env.ECHOGATE_PACK_NODE_ONLY === "1";
  const NODE_INDEPENDENT =
    /^(publint|arethetypeswrong|the package has no|the package README|package\.json has|bench --help|TypeScript|bunx|deno run)/;
  for (const [name, check] of checks) {
    if (nodeOnly && NODE_INDEPENDENT.test(name)) continue;
    try {
      await check();
      passed++;
      console.log(`✓ ${name}`);
    } catch (error) {
      failed++;
      console.log(`✗ ${name}\n  ${String(error?.message ?? error).trim().split("\n").join("\n  ")}`);
    }
  }
} catch (error) {
  failed++;
  console.log(`✗ ${error.message}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
