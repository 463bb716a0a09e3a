/**
 * Builds the npm package into `npm/`, the way dnt would (dnt lives on JSR, out of reach here):
 * ESM in `npm/esm`, CommonJS in `npm/script` (each with `.d.ts`), a generated package.json,
 * a `bin` stub, the package's README (docs/npm-README.md: for users, links absolute) and LICENSE.
 * Type errors fail the build.
 *
 * Run: `deno run -A scripts/build_npm.ts` (`npm run build`).
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;
const out = `${root}npm`;
const tsc = `${root}node_modules/.bin/tsc`;

interface DenoJson {
  name: string;
  version: string;
  license: string;
  exports: Record<string, string>;
}
const denoJson: DenoJson = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
const devPackage = JSON.parse(await Deno.readTextFile(`${root}package.json`));

// The version lives in deno.json (for JSR); src/version.ts must agree so `--version` is right.
const versionSource = await Deno.readTextFile(`${root}src/version.ts`);
if (!versionSource.includes(`VERSION = "${denoJson.version}"`)) {
  fail(`src/version.ts does not say VERSION = "${denoJson.version}" (deno.json's version)`);
}

function fail(message: string): never {
  console.error(`build_npm: ${message}`);
  Deno.exit(1);
}

async function compile(module: "esnext" | "commonjs", outDir: string): Promise<void> {
  const config = {
    compilerOptions: {
      target: "ES2022",
      module,
      moduleResolution: "bundler",
      rewriteRelativeImportExtensions: true,
      allowImportingTsExtensions: false,
      declaration: true,
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      esModuleInterop: true,
      lib: ["ES2022", "DOM"],
      types: ["node"],
      rootDir: root,
      outDir,
    },
    include: [`${root}src/**/*.ts`, `${root}adapters/**/*.ts`],
  };
  const configPath = `${root}npm/tsconfig.${module}.json`;
  await Deno.writeTextFile(configPath, JSON.stringify(config, null, 2));
  const { code } = await new Deno.Command(tsc, { args: ["-p", configPath], stdout: "inherit", stderr: "inherit" })
    .output();
  await Deno.remove(configPath);
  if (code !== 0) fail(`tsc (${module}) failed`);
}

await Deno.remove(out, { recursive: true }).catch(() => {});
await Deno.mkdir(`${out}/bin`, { recursive: true });
await compile("esnext", `${out}/esm`);
await compile("commonjs", `${out}/script`);
// CommonJS files need their own package scope, as dnt does.
await Deno.writeTextFile(`${out}/script/package.json`, JSON.stringify({ type: "commonjs" }, null, 2) + "\n");

// Entries come from deno.json's exports, so JSR and npm offer the same subpaths.
const exportsMap: Record<string, unknown> = {};
// For TypeScript's old node10 resolution, which ignores "exports".
const typesVersions: Record<string, string[]> = {};
for (const [subpath, source] of Object.entries(denoJson.exports)) {
  const path = source.replace(/^\.\//, "").replace(/\.ts$/, "");
  exportsMap[subpath] = {
    import: { types: `./esm/${path}.d.ts`, default: `./esm/${path}.js` },
    require: { types: `./script/${path}.d.ts`, default: `./script/${path}.js` },
  };
  if (subpath !== ".") typesVersions[subpath.slice(2)] = [`./script/${path}.d.ts`];
}
// npm-only: "echogate/adapter" is the current runtime's adapter, chosen by export condition
// (the root module picks one at run time instead, which JSR's plain exports can express too).
exportsMap["./adapter"] = {
  deno: { types: "./esm/adapters/deno.d.ts", default: "./esm/adapters/deno.js" },
  bun: { types: "./esm/adapters/bun.d.ts", default: "./esm/adapters/bun.js" },
  import: { types: "./esm/adapters/node.d.ts", default: "./esm/adapters/node.js" },
  require: { types: "./script/adapters/node.d.ts", default: "./script/adapters/node.js" },
};
typesVersions["adapter"] = ["./script/adapters/node.d.ts"];
exportsMap["./package.json"] = "./package.json";
// The JSON Schema of `echogate bench --json` (docs/bench.md).
exportsMap["./bench-report.schema.json"] = "./bench-report.schema.json";
await Deno.copyFile(`${root}src/bench/schema.json`, `${out}/bench-report.schema.json`);

await Deno.writeTextFile(`${out}/bin/echogate.mjs`, `#!/usr/bin/env node\nimport "../esm/src/cli.js";\n`);
await Deno.chmod(`${out}/bin/echogate.mjs`, 0o755);

// The repository the package README's links and package.json's repository/homepage/bugs point to
// (the bench schema's $id names the same one).
const REPOSITORY = "https://github.com/echogate/echogate";

const packageJson = {
  name: "echogate",
  version: denoJson.version,
  description: "The seed's gate and echo TCP protocols as a library and CLI for Node, Deno and Bun",
  license: denoJson.license,
  repository: { type: "git", url: `git+${REPOSITORY}.git` },
  homepage: `${REPOSITORY}#readme`,
  bugs: { url: `${REPOSITORY}/issues` },
  type: "module",
  main: "./script/adapters/mod.js",
  module: "./esm/adapters/mod.js",
  types: "./esm/adapters/mod.d.ts",
  exports: exportsMap,
  typesVersions: { "*": typesVersions },
  bin: { echogate: "./bin/echogate.mjs" },
  // The majors `npm test` runs on (the machine's Node 20 and scripts/node_matrix.mjs's 22, 24, 26)
  // and later ones; the odd-numbered majors, all past their end of life, were never tested.
  engines: { node: "^20 || ^22 || ^24 || >=26" },
  files: ["esm", "script", "bin", "bench-report.schema.json"],
  sideEffects: false,
  keywords: ["tcp", "echo", "socket", "deno", "bun", "node"],
  dependencies: {},
};
await Deno.writeTextFile(`${out}/package.json`, JSON.stringify(packageJson, null, 2) + "\n");
// The repository's README is the developers' (npm test, links into the source tree); the package gets its own.
for (const [from, to] of [["docs/npm-README.md", "README.md"], ["LICENSE", "LICENSE"]]) {
  await Deno.copyFile(`${root}${from}`, `${out}/${to}`).catch(() => fail(`${from} is missing`));
}
if (devPackage.dependencies && Object.keys(devPackage.dependencies).length > 0) {
  fail("the package must have no runtime dependencies");
}
console.log(`build_npm: wrote ${out} (echogate ${denoJson.version})`);
