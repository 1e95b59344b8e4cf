import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { planBottle } from "../../../src/plan/plan.js";
import { agentEgressEnv } from "../../../src/plan/egress.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import {
  checkPluginEnvName,
  loadPlugin,
  MAX_FILE_BYTES,
  PluginError,
  PluginFileSchema,
} from "../../../src/providers/plugins.js";
import { loadProvider, pluginsDir } from "../../../src/providers/templates.js";
import { example, load } from "../../helpers/manifest.js";

const GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), "bot-bottle-plugins-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let count = 0;
/** A plugins dir holding one plugin: plugin.json's text (or object) and other files. */
async function plugin(
  json: string | Record<string, unknown>,
  files: Record<string, string | Buffer> = {},
): Promise<{ dir: string; name: string; file: string }> {
  const dir = join(root, `dir${++count}`);
  const name = "mybot";
  await mkdir(join(dir, name), { recursive: true });
  const file = join(dir, name, "plugin.json");
  await writeFile(file, typeof json === "string" ? json : JSON.stringify(json, null, 2));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, name, path, ".."), { recursive: true });
    await writeFile(join(dir, name, path), content);
  }
  return { dir, name, file };
}

const MINIMAL = { description: "My bot", interactive: ["my-agent"], headless: ["my-agent", "-p"] };

async function refusal(
  json: string | Record<string, unknown>,
  files: Record<string, string | Buffer> = {},
): Promise<{ err: PluginError; file: string }> {
  const p = await plugin(json, files);
  try {
    await loadPlugin(p.dir, p.name);
  } catch (err) {
    if (err instanceof PluginError) return { err, file: p.file };
    throw err;
  }
  throw new Error("expected the plugin to be refused, but it loaded");
}

describe("plugin.json's problems, like the manifest's", () => {
  test("point at file:line:col with the JSON path, and say what to write", async () => {
    const { err, file } = await refusal(
      [
        "{",
        "  // a comment is fine",
        '  "description": "My bot",',
        '  "interactive": ["my-agent"],',
        '  "headles": ["my-agent"],',
        "}",
      ].join("\n"),
    );
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /is not a valid bot-bottle plugin \(2 problems\)/);
    assert.ok(
      err.message.includes(`${file}:5:3  headles is not a field here — did you mean "headless"?`),
      err.message,
    );
    assert.ok(
      err.message.includes(
        `${file}:1:1  headless is missing — The command line of one headless task`,
      ),
      err.message,
    );
    assert.match(err.hint ?? "", /docs\/plugins\.md/);
  });

  test("not JSON: the line and column of the mistake", async () => {
    const { err, file } = await refusal('{\n  "description": "x"\n  "interactive": []\n}');
    assert.ok(
      err.message.includes(`${file}:3:3  (top level) is not valid JSON: the text here expects ","`),
      err.message,
    );
  });

  test("a credential-shaped variable value is refused at its place, and never printed", async () => {
    const { err, file } = await refusal(
      `{\n  "description": "x", "interactive": ["a"], "headless": ["a"],\n  "env": {\n    "GIT_HELPER": "${GITHUB_TOKEN}"\n  }\n}`,
    );
    assert.ok(
      err.message.includes(`${file}:4:5  env.GIT_HELPER holds text shaped like a GitHub token`),
      err.message,
    );
    assert.match(err.message, /declare a route with "auth"/);
    assert.ok(!err.message.includes(GITHUB_TOKEN));
    assert.ok(!err.message.includes(GITHUB_TOKEN.slice(4, 20)));
  });

  test("a credential in the command line is refused too, unprinted", async () => {
    const { err } = await refusal({ ...MINIMAL, headless: ["my-agent", "--key", GITHUB_TOKEN] });
    assert.match(err.message, /headless\[2\] holds text shaped like a GitHub token/);
    assert.ok(!err.message.includes(GITHUB_TOKEN));
  });

  test("a token pasted as a variable's name is shown as <key>", async () => {
    const { err } = await refusal({ ...MINIMAL, env: { [GITHUB_TOKEN]: "1" } });
    assert.match(err.message, /env\.<key> /);
    assert.ok(!err.message.includes(GITHUB_TOKEN));
  });

  test("refuses the proxy and CA variables bot-bottle sets, its own, and credentials' names", () => {
    for (const name of Object.keys(agentEgressEnv("http://egress:9099", ["egress"])))
      assert.ok(checkPluginEnvName(name), `${name} is refused`);
    for (const name of [
      "HOME",
      "USER",
      "BOT_BOTTLE_SLUG",
      "ALL_PROXY",
      "GH_TOKEN",
      "MY_API_KEY",
      "DB_PASSWORD",
      "AWS_SECRET_ACCESS_KEY",
    ])
      assert.ok(checkPluginEnvName(name), `${name} is refused`);
    for (const name of ["MY_AGENT_MODE", "PATH", "GIT_AUTHOR_NAME", "KEYBOARD_LAYOUT", "EDITOR"])
      assert.equal(checkPluginEnvName(name), undefined, `${name} is allowed`);
  });

  test("a variable that holds a token's placeholder is bot-bottle's to set", async () => {
    const { err } = await refusal({
      ...MINIMAL,
      env: { MY_AGENT_CRED: "x" },
      routes: [{ host: "api.example.com", auth: { token_env: "MY_AGENT_CRED" } }],
    });
    assert.match(err.message, /env\.MY_AGENT_CRED holds the placeholder of a token/);
  });

  test("routes follow the manifest's rules", async () => {
    const { err } = await refusal({
      ...MINIMAL,
      routes: [
        { host: "https://api.example.com" },
        { host: "x.example.com", tls_passthrough: true, auth: { token_env: "T" } },
      ],
    });
    assert.match(err.message, /routes\[0\]\.host includes a scheme/);
    assert.match(err.message, /routes\[1\]\.auth cannot be used with "tls_passthrough": true/);
  });

  test("paths stay in their folders: no absolute path, no '..'", async () => {
    const { err } = await refusal({
      ...MINIMAL,
      dockerfile: "../Dockerfile",
      files: [
        { path: "/etc/profile", source: "a" },
        { path: "../x", source: "/etc/passwd" },
      ],
    });
    assert.match(err.message, /dockerfile must stay inside the plugin folder: no "\.\." segments/);
    assert.match(err.message, /files\[0\]\.path must be relative to the agent's home/);
    assert.match(err.message, /files\[1\]\.path must stay inside the agent's home/);
    assert.match(err.message, /files\[1\]\.source must be relative to the plugin folder/);
  });

  test("a file's source must exist in the folder, not lead out of it, be text and hold no credential", async () => {
    const outside = join(root, "outside.txt");
    await writeFile(outside, "operator's secret file\n");
    const p = await plugin(
      {
        ...MINIMAL,
        files: [
          { path: "a", source: "missing.txt" },
          { path: "b", source: "link.txt" },
          { path: "c", source: "binary.bin" },
          { path: "d", source: "creds.txt" },
          { path: "e", source: "big.txt" },
        ],
      },
      {
        "binary.bin": Buffer.from([0xff, 0xfe, 0x00, 0x80]),
        "creds.txt": `token = "${GITHUB_TOKEN}"\n`,
        "big.txt": "x".repeat(MAX_FILE_BYTES + 1),
      },
    );
    await symlink(outside, join(p.dir, p.name, "link.txt"));
    const err = await loadPlugin(p.dir, p.name).then(
      () => assert.fail("loaded"),
      (e: unknown) => e as PluginError,
    );
    assert.ok(err instanceof PluginError);
    const lines = err.problems.map((x) => `${x.path.join(".")} ${x.message}`);
    assert.match(lines[0] ?? "", /^files\.0\.source does not exist/);
    assert.match(lines[1] ?? "", /^files\.1\.source leads out of the plugin folder/);
    assert.match(lines[2] ?? "", /^files\.2\.source is not UTF-8 text/);
    assert.match(
      lines[3] ?? "",
      /^files\.3\.source is a file that holds text shaped like a GitHub token/,
    );
    assert.match(lines[4] ?? "", /^files\.4\.source is larger than 256 KiB/);
    assert.ok(
      err.problems.every((x) => x.line !== undefined),
      "each problem has its line",
    );
    assert.ok(!err.message.includes(GITHUB_TOKEN));
  });

  test("a missing Dockerfile is named at load, not at build", async () => {
    const { err, file } = await refusal({ ...MINIMAL, dockerfile: "Dockerfile" });
    assert.match(
      err.message,
      new RegExp(`${file.replace(/[.]/g, "\\.")}:\\d+:\\d+  dockerfile does not exist`),
    );
  });

  test("duplicate keys and duplicate file paths are refused", async () => {
    const { err } = await refusal(
      '{"description": "a", "description": "b", "interactive": ["a"], "headless": ["a"], "files": [{"path": "x", "source": "s"}, {"path": "./x", "source": "s"}]}',
      { s: "text" },
    );
    assert.match(err.message, /description appears twice/);
    assert.match(err.message, /files\[1\]\.path is the path of files\[0\] too/);
  });

  test("every field has a sentence", () => {
    const shape = PluginFileSchema._zod.def.shape as unknown as Record<
      string,
      { description?: string }
    >;
    for (const [key, field] of Object.entries(shape)) assert.ok(field.description, key);
  });
});

describe("a valid plugin as a provider", () => {
  const full = {
    description: "My bot on Claude Code",
    base: "claude",
    dockerfile: "image/Dockerfile",
    interactive: ["my-agent", "--tui"],
    headless: ["my-agent", "--print"],
    env: { MY_AGENT_MODE: "autonomous" },
    routes: [
      { host: "api.example.com", paths: ["/v1/"], auth: { token_env: "MY_AGENT_TOKEN" } },
      { host: "api.anthropic.com", methods: ["POST"] },
    ],
    api_key: { env: "MY_AGENT_KEY", host: "API.example.com" },
    files: [{ path: ".my-agent/config.toml", source: "config.toml", mode: "0600" }],
    skills_dir: ".my-agent/skills",
  };
  const session = { home: "/home/node", workspace: "/home/node/workspace" };

  test("carries its commands, variables, routes, key, files, layer and trusted files", async () => {
    const p = await plugin(full, {
      "image/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
      "config.toml": 'mode = "fast"\n',
    });
    const provider = await loadPlugin(p.dir, p.name);
    const folder = join(p.dir, p.name);
    assert.equal(provider.name, "mybot");
    assert.equal(provider.summary, "My bot on Claude Code");
    assert.equal(provider.image, "claude");
    assert.equal(provider.skillsDir, ".my-agent/skills");
    assert.deepEqual(provider.interactive(session), ["my-agent", "--tui"]);
    assert.deepEqual(provider.headless(session), ["my-agent", "--print"]);
    // The base's variables, and the plugin's.
    assert.deepEqual(provider.env(session), {
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      DISABLE_AUTOUPDATER: "1",
      MY_AGENT_MODE: "autonomous",
    });
    // The plugin's route for the base's host replaces the base's.
    const routes = provider.routes();
    assert.deepEqual(
      routes.map((r) => r.host),
      ["api.example.com", "api.anthropic.com"],
    );
    assert.deepEqual(routes[0]?.auth, { header: "authorization", token_env: "MY_AGENT_TOKEN" });
    assert.deepEqual(routes[1]?.methods, ["POST"]);
    assert.equal(routes[1]?.auth, undefined);
    assert.deepEqual(provider.apiKey, { env: "MY_AGENT_KEY", host: "api.example.com" });
    const file = provider.files(session).find((f) => f.path === "/home/node/.my-agent/config.toml");
    assert.deepEqual(file && { content: file.content, mode: file.mode }, {
      content: 'mode = "fast"\n',
      mode: 0o600,
    });
    assert.ok(
      provider.files(session).some((f) => f.path === "/home/node/.claude.json"),
      "the base's files stay",
    );
    assert.deepEqual(provider.layers, [
      { what: "plugins.mybot.dockerfile", dockerfile: join(folder, "image/Dockerfile") },
    ]);
    assert.deepEqual(provider.trusted, [
      { what: "plugins.mybot", path: folder },
      { what: "plugins.mybot (plugin.json)", path: p.file },
      { what: "plugins.mybot.dockerfile", path: join(folder, "image/Dockerfile") },
      { what: "plugins.mybot.files[0].source", path: join(folder, "config.toml") },
    ]);
  });

  test("a minimal plugin is on shell: its image, the prompt file, no routes", async () => {
    const p = await plugin(MINIMAL);
    const provider = await loadPlugin(p.dir, p.name);
    assert.equal(provider.image, "shell");
    assert.deepEqual(provider.routes(), []);
    assert.deepEqual(provider.layers, []);
    assert.equal(provider.apiKey, undefined);
    assert.deepEqual(provider.env({ ...session, prompt: "hi" }), {
      BOT_BOTTLE_PROMPT_FILE: "/home/node/.bot-bottle/prompt.md",
    });
  });

  test("in a plan: its layer comes first in the cascade, its routes and key placeholders join the bottle's", async () => {
    const p = await plugin(full, {
      "image/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
      "config.toml": "x\n",
    });
    const m = example();
    m.agents.worker = { template: "mybot", bottle: "sandbox", dockerfile: "agent.Dockerfile" };
    m.bottles.sandbox.dockerfile = "/etc/bb/bottle.Dockerfile";
    const catalog = {
      builtins: ["claude", "codex", "shell"],
      plugins: ["mybot"],
      pluginsDir: p.dir,
    };
    const manifest = load(m, catalog, "/p/bot-bottle.json").select("worker");
    const plan = planBottle(manifest, {
      id: "7k2m9x",
      workspace: "/p/site",
      stateRoot: "/state",
      images: { bundle: "bot-bottle/bundle:latest" },
      workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
      provider: await loadProvider("mybot", { BOT_BOTTLE_PLUGINS_DIR: p.dir }),
    });
    const a = plan.agentContainer;
    assert.equal(a.build.template, "claude");
    assert.deepEqual(
      a.build.layers.map((l) => l.what),
      ["plugins.mybot.dockerfile", "agents.worker.dockerfile", "bottles.sandbox.dockerfile"],
    );
    assert.match(a.build.ref, /^bot-bottle\/claude-custom:[0-9a-f]{12}$/);
    assert.deepEqual(a.attach, ["my-agent", "--tui"]);
    assert.equal(a.env["MY_AGENT_MODE"], "autonomous");
    assert.equal(a.env["HTTPS_PROXY"], "http://egress:9099");
    assert.equal(a.placeholderEnv["MY_AGENT_KEY"], "MY_AGENT_TOKEN");
    assert.ok(plan.egress.routes.some((r) => r.host === "api.example.com"));
    assert.ok(plan.agent.templateHosts.includes("api.example.com"));
    assert.ok(a.provision.files.some((f) => f.path === "/home/node/.my-agent/config.toml"));
  });

  test("a file in the agent's workspace is refused when the bottle is planned", async () => {
    const p = await plugin(
      { ...MINIMAL, files: [{ path: "workspace/AGENTS.md", source: "a.md" }] },
      { "a.md": "hi" },
    );
    const provider = await loadPlugin(p.dir, p.name);
    assert.throws(
      () => provider.files(session),
      (e: unknown) =>
        e instanceof PluginError &&
        /files\[0\]\.path lies in the agent's workspace/.test(e.message),
    );
  });
});

describe("finding plugins", () => {
  test("the plugins folder is ~/.bot-bottle/contrib, from the HOME passed in; BOT_BOTTLE_PLUGINS_DIR wins", () => {
    assert.equal(pluginsDir({ HOME: "/home/op" }), "/home/op/.bot-bottle/contrib");
    assert.equal(pluginsDir({ HOME: "/home/op", BOT_BOTTLE_PLUGINS_DIR: "/x" }), "/x");
  });

  test("loadProvider: a built-in without reading a thing, a missing plugin named with its file, a bad name unprinted", async () => {
    assert.equal(
      (await loadProvider("codex", { BOT_BOTTLE_PLUGINS_DIR: "/nonexistent" })).name,
      "codex",
    );
    await assert.rejects(
      loadProvider("ghost", { BOT_BOTTLE_PLUGINS_DIR: "/nonexistent" }),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(
          e.message,
          /no template named "ghost".*\/nonexistent\/ghost\/plugin\.json does not exist/,
        );
        return true;
      },
    );
    await assert.rejects(
      loadProvider("../../etc", { BOT_BOTTLE_PLUGINS_DIR: "/nonexistent" }),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.doesNotMatch(e.message, /etc/);
        return true;
      },
    );
  });

  test("docs/plugins.md describes every field", async () => {
    const doc = await readFile(join(PACKAGE_ROOT, "docs", "plugins.md"), "utf8");
    const shape = PluginFileSchema._zod.def.shape as unknown as Record<string, unknown>;
    for (const key of [
      ...Object.keys(shape).filter((k) => k !== "$schema"),
      "path",
      "source",
      "mode",
      "env",
      "host",
    ])
      assert.ok(doc.includes(`\`${key}\``), `docs/plugins.md mentions \`${key}\``);
  });
});
