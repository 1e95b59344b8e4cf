import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { STACK_LINE } from "../../helpers/cli.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("plugged");
const broken = t.agent("broken");
const LEAK = "ghp_" + "LEAKLEAKLEAK".repeat(3);

/** Writes `<dir>/<name>/` with plugin.json and other files. */
async function writePlugin(dir: string, name: string, files: Record<string, string>) {
  await mkdir(join(dir, name), { recursive: true });
  for (const [path, text] of Object.entries(files)) await writeFile(join(dir, name, path), text);
}

describe("user plugins, through the built CLI", { timeout: 20 * 60_000 }, () => {
  let plugins = "";
  before(async () => {
    await t.setup({
      agents: {
        [agent]: { template: "mybot", bottle: "box" },
        [broken]: { template: "broken", bottle: "box" },
      },
      bottles: { box: {} },
    });
    plugins = join(t.dir, "contrib");
    t.env = { ...t.env, BOT_BOTTLE_PLUGINS_DIR: plugins };
    await writePlugin(plugins, "mybot", {
      "plugin.json": JSON.stringify(
        {
          description: "A plugin of the test's own",
          dockerfile: "Dockerfile",
          interactive: ["bash", "-l"],
          headless: ["bash", "-lc"],
          env: { MY_AGENT_MODE: "autonomous" },
          routes: [{ host: "api.plugin.example", paths: ["/v1/"] }],
          files: [{ path: ".my-agent/config.toml", source: "config.toml", mode: "0600" }],
        },
        null,
        2,
      ),
      Dockerfile: [
        "ARG BASE_IMAGE",
        "FROM ${BASE_IMAGE}",
        "USER root",
        "RUN echo layered-by-the-plugin > /etc/my-agent-layer",
        "USER node",
        "",
      ].join("\n"),
      "config.toml": 'mode = "fast"\n',
    });
    await writePlugin(plugins, "broken", {
      "plugin.json": `{\n  "description": "broken",\n  "interactive": ["a"],\n  "headless": ["a"],\n  "env": { "MY_HELPER": "${LEAK}" }\n}\n`,
    });
  });
  after(() => t.teardown());

  test("templates lists the built-ins and both plugins, the broken one with its problem", async () => {
    const r = await t.cli(["templates"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^shell\s+built-in/m);
    assert.match(r.stdout, /^mybot\s+plugin on shell\s+-\s+A plugin of the test's own$/m);
    assert.match(
      r.stdout,
      /^broken\s+plugin\s+-\s+invalid: plugin\.json:5:12 {2}env\.MY_HELPER holds text shaped like a GitHub token/m,
    );
    assert.ok(r.stdout.includes(`plugins folder: ${plugins}`));
    assert.doesNotMatch(r.stdout + r.stderr, /LEAKLEAK/);
  });

  test('validate reads the plugin behind "template": a valid one resolves, a broken one is refused', async () => {
    const r = await t.cli(["validate", "--agent", agent]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^agent\\s+${agent} \\(template mybot\\)`, "m"));
    const all = await t.cli(["validate"]);
    assert.equal(all.code, 2, all.stderr);
    assert.match(
      all.stderr,
      /broken\/plugin\.json:5:12 {2}env\.MY_HELPER holds text shaped like a GitHub token/,
    );
    assert.doesNotMatch(all.stdout + all.stderr, /LEAKLEAK/);
  });

  test("start --dry-run shows the plugin's route, and its Dockerfile first in the image cascade", async () => {
    const text = await t.cli(["start", agent, "--dry-run"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /template mybot/);
    assert.match(
      text.stdout,
      /api\.plugin\.example {2}paths \/v1\/ {2}\(from the mybot template\)/,
    );
    assert.match(text.stdout, /image bot-bottle\/shell-custom:[0-9a-f]{12}/);

    const json = await t.cli(["start", agent, "--dry-run", "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const plan = JSON.parse(json.stdout) as {
      agentContainer: {
        build: { template: string; layers: { what: string; dockerfile: string }[]; ref: string };
        attach: string[];
        env: Record<string, string>;
      };
    };
    const a = plan.agentContainer;
    assert.equal(a.build.template, "shell");
    assert.deepEqual(a.build.layers, [
      { what: "plugins.mybot.dockerfile", dockerfile: join(plugins, "mybot", "Dockerfile") },
    ]);
    assert.deepEqual(a.attach, ["bash", "-l"]);
    assert.equal(a.env["MY_AGENT_MODE"], "autonomous");
    assert.deepEqual(await t.leftovers(agent), []);
  });

  test("a broken plugin stops the start: exit 2, file:line:col and path, no value, nothing made", async () => {
    const r = await t.cli(["start", broken, "--detach", "--yes"]);
    assert.equal(r.code, 2, r.stderr);
    const file = join(plugins, "broken", "plugin.json");
    assert.ok(r.stderr.includes(`${file} is not a valid bot-bottle plugin (1 problem):`), r.stderr);
    assert.ok(r.stderr.includes(`${file}:5:12  env.MY_HELPER holds text shaped like`), r.stderr);
    assert.match(r.stderr, /hint: docs\/plugins\.md/);
    assert.doesNotMatch(r.stderr + r.stdout, /LEAKLEAK/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.deepEqual(await t.leftovers(broken), []);
  });

  test("a real bottle from the plugin: its image layer, its file in the home, its variable", async () => {
    const slug = await t.start(agent);
    const r = await t.sh(
      slug,
      'cat /etc/my-agent-layer; cat ~/.my-agent/config.toml; stat -c "%a %U" ~/.my-agent/config.toml; echo "$MY_AGENT_MODE"',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "layered-by-the-plugin",
      'mode = "fast"',
      "600 node",
      "autonomous",
    ]);
  });
});
