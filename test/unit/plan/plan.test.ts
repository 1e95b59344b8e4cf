import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { newId, planBottle } from "../../../src/plan/plan.js";
import { parseInitConfig } from "../../../src/shared/init-config.js";
import { describePlan, planNotes } from "../../../src/plan/summary.js";
import { example, load, NO_PLUGINS } from "../../helpers/manifest.js";

function manifest(mutate: (m: Record<string, any>) => void = () => undefined) {
  const m = example();
  mutate(m);
  return load(m, undefined, "/p/bot-bottle.json");
}

const input = {
  id: "7k2m9x",
  workspace: "/p/site",
  stateRoot: "/state/bot-bottle",
  images: { bundle: "bot-bottle/bundle:latest" },
  workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
};

describe("planning a bottle", () => {
  test("derives the slug, names and state dir from the agent and the id", () => {
    const plan = planBottle(manifest().select("probe"), input);
    assert.equal(plan.slug, "probe-7k2m9x");
    assert.equal(plan.stateDir, "/state/bot-bottle/probe-7k2m9x");
    assert.equal(plan.agentContainer.name, "bot-bottle-probe-7k2m9x-agent");
    assert.equal(plan.bundle.name, "bot-bottle-probe-7k2m9x-bundle");
    assert.ok(plan.networks.internal, "a Docker bottle has an internal network");
    assert.equal(plan.networks.internal.internal, true);
    assert.equal(plan.networks.egress.internal, false);
    assert.ok(
      plan.networks.internal.bridge.length <= 15,
      "Linux interface names are at most 15 characters",
    );
  });

  test("labels everything with the slug, the role and the label schema", () => {
    const plan = planBottle(manifest().select("probe"), input);
    for (const [role, labels] of [
      ["agent", plan.agentContainer.labels],
      ["bundle", plan.bundle.labels],
      ["internal-network", plan.networks.internal?.labels ?? {}],
      ["egress-network", plan.networks.egress.labels],
    ] as const) {
      assert.equal(labels["dev.bot-bottle.slug"], "probe-7k2m9x");
      assert.equal(labels["dev.bot-bottle.role"], role);
      assert.equal(labels["dev.bot-bottle.schema"], "1");
    }
  });

  test("runs the agent as node in the workspace, with limits", () => {
    const a = planBottle(manifest().select("probe"), input).agentContainer;
    assert.equal(a.user, "node");
    assert.equal(a.env["HOME"], "/home/node");
    assert.equal(a.workdir, "/home/node/workspace");
    assert.ok(a.limits.pids > 0);
  });

  test("limits the bundle's memory, processes and CPU, and shows the limits in the preflight", () => {
    const plan = planBottle(manifest().select("probe"), input);
    assert.deepEqual(plan.bundle.limits, { memory: "256m", pids: 256, cpus: 1 });
    assert.ok(describePlan(plan).some((l) => /memory 256m, pids 256, cpus 1/.test(l)));
  });

  test("lists the host files the operator trusts: the manifest, trust_ca, key files", () => {
    const m = manifest((d) => {
      d.agents.probe.bottle = "dev";
      d.bottles.dev.egress.trust_ca = "certs/ca.pem";
    }).select("probe");
    const plan = planBottle(m, input);
    assert.deepEqual(
      plan.trusted.map((f) => f.what),
      ["the manifest", "bottles.dev.egress.trust_ca", "bottles.dev.git[0].key.path"],
    );
    assert.equal(plan.trusted[1]?.path, "/p/certs/ca.pem");
    assert.match(plan.files["trusted.json"] ?? "", /"the manifest"/);
  });

  test("names the secrets the bundle needs, never their values", () => {
    const m = manifest((d) => {
      d.agents.probe.bottle = "dev";
    }).select("probe");
    const plan = planBottle(m, input);
    assert.deepEqual(plan.bundle.secretEnv, ["ANTHROPIC_API_KEY"]);
    assert.ok(!JSON.stringify(plan).includes("sk-"), "no token shape anywhere in the plan");
  });

  test("carries the agent's git identity to provisioning (git config --global as node)", () => {
    const plan = planBottle(
      manifest((d) => (d.agents.probe.git_user = { name: "P", email: "p@x.io" })).select("probe"),
      input,
    );
    assert.deepEqual(plan.agentContainer.provision.gitUser, { name: "P", email: "p@x.io" });
  });

  test("writes the init config the bundle runs, listing each daemon on the plan's port", () => {
    const plan = planBottle(manifest().select("probe"), input);
    const init = JSON.parse(plan.files["bundle/init.json"] ?? "") as {
      daemons: { name: string; port: number }[];
    };
    assert.deepEqual(
      init.daemons.map((d) => [d.name, d.port]),
      [
        ["egress", plan.bundle.ports["egress"]],
        ["supervise", plan.bundle.ports["supervise"]],
      ],
    );
    assert.equal(plan.bundle.ports["supervise"], 9100);
  });

  test("has init probe supervise's health endpoint, and no daemon that has none", () => {
    const plan = planBottle(manifest().select("probe"), input);
    const init = parseInitConfig(plan.files["bundle/init.json"] ?? "", "init.json");
    assert.deepEqual(
      init.daemons.map((d) => [d.name, d.probe]),
      [
        ["egress", undefined],
        ["supervise", { port: 9100, path: "/health" }],
      ],
    );
    assert.equal(plan.bundle.healthPort, init.healthPort);
  });

  test("probes nothing when the bottle turns supervise off", () => {
    const plan = planBottle(
      manifest((m) => (m.bottles.sandbox.supervise = false)).select("probe"),
      input,
    );
    const init = parseInitConfig(plan.files["bundle/init.json"] ?? "", "init.json");
    assert.deepEqual(
      init.daemons.map((d) => d.name),
      ["egress"],
    );
    assert.ok(init.daemons.every((d) => d.probe === undefined));
  });

  test("is pure: the same input gives the same plan", () => {
    const m = manifest().select("probe");
    assert.deepEqual(planBottle(m, input), planBottle(m, input));
  });

  test("refuses a user plugin's template, which cannot start bottles yet, saying what works", () => {
    const m = example();
    m.agents.probe.template = "mine";
    const index = load(m, { ...NO_PLUGINS, plugins: ["mine"] }, "/p/bot-bottle.json");
    assert.throws(
      () => planBottle(index.select("probe"), input),
      /"mine" template is not built in/,
    );
  });

  test("makes ids of lower-case letters and digits", () => {
    const id = newId((n) => Buffer.from(Array.from({ length: n }, (_, i) => i * 37)));
    assert.match(id, /^[a-z0-9]{6}$/);
  });

  test("the preflight summary names every part, and notes a workspace the agent cannot write", () => {
    const plan = planBottle(manifest().select("probe"), input);
    const text = describePlan(plan).join("\n");
    for (const part of [
      plan.slug,
      plan.agentContainer.image,
      plan.bundle.image,
      plan.networks.egress.name,
      plan.stateDir,
    ])
      assert.ok(text.includes(part), part);
  });

  test("the agent writes its workspace as the folder's owner, never as root", () => {
    const as = (owner: { uid: number; gid: number; mode: number }) =>
      planBottle(manifest().select("probe"), { ...input, workspaceOwner: owner });
    const mine = as({ uid: 1234, gid: 1235, mode: 0o40700 });
    assert.deepEqual([mine.agentContainer.uid, mine.agentContainer.gid], [1234, 1235]);
    assert.equal(mine.workspace.grant, undefined);
    assert.match(planNotes(mine)[0] ?? "", /uid 1234 .*the workspace's owner/);

    const root = as({ uid: 0, gid: 0, mode: 0o40700 });
    assert.deepEqual([root.agentContainer.uid, root.agentContainer.gid], [1000, 1000]);
    assert.deepEqual(root.workspace.grant, { uid: 1000 }, "a root-owned folder gets an ACL");
    assert.match(planNotes(root)[0] ?? "", /belongs to root.*ACL/);

    const open = as({ uid: 0, gid: 0, mode: 0o40777 });
    assert.equal(open.workspace.grant, undefined, "everyone may write it already");
    assert.equal(open.agentContainer.uid, 1000);
  });

  test("plans the egress: routes normalised, the agent pointed at the proxy, placeholders by name", () => {
    const m = manifest((d) => {
      d.agents.probe.bottle = "dev";
      d.bottles.dev.egress.routes.push({ host: "*.Example.COM." });
      d.bottles.dev.egress.extra_hosts = { "Build.Internal": "10.0.0.7" };
    }).select("probe");
    const plan = planBottle(m, input);
    assert.deepEqual(
      plan.egress.routes.map((r) => r.host),
      ["api.anthropic.com", "registry.npmjs.org", "*.example.com"],
    );
    assert.deepEqual(plan.egress.routes[0]?.auth, {
      header: "x-api-key",
      tokenEnv: "ANTHROPIC_API_KEY",
    });
    assert.deepEqual(plan.egress.extraHosts, { "build.internal": "10.0.0.7" });
    assert.deepEqual(JSON.parse(plan.files["bundle/egress.json"] ?? ""), plan.egress);
    const env = plan.agentContainer.env;
    assert.equal(env["HTTPS_PROXY"], "http://egress:9099");
    assert.equal(env["http_proxy"], "http://egress:9099");
    assert.match(env["NO_PROXY"] ?? "", /(^|,)egress(,|$)/);
    assert.ok(env["NODE_EXTRA_CA_CERTS"] && env["SSL_CERT_FILE"] && env["GIT_SSL_CAINFO"]);
    assert.deepEqual(plan.agentContainer.placeholderEnv, {
      ANTHROPIC_API_KEY: "ANTHROPIC_API_KEY",
    });
    assert.equal(env["ANTHROPIC_API_KEY"], undefined, "values are set at launch, not in the plan");
    // The CA key, and the git gate's key read from the operator's key file: bundle-only.
    assert.deepEqual(Object.keys(plan.bundle.fileSecretEnv), [
      "BOT_BOTTLE_CA_KEY",
      "BOT_BOTTLE_GIT_KEY_0",
    ]);
    assert.match(
      plan.bundle.fileSecretEnv["BOT_BOTTLE_GIT_KEY_0"] ?? "",
      /^\/.*bot-bottle-deploy-key$/,
    );
    assert.ok(!Object.keys(env).some((k) => k.startsWith("BOT_BOTTLE_GIT_KEY")));
    const summary = describePlan(plan).join("\n");
    assert.match(summary, /3 routes; everything else is refused/);
    assert.match(summary, /x-api-key: \$ANTHROPIC_API_KEY \(the agent holds a placeholder\)/);
  });
});
