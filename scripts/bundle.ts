// The CLI as one file: dist/bot-bottle.js holds the command line and every package it imports,
// so a command loads one module instead of some two hundred (`ls` starts in about half the time).
// The sidecars stay as tsc compiled them: the bundle image copies dist/sidecars and dist/shared.
import { build } from "esbuild";

await build({
  entryPoints: ["dist/cli/bin.js"],
  outfile: "dist/bot-bottle.js",
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
});
