import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { gitGateConfigFor, keyOf, upstreamSpellings } from "../../../src/plan/git.js";
import { planBottle } from "../../../src/plan/plan.js";
import { provisionScript } from "../../../src/provision/agent.js";
import { parseGitGateConfig } from "../../../src/shared/git-gate-config.js";
import { parseInitConfig } from "../../../src/shared/init-config.js";
import { gitEntry, HOST_KEY, load } from "../../helpers/manifest.js";

const input = {
  id: "7k2m9x",
  workspace: "/p/site",
  stateRoot: "/state/bot-bottle",
  images: { bundle: "bot-bottle/bundle:latest" },
  workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
};

function gated(
  git: unknown[],
  egress: Record<string, unknown> = {},
  more: Record<string, unknown> = {},
) {
  return load(
    {
      agents: { coder: { template: "shell", bottle: "dev" } },
      bottles: { dev: { git, egress, ...more } },
    },
    undefined,
    "/p/bot-bottle.json",
  ).select("coder");
}

describe("planning the git gate", () => {
  test("a bottle with git entries runs the gate, serves its config and leads the agent's git to it", () => {
    const plan = planBottle(
      gated([gitEntry("app"), gitEntry("docs", { push: { refs: ["refs/heads/docs/*"] } })]),
      input,
    );
    const init = parseInitConfig(plan.files["bundle/init.json"] ?? "", "init.json");
    assert.deepEqual(
      init.daemons.map((d) => [d.name, d.port]),
      [
        ["egress", 9099],
        ["git-gate", 9418],
        ["supervise", 9100],
      ],
    );
    const config = parseGitGateConfig(plan.files["bundle/git-gate.json"] ?? "", "git-gate.json");
    assert.deepEqual(
      config.repos.map((r) => [r.name, r.upstream.kind, r.push.refs]),
      [
        ["app", "ssh", ["refs/heads/*"]],
        ["docs", "ssh", ["refs/heads/docs/*"]],
      ],
    );
    const app = config.repos[0]?.upstream;
    assert.ok(app?.kind === "ssh");
    assert.deepEqual(
      [app.user, app.host, app.port, app.path],
      ["git", "git.example.com", 22, "team/app.git"],
    );
    assert.equal(app.knownHostKey, HOST_KEY);
    // Each key travels from its file to the bundle alone, and the gate scans pushes for it.
    assert.deepEqual(app.key, { provider: "static", env: "BOT_BOTTLE_GIT_KEY_0" });
    assert.equal(plan.bundle.fileSecretEnv["BOT_BOTTLE_GIT_KEY_1"], "/p/keys/deploy");
    assert.ok(config.heldSecretEnv.includes("BOT_BOTTLE_GIT_KEY_0"));
    assert.ok(config.heldSecretEnv.includes("BOT_BOTTLE_CA_KEY"));
    assert.equal(plan.bundle.mirrorDir, "git");
    assert.deepEqual(plan.agentContainer.provision.gitUrls?.[0]?.url, "git://git-gate/app.git");
    assert.ok(
      plan.agentContainer.provision.gitUrls?.[0]?.insteadOf.includes(
        "git@git.example.com:team/app.git",
      ),
    );
  });

  test("an HTTPS upstream is dialled as parsed, with its token by name only", () => {
    const plan = planBottle(
      gated([
        {
          name: "web",
          upstream: "https://Git.Example.com:8443/team/web.git",
          token_env: "GIT_TOKEN",
        },
      ]),
      input,
    );
    const config = parseGitGateConfig(plan.files["bundle/git-gate.json"] ?? "", "git-gate.json");
    assert.deepEqual(config.repos[0]?.upstream, {
      kind: "https",
      url: "https://git.example.com:8443/team/web.git",
      host: "git.example.com",
      port: 8443,
      username: "x-access-token",
      tokenEnv: "GIT_TOKEN",
    });
    assert.ok(plan.bundle.secretEnv.includes("GIT_TOKEN"));
    assert.ok(config.heldSecretEnv.includes("GIT_TOKEN"));
  });

  test("no git entries: no gate daemon, no rewrites; with supervise, an empty gate config and a mirrors folder for a grant", () => {
    const plan = planBottle(gated([]), input);
    assert.equal(plan.bundle.ports["git-gate"], undefined);
    assert.equal(plan.agentContainer.provision.gitUrls, undefined);
    const init = JSON.parse(plan.files["bundle/init.json"] ?? "{}") as {
      daemons: { name: string }[];
    };
    assert.ok(!init.daemons.some((d) => d.name === "git-gate"));
    const gate = JSON.parse(plan.files["bundle/git-gate.json"] ?? "{}") as { repos: unknown[] };
    assert.deepEqual(gate.repos, []);
    assert.equal(plan.bundle.mirrorDir, "git");

    const closed = planBottle(gated([], {}, { supervise: false }), input);
    assert.equal(closed.files["bundle/git-gate.json"], undefined);
    assert.equal(closed.bundle.mirrorDir, undefined);
  });

  test("a pinned key given as a known_hosts line keeps only its type and key", () => {
    assert.equal(keyOf(`github.com ${HOST_KEY}`), HOST_KEY);
    assert.equal(keyOf(`${HOST_KEY} comment`), HOST_KEY);
  });

  test("an upstream is met however a workspace spells it", () => {
    const s = upstreamSpellings("git@github.com:org/app.git");
    for (const spelling of [
      "git@github.com:org/app.git",
      "git@github.com:org/app",
      "ssh://git@github.com/org/app.git",
      "https://github.com/org/app",
      "https://github.com/org/app.git",
    ])
      assert.ok(s.includes(spelling), spelling);
    // A server's own folder has no https twin.
    assert.deepEqual(upstreamSpellings("ssh://git@host:2222/srv/git/x.git"), [
      "ssh://git@host:2222/srv/git/x.git",
      "ssh://git@host:2222/srv/git/x",
    ]);
  });

  test("the gate's config merges every entry's extra_hosts", () => {
    const m = gated([
      gitEntry("app", { extra_hosts: { "git.example.com": "10.1.2.3" } }),
      gitEntry("docs", { extra_hosts: { "other.example.com": "10.1.2.4" } }),
    ]);
    const config = gitGateConfigFor(m.bottle, "coder-7k2m9x", []);
    assert.deepEqual(config.extraHosts, {
      "git.example.com": "10.1.2.3",
      "other.example.com": "10.1.2.4",
    });
  });

  test("provisioning writes each rewrite and reads it back for the report", () => {
    const script = provisionScript([], {
      files: [],
      skills: [],
      gitUrls: [{ url: "git://git-gate/app.git", insteadOf: ["git@h:o/app.git", "it's"] }],
    });
    assert.match(
      script,
      /git config --global --unset-all 'url.git:\/\/git-gate\/app.git.insteadOf' \|\| true/,
    );
    assert.match(script, /--add 'url.git:\/\/git-gate\/app.git.insteadOf' 'git@h:o\/app.git'/);
    assert.match(script, /'it'\\''s'/, "every spelling is one shell word");
    assert.match(script, /--get-all 'url.git:\/\/git-gate\/app.git.insteadOf' \| sed/);
  });
});
