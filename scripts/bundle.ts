// What ships, bundled from tsc's output by esbuild:
//  - the CLI: dist/bot-bottle.js, the command line and every package it imports, so a command
//    loads one module instead of some two hundred (`ls` starts in about half the time); what a
//    command imports only when it runs (the dashboard's ink and React) is a chunk of its own in
//    dist/chunks/, which no other command loads;
//  - the sidecars: dist/bundle/sidecars/<name>/main.js, one self-contained file per daemon
//    (its packages inside), which is all the bundle image copies. A daemon starts by reading one
//    file instead of some two hundred modules, on each of the many bottles a machine runs.
// The licences of the packages inside the sidecars go beside them, as the image ships them.
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { build, type BuildOptions, type Metafile } from "esbuild";

const COMMON: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
  // jsonc-parser's CommonJS entry is a UMD wrapper whose require()s a bundler cannot follow.
  mainFields: ["module", "main"],
  // Packages written as CommonJS call require(); an ES module has none of its own.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);',
  },
};

/** The daemons and tools the bundle image runs by path (plan.ts, the Dockerfile, tests). */
const SIDECAR_ENTRIES = [
  "init/main",
  "init/health",
  "egress/main",
  "supervise/main",
  "git-gate/main",
  "intercept/main",
];

/** The packages (by their node_modules folder) whose code went into a bundle. */
function packagesIn(metafile: Metafile): string[] {
  const dirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  return [...dirs].sort();
}

/** Each package's name, version and licence text, one after another. */
async function licences(dirs: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const dir of dirs) {
    const pkg = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: string;
    };
    const file = (await readdir(dir)).find((f) => /^(LICEN[CS]E|COPYING)/i.test(f));
    const text = file
      ? await readFile(join(dir, file), "utf8")
      : `${pkg.license ?? "no licence"} (the package ships no licence file)\n`;
    parts.push(`${pkg.name} ${pkg.version}\n${"-".repeat(72)}\n${text.trimEnd()}\n`);
  }
  return parts.join("\n");
}

await Promise.all(
  ["dist/bundle", "dist/chunks"].map((dir) => rm(dir, { recursive: true, force: true })),
);

const [, sidecars] = await Promise.all([
  build({
    ...COMMON,
    entryPoints: { "bot-bottle": "dist/cli/bin.js" },
    outdir: "dist",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    // ink loads React's developer tools only when asked to (DEV=true); they are not shipped.
    external: ["react-devtools-core"],
  }),
  build({
    ...COMMON,
    entryPoints: Object.fromEntries(
      SIDECAR_ENTRIES.map((e) => [`sidecars/${e}`, `dist/sidecars/${e}.js`]),
    ),
    outdir: "dist/bundle",
    metafile: true,
  }),
]);
await writeFile("dist/bundle/THIRD-PARTY-LICENSES", await licences(packagesIn(sidecars.metafile)));
await writeFile("dist/bundle/package.json", '{ "type": "module" }\n');
