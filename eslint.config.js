// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
      "no-restricted-imports": [
        "error",
        {
          paths: [
            {
              name: "node:child_process",
              message: "Run external programs through src/exec/run.ts only.",
            },
          ],
        },
      ],
    },
  },
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
    // The bundle's init is the process-running layer inside the sidecar bundle.
    // …and benchmarks run the processes they compare (the egress daemon, mitmdump) themselves.
    files: ["src/exec/run.ts", "src/sidecars/init/supervisor.ts", "bench/**/*.ts"],
    rules: { "no-restricted-imports": "off" },
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
