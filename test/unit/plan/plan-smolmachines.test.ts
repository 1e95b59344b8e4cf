import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../../src/errors.js";
import { BUNDLE_ALIASES, planBottle } from "../../../src/plan/plan.js";
import { example, load } from "../../helpers/manifest.js";

function manifest(mutate: (m: Record<string, any>) => void = () => undefined, file?: string) {
  const m = example();
  mutate(m);
  return load(m, undefined, file ?? "/p/bot-bottle.json");
}

const docker = {
  id: "7k2m9x",
  workspace: "/p/site",
  stateRoot: "/state/bot-bottle",
  images: { bundle: "bot-bottle/bundle:latest" },
  workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
};
const smol = { ...docker, backend: "smolmachines" as const };

/** smolvm's rule for a machine name. */
function isSmolvmMachineName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name) && name.length <= 128 && !name.includes("--");
}

function withAgent(name: string) {
  return manifest((d) => (d.agents[name] = { template: "shell", bottle: "sandbox" })).select(name);
}

describe("planning a smolmachines bottle", () => {
  test("gives the agent no internal network and the bundle no aliases to be reached by", () => {
    const plan = planBottle(manifest().select("probe"), smol);
    assert.equal(plan.backend, "smolmachines");
    assert.equal(plan.networks.internal, undefined);
    assert.deepEqual(plan.bundle.aliases, []);
    assert.equal(plan.networks.egress.internal, false, "the bundle keeps its way out");
  });

  test("points every proxy variable of the agent at the bundle address launch fills in", () => {
    const env = planBottle(manifest().select("probe"), smol).agentContainer.env;
    for (const k of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"])
      assert.equal(env[k], "http://{bundle:9099}", k);
  });

  test("lets no bundle alias bypass the proxy, since a VM cannot resolve one", () => {
    const env = planBottle(manifest().select("probe"), smol).agentContainer.env;
    for (const k of ["NO_PROXY", "no_proxy"]) {
      const bypass = (env[k] ?? "").split(",");
      assert.ok(bypass.includes("localhost"), `${k} still keeps localhost off the proxy`);
      for (const alias of BUNDLE_ALIASES) assert.ok(!bypass.includes(alias), `${k}: ${alias}`);
    }
  });

  test("labels the agent and the bundle with the smolmachines backend", () => {
    const plan = planBottle(manifest().select("probe"), smol);
    assert.equal(plan.agentContainer.labels["dev.bot-bottle.backend"], "smolmachines");
    assert.equal(plan.bundle.labels["dev.bot-bottle.backend"], "smolmachines");
  });

  test("labels the bundle with the ports the agent reaches it on", () => {
    const plan = planBottle(manifest().select("probe"), smol);
    assert.equal(plan.bundle.labels["dev.bot-bottle.ports"], "egress=9099");
  });

  test("takes the backend from the bottle when the command line names none", () => {
    const m = manifest((d) => (d.bottles.sandbox = { backend: "smolmachines" })).select("probe");
    const plan = planBottle(m, docker);
    assert.equal(plan.backend, "smolmachines");
    assert.equal(plan.networks.internal, undefined);
    assert.equal(plan.agentContainer.env["HTTPS_PROXY"], "http://{bundle:9099}");
  });

  test("names the agent's machine as smolvm allows, even for an agent named with --", () => {
    // The manifest's name rule admits "--" inside a name; smolvm refuses it in a machine name.
    for (const name of ["a--b", "x---y--z", "probe", `a--${"b".repeat(37)}`]) {
      const plan = planBottle(withAgent(name), smol);
      const machine = plan.agentContainer.name;
      assert.ok(isSmolvmMachineName(machine), `${name} -> ${machine}`);
      assert.ok(machine.endsWith("-7k2m9x-agent"), "the id keeps the name unique");
    }
  });

  test("refuses a trusted file directly in the workspace, naming it and what to do instead", () => {
    const m = manifest(undefined, "/p/site/bot-bottle.json").select("probe");
    assert.throws(
      () => planBottle(m, smol),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, /\/p\/site\/bot-bottle\.json lies in the workspace/);
        assert.match(err.hint ?? "", /move the manifest/);
        assert.match(err.hint ?? "", /docker backend/);
        return true;
      },
    );
    // The same manifest beside the workspace plans: the refusal is about where the file lies.
    assert.equal(planBottle(manifest().select("probe"), smol).backend, "smolmachines");
    // Docker binds such a file read-only over itself instead.
    assert.deepEqual(planBottle(m, docker).agentContainer.readOnlyFiles, [
      { host: "/p/site/bot-bottle.json", container: "/home/node/workspace/bot-bottle.json" },
    ]);
  });
});

describe("the Docker plan beside it", () => {
  test("keeps its internal network, the bundle's aliases and the proxy at egress:9099", () => {
    const plan = planBottle(manifest().select("probe"), docker);
    assert.equal(plan.backend, "docker");
    assert.equal(plan.networks.internal?.internal, true);
    assert.deepEqual(plan.bundle.aliases, BUNDLE_ALIASES);
    const env = plan.agentContainer.env;
    for (const k of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"])
      assert.equal(env[k], "http://egress:9099", k);
    assert.ok((env["NO_PROXY"] ?? "").split(",").includes("egress"));
    assert.equal(plan.agentContainer.labels["dev.bot-bottle.backend"], "docker");
  });
});
