import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/cli/program.js";
import { templateImage } from "../../../src/backends/images.js";
import { templateListing, type TemplateListing } from "../../../src/providers/templates.js";
import { capture } from "../../helpers/capture.js";

const LEAK = "sk-proj-" + "LEAKLEAKLEAK".repeat(4);

describe("bot-bottle templates", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-templates-"));
    const write = async (name: string, text: string) => {
      await mkdir(join(dir, name), { recursive: true });
      await writeFile(join(dir, name, "plugin.json"), text);
    };
    await write(
      "good",
      '{ "description": "A good one", "base": "codex", "interactive": ["a"], "headless": ["a"] }',
    );
    await write(
      "broken",
      `{\n  "description": "x",\n  "interactive": ["a"],\n  "headless": ["a"],\n  "env": { "X": "${LEAK}" }\n}`,
    );
    await write("claude", '{ "description": "shadowed", "interactive": ["a"], "headless": ["a"] }');
    await mkdir(join(dir, "not-a-plugin"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("lists the built-ins with the CLI each pins, and every installed plugin, a broken one with its first problem", async () => {
    const listing = await templateListing({ BOT_BOTTLE_PLUGINS_DIR: dir });
    const claude = templateImage("claude")?.agentPackage;
    assert.ok(claude);
    assert.deepEqual(
      listing.builtins.map((b) => [b.name, b.pinned]),
      [
        ["claude", `${claude.name}@${claude.version}`],
        ["codex", listing.builtins[1]?.pinned],
        ["shell", undefined],
      ],
    );
    assert.match(listing.builtins[1]?.pinned ?? "", /^@openai\/codex@\d/);
    assert.equal(listing.pluginsDir, dir);
    const byName = Object.fromEntries(listing.plugins.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(byName), ["broken", "claude", "good"]);
    assert.deepEqual(byName["good"], {
      name: "good",
      valid: true,
      description: "A good one",
      base: "codex",
    });
    assert.equal(byName["broken"]?.valid, false);
    assert.match(
      byName["broken"]?.problem ?? "",
      /^plugin\.json:5:12 {2}env\.X holds text shaped like an OpenAI API key/,
    );
    assert.match(byName["claude"]?.problem ?? "", /is the name of a built-in template/);
    assert.ok(!JSON.stringify(listing).includes(LEAK));
  });

  test("prints a table, or JSON with --json; a broken plugin does not fail the listing", async () => {
    const text = capture({ BOT_BOTTLE_PLUGINS_DIR: dir });
    assert.equal(await run(["templates"], text.ctx), 0, text.err());
    const lines = text.out().split("\n");
    assert.match(lines[0] ?? "", /^NAME\s+KIND\s+AGENT CLI\s+DESCRIPTION$/);
    assert.ok(
      lines.some((l) =>
        /^claude\s+built-in\s+@anthropic-ai\/claude-code@\S+\s+Claude Code/.test(l),
      ),
    );
    assert.ok(lines.some((l) => /^good\s+plugin on codex\s+-\s+A good one$/.test(l)));
    assert.ok(
      lines.some((l) => /^broken\s+plugin\s+-\s+invalid: plugin\.json:5:12 {2}env\.X /.test(l)),
    );
    assert.ok(lines.includes(`plugins folder: ${dir}`));
    assert.ok(!text.out().includes(LEAK));

    const json = capture({ BOT_BOTTLE_PLUGINS_DIR: dir });
    assert.equal(await run(["templates", "--json"], json.ctx), 0);
    const parsed = JSON.parse(json.out()) as TemplateListing;
    assert.deepEqual(
      parsed.plugins.map((p) => [p.name, p.valid]),
      [
        ["broken", false],
        ["claude", false],
        ["good", true],
      ],
    );
  });

  test("with no plugins folder: the built-ins, and where plugins would go", async () => {
    const c = capture({ HOME: join(dir, "nobody") });
    assert.equal(await run(["templates"], c.ctx), 0);
    assert.match(c.out(), /^shell\s+built-in/m);
    assert.match(
      c.out(),
      new RegExp(`plugins folder: ${join(dir, "nobody")}/\\.bot-bottle/contrib \\(none installed`),
    );
  });
});
