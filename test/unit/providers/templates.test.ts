import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { planBottle } from "../../../src/plan/plan.js";
import { describePlan } from "../../../src/plan/summary.js";
import { applyTemplate } from "../../../src/plan/template.js";
import { BUILTIN_PROVIDERS } from "../../../src/providers/templates.js";
import { example, load } from "../../helpers/manifest.js";

const input = {
  id: "7k2m9x",
  workspace: "/p/site",
  stateRoot: "/state/bot-bottle",
  images: { bundle: "bot-bottle/bundle:latest" },
  workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
};

function agent(template: string, mutate: (m: Record<string, any>) => void = () => undefined) {
  const m = example();
  m.agents.worker = { template, bottle: "sandbox" };
  mutate(m);
  return load(m, undefined, "/p/bot-bottle.json").select("worker");
}

describe("the claude template", () => {
  test("adds the model API route with its key from $ANTHROPIC_API_KEY, and a placeholder for it", () => {
    const plan = planBottle(agent("claude"), input);
    const route = plan.egress.routes.find((r) => r.host === "api.anthropic.com");
    assert.deepEqual(route?.auth, { header: "x-api-key", tokenEnv: "ANTHROPIC_API_KEY" });
    assert.deepEqual(plan.agentContainer.placeholderEnv, {
      ANTHROPIC_API_KEY: "ANTHROPIC_API_KEY",
    });
    assert.deepEqual(plan.bundle.secretEnv, ["ANTHROPIC_API_KEY"]);
    assert.deepEqual(plan.agent.templateHosts, ["api.anthropic.com"]);
    assert.equal(plan.agentContainer.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1");
    assert.ok(
      describePlan(plan).some(
        (l) => l.includes("api.anthropic.com") && l.includes("claude template"),
      ),
    );
  });

  test("runs Claude Code with full autonomy, interactively and headless, with the model and prompt", () => {
    const a = planBottle(
      agent("claude", (m) => {
        Object.assign(m.agents.worker, { model: "claude-x", prompt: "Be brief." });
      }),
      input,
    ).agentContainer;
    assert.deepEqual(a.attach, [
      "claude",
      "--dangerously-skip-permissions",
      "--model",
      "claude-x",
      "--append-system-prompt-file",
      "/home/node/.bot-bottle/prompt.md",
    ]);
    assert.deepEqual(a.headless, [...a.attach, "-p"]);
    const prompt = a.provision.files.find((f) => f.path === "/home/node/.bot-bottle/prompt.md");
    assert.equal(prompt?.content, "Be brief.");
    const settings = a.provision.files.find((f) => f.path === "/home/node/.claude.json");
    assert.ok(settings, "Claude Code's first-run questions are answered");
    const parsed = JSON.parse(settings.content) as {
      projects: Record<string, { hasTrustDialogAccepted: boolean }>;
    };
    assert.equal(parsed.projects["/home/node/workspace"]?.hasTrustDialogAccepted, true);
  });

  test("a bottle's own route for the model API replaces the template's", () => {
    const m = agent("claude", (d) => {
      d.bottles.sandbox.egress = {
        routes: [
          {
            host: "API.anthropic.com",
            paths: ["/v1/"],
            auth: { header: "x-api-key", token_env: "MY_KEY" },
          },
        ],
      };
    });
    const plan = planBottle(m, input);
    assert.equal(plan.egress.routes.length, 1);
    assert.deepEqual(plan.egress.routes[0]?.paths, ["/v1/"]);
    assert.deepEqual(plan.agentContainer.placeholderEnv, {
      MY_KEY: "MY_KEY",
      ANTHROPIC_API_KEY: "MY_KEY",
    });
    assert.deepEqual(plan.agent.templateHosts, []);
  });

  test("the template's routes come after the bottle's own, which stay as written", () => {
    const m = agent("claude", (d) => {
      d.bottles.sandbox.egress = { routes: [{ host: "registry.npmjs.org", methods: ["GET"] }] };
    });
    const routes = applyTemplate(m).manifest.bottle.egress.routes;
    assert.deepEqual(
      routes.map((r) => r.host),
      ["registry.npmjs.org", "api.anthropic.com"],
    );
  });
});

describe("the codex template", () => {
  test("keeps codex to HTTPS on api.openai.com with a provider entry of its own", () => {
    const a = planBottle(
      agent("codex", (m) => (m.agents.worker.model = "gpt-fake")),
      input,
    );
    const route = a.egress.routes.find((r) => r.host === "api.openai.com");
    assert.deepEqual(route?.auth, {
      header: "authorization",
      scheme: "Bearer",
      tokenEnv: "OPENAI_API_KEY",
    });
    const config = a.agentContainer.provision.files.find(
      (f) => f.path === "/home/node/.codex/config.toml",
    );
    assert.ok(config);
    for (const line of [
      'model = "gpt-fake"',
      'model_provider = "bot-bottle"',
      'base_url = "https://api.openai.com/v1"',
      'env_key = "OPENAI_API_KEY"',
      'wire_api = "responses"',
      "plugins = false",
      '[projects."/home/node/workspace"]',
    ])
      assert.ok(config.content.split("\n").includes(line), `config.toml has ${line}`);
    assert.deepEqual(a.agentContainer.headless, [
      "codex",
      "exec",
      "--dangerously-bypass-approvals-and-sandbox",
      "--skip-git-repo-check",
    ]);
  });

  test("writes the prompt as codex's AGENTS.md", () => {
    const a = planBottle(
      agent("codex", (m) => (m.agents.worker.prompt = "Say hi.")),
      input,
    ).agentContainer;
    assert.equal(
      a.provision.files.find((f) => f.path === "/home/node/.codex/AGENTS.md")?.content,
      "Say hi.",
    );
  });
});

describe("every built-in template", () => {
  for (const p of BUILTIN_PROVIDERS)
    test(`${p.name}: its image is its own, and no variable it sets holds a secret-looking value`, () => {
      const plan = planBottle(agent(p.name), input);
      assert.equal(plan.agentContainer.build.template, p.image);
      assert.equal(plan.agentContainer.image, `bot-bottle/${p.image}:latest`);
      for (const value of Object.values(plan.agentContainer.env))
        assert.doesNotMatch(value, /sk-|ghp_|Bearer /);
    });
});

describe("the Dockerfile cascade", () => {
  test("layers the agent's then the bottle's Dockerfile on the template's image, named by their paths", () => {
    const m = agent("claude", (d) => {
      d.agents.worker.dockerfile = "images/agent.Dockerfile";
      d.bottles.sandbox.dockerfile = "/etc/bb/bottle.Dockerfile";
    });
    const a = planBottle(m, input).agentContainer;
    assert.deepEqual(a.build.layers, [
      { what: "agents.worker.dockerfile", dockerfile: "/p/images/agent.Dockerfile" },
      { what: "bottles.sandbox.dockerfile", dockerfile: "/etc/bb/bottle.Dockerfile" },
    ]);
    assert.match(a.build.ref, /^bot-bottle\/claude-custom:[0-9a-f]{12}$/);
    assert.equal(a.image, a.build.ref);
    const other = planBottle(
      agent("claude", (d) => (d.agents.worker.dockerfile = "images/other.Dockerfile")),
      input,
    ).agentContainer;
    assert.notEqual(other.build.ref, a.build.ref);
  });

  test("the agent's image for another uid is built on the cascade's end", () => {
    const a = planBottle(
      agent("claude", (d) => (d.agents.worker.dockerfile = "a.Dockerfile")),
      {
        ...input,
        workspaceOwner: { uid: 1234, gid: 1235, mode: 0o40755 },
      },
    ).agentContainer;
    assert.equal(a.baseImage, a.build.ref);
    assert.match(a.image, /:uid1234-gid1235$/);
  });
});

describe("registering the bundle's MCP servers", () => {
  const session = {
    home: "/home/node",
    workspace: "/home/node/workspace",
    mcpServers: { supervise: "http://supervise:9100/mcp" },
  };

  test("claude: user-scope mcpServers in ~/.claude.json", () => {
    const file = BUILTIN_PROVIDERS.find((p) => p.name === "claude")
      ?.files(session)
      .find((f) => f.path === "/home/node/.claude.json");
    const parsed = JSON.parse(file?.content ?? "{}") as { mcpServers?: unknown };
    assert.deepEqual(parsed.mcpServers, {
      supervise: { type: "http", url: "http://supervise:9100/mcp" },
    });
  });

  test("codex: [mcp_servers.supervise] in ~/.codex/config.toml", () => {
    const file = BUILTIN_PROVIDERS.find((p) => p.name === "codex")
      ?.files(session)
      .find((f) => f.path === "/home/node/.codex/config.toml");
    assert.match(
      file?.content ?? "",
      /^\[mcp_servers\."supervise"\]\nurl = "http:\/\/supervise:9100\/mcp"$/m,
    );
  });

  test("a bottle whose bundle serves supervise registers it; `supervise: false` registers nothing", () => {
    const servers = (plan: ReturnType<typeof planBottle>) => {
      const file = plan.agentContainer.provision.files.find((f) => f.path.endsWith(".claude.json"));
      return (JSON.parse(file?.content ?? "{}") as { mcpServers?: unknown }).mcpServers;
    };
    assert.deepEqual(servers(planBottle(agent("claude"), input)), {
      supervise: { type: "http", url: "http://supervise:9100/mcp" },
    });
    const off = planBottle(
      agent("claude", (m) => (m.bottles.sandbox.supervise = false)),
      input,
    );
    assert.equal(servers(off), undefined);
    assert.equal(off.bundle.ports["supervise"], undefined);
  });
});

describe("a template's own files are trusted", () => {
  test("a provider's trusted files (a plugin's) join the plan's, so start refuses them in a workspace", () => {
    const shellProvider = BUILTIN_PROVIDERS.find((p) => p.name === "shell");
    assert.ok(shellProvider);
    const plan = planBottle(agent("shell"), {
      ...input,
      provider: {
        ...shellProvider,
        name: "mine",
        trusted: [{ what: "plugins.mine (plugin.json)", path: "/p/site/plugin.json" }],
      },
    });
    assert.ok(
      plan.trusted.some((f) => f.path === "/p/site/plugin.json"),
      "the plugin's file is among the files start checks",
    );
    assert.ok(
      plan.agentContainer.readOnlyFiles.some((f) => f.host === "/p/site/plugin.json"),
      "one directly in the workspace is bound read-only over itself",
    );
  });
});
