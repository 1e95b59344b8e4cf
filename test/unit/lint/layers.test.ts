/**
 * The import layering of eslint.config.js, checked through ESLint itself. The type-aware config
 * only lints files of the TypeScript project, so each snippet is linted under the path of an
 * existing file of the folder in question; the snippet's text replaces that file's content.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ESLint } from "eslint";
import { PACKAGE_ROOT } from "../../../src/package-root.js";

const eslint = new ESLint({ cwd: PACKAGE_ROOT });

/** The no-restricted-imports messages for `import { it } from specifier` in `file`. */
async function refusals(file: string, specifier: string): Promise<string[]> {
  const code = `import { it } from ${JSON.stringify(specifier)};\nexport const used = it;\n`;
  const [result] = await eslint.lintText(code, { filePath: file });
  assert.ok(result, `ESLint linted ${file}`);
  const fatal = result.messages.filter((m) => m.fatal || m.ruleId === null);
  assert.deepEqual(
    fatal.map((m) => m.message),
    [],
    `${file} parsed, so a silence below means allowed`,
  );
  return result.messages.filter((m) => m.ruleId === "no-restricted-imports").map((m) => m.message);
}

async function assertRefused(file: string, specifier: string, why: RegExp): Promise<void> {
  const messages = await refusals(file, specifier);
  assert.equal(messages.length, 1, `${file} importing ${specifier} is refused`);
  assert.ok(messages[0]?.includes(`'${specifier}'`), messages[0]);
  assert.match(messages[0] ?? "", why);
}

async function assertAllowed(file: string, specifier: string): Promise<void> {
  assert.deepEqual(await refusals(file, specifier), [], `${file} may import ${specifier}`);
}

const DOWNWARD = /Imports run downward/;
const THROUGH_INDEX = /through backends\/backend\.ts and backends\/index\.ts only/;

describe("imports run downward between the folders of src/", () => {
  test("state/ may not import plan/ above it, and may import exec/ below it", async () => {
    await assertRefused("src/state/paths.ts", "../plan/plan.js", DOWNWARD);
    await assertAllowed("src/state/paths.ts", "../exec/run.js");
  });

  test("a backend may not import cli/, and may import backends/plan.ts", async () => {
    await assertRefused("src/backends/docker/cli.ts", "../../cli/progress.js", DOWNWARD);
    await assertAllowed("src/backends/docker/cli.ts", "../plan.js");
  });
});

describe("above backends/, a backend is reached only through backends/backend.ts and index.ts", () => {
  test("cli/ may not import the docker backend's own files, and may import backends/index.ts", async () => {
    await assertRefused("src/cli/progress.ts", "../backends/docker/cli.js", THROUGH_INDEX);
    await assertAllowed("src/cli/progress.ts", "../backends/index.js");
  });

  test("lifecycle/ may not import the smolmachines backend's own files", async () => {
    await assertRefused(
      "src/lifecycle/trust.ts",
      "../backends/smolmachines/backend.js",
      THROUGH_INDEX,
    );
    await assertAllowed("src/lifecycle/trust.ts", "../backends/index.js");
  });
});

describe("sidecars/ and shared/ import only shared/: the bundle image carries nothing else", () => {
  test("a sidecar may not import the root errors.ts nor state/, and may import shared/", async () => {
    await assertRefused("src/sidecars/dlp.ts", "../errors.js", /shared\/ and nothing else/);
    await assertRefused("src/sidecars/dlp.ts", "../state/paths.js", /shared\/ and nothing else/);
    await assertAllowed("src/sidecars/dlp.ts", "../shared/labels.js");
  });

  test("shared/ may not import the root errors.ts, and may import its own files", async () => {
    await assertRefused("src/shared/labels.ts", "../errors.js", /imports nothing outside shared/);
    await assertAllowed("src/shared/labels.ts", "./logs.js");
  });
});

describe("only src/exec/run.ts (and, in the bundle, init and the git gate's runner) runs external programs", () => {
  const elsewhere = [
    "src/state/paths.ts",
    "src/backends/docker/cli.ts",
    "src/cli/progress.ts",
    "src/sidecars/dlp.ts",
    "src/sidecars/git-gate/scan.ts",
    "src/shared/labels.ts",
  ];

  test("node:child_process is refused in every layer but exec/run.ts", async () => {
    for (const file of elsewhere)
      await assertRefused(file, "node:child_process", /through src\/exec\/run\.ts only/);
    await assertAllowed("src/exec/run.ts", "node:child_process");
    await assertAllowed("src/sidecars/git-gate/process.ts", "node:child_process");
    await assertRefused(
      "src/sidecars/git-gate/process.ts",
      "../../exec/run.js",
      /shared\/ and nothing else/,
    );
  });
});
