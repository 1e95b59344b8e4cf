// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const childProcess = ["node:child_process", "child_process"].map((name) => ({
  name,
  message: "Run external programs through src/exec/run.ts only.",
}));

/**
 * Imports run downward only (DESIGN.md, "Layout"): each folder of src/ may import its own rank
 * and those below. Sidecars run inside the bundle, whose image carries sidecars/ and shared/
 * alone, so they and shared/ import nothing else; above backends/, a backend's own folder is
 * reached only through backends/backend.ts, plan.ts, images.ts and index.ts.
 */
const RANKS = {
  shared: 0,
  exec: 1,
  state: 2,
  manifest: 2,
  backends: 3,
  plan: 4,
  provision: 4,
  providers: 4,
  lifecycle: 5,
  cli: 6,
  dashboard: 6,
};
const ROOT_FILES = ["errors", "package-root"];
const TOP = [...Object.keys(RANKS), "sidecars", ...ROOT_FILES];
/** An import specifier that leaves the folder and enters one of `dirs` (or names a root file). */
const into = (/** @type {string[]} */ dirs) => {
  const files = dirs.filter((d) => ROOT_FILES.includes(d));
  const folders = dirs.filter((d) => !ROOT_FILES.includes(d));
  return `^(\\.\\./)+((${folders.join("|")})/${files.length ? `|(${files.join("|")})\\.js$` : ""})`;
};

function layer(
  /** @type {string} */ dir,
  /** @type {string[]} */ forbidden,
  /** @type {string} */ why,
) {
  const patterns = [{ regex: into(forbidden), message: why }];
  if (["cli", "dashboard", "lifecycle", "provision"].includes(dir))
    patterns.push({
      regex: "^(\\.\\./)+backends/(docker|smolmachines)/",
      message: "Use a backend through backends/backend.ts and backends/index.ts only.",
    });
  return {
    files: [`src/${dir}/**/*.ts`],
    rules: { "no-restricted-imports": ["error", { paths: childProcess, patterns }] },
  };
}

const sidecars = layer(
  "sidecars",
  TOP.filter((d) => d !== "shared" && d !== "sidecars"),
  "Sidecars import shared/ and nothing else.",
);

const layers = [
  ...Object.entries(RANKS).map(([dir, rank]) =>
    dir === "shared"
      ? layer(
          dir,
          TOP.filter((d) => d !== "shared"),
          "shared/ imports nothing outside shared/: the bundle image carries it alone.",
        )
      : layer(
          dir,
          [
            ...Object.entries(RANKS)
              .filter(([, r]) => r > rank)
              .map(([d]) => d),
            "sidecars",
          ],
          `Imports run downward (DESIGN.md, "Layout"): ${dir}/ may not import a folder above it.`,
        ),
  ),
  sidecars,
];

export default tseslint.config(
  // test/fixtures: plain scripts run inside test containers, outside the TypeScript project.
  { ignores: ["dist/", "node_modules/", "coverage/", "test/fixtures/", "bench/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            {
              from: "package",
              package: "node:test",
              name: ["test", "describe", "it", "before", "after"],
            },
          ],
        },
      ],
      "@typescript-eslint/switch-exhaustiveness-check": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-restricted-imports": ["error", { paths: childProcess }],
    },
  },
  ...layers,
  {
    // Tests mutate example manifests as plain JSON and drive the CLI as a separate process.
    files: ["test/**/*.ts"],
    rules: {
      "no-restricted-imports": "off",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-call": "off",
    },
  },
  {
    // The bundle's init and the git gate's runner are the process-running layer inside the
    // sidecar bundle; benchmarks run the processes they compare (the egress daemon, mitmdump).
    files: [
      "src/exec/run.ts",
      "src/sidecars/init/supervisor.ts",
      "src/sidecars/git-gate/process.ts",
      "bench/**/*.ts",
    ],
    rules: { "no-restricted-imports": "off" },
  },
  {
    // …and they stay sidecars: shared/ only.
    files: ["src/sidecars/init/supervisor.ts", "src/sidecars/git-gate/process.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: sidecars.rules["no-restricted-imports"][1].patterns },
      ],
    },
  },
  {
    files: ["eslint.config.js"],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Programs shipped to run inside the agent (the cage probe): plain JavaScript for its node.
    files: ["images/**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: "readonly",
        performance: "readonly",
        setTimeout: "readonly",
        setImmediate: "readonly",
        clearTimeout: "readonly",
      },
    },
  },
);
