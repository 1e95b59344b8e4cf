import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { planBottle } from "../../../src/plan/plan.js";
import { EgressConfigSchema, parseEgressConfig } from "../../../src/shared/egress-config.js";
import { InitConfigSchema, parseInitConfig } from "../../../src/shared/init-config.js";
import { example, load } from "../../helpers/manifest.js";

const input = {
  id: "7k2m9x",
  workspace: "/p/site",
  stateRoot: "/state/bot-bottle",
  images: { bundle: "bot-bottle/bundle:latest" },
  workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
};

/** The example manifest, every agent on the template that can start today ("shell"). */
function startable(mutate: (m: Record<string, any>) => void = () => undefined) {
  const m = example();
  for (const agent of Object.values(m["agents"] as Record<string, Record<string, unknown>>))
    agent["template"] = "shell";
  mutate(m);
  return load(m, undefined, "/p/bot-bottle.json");
}

function assertConfigsParse(index: ReturnType<typeof startable>, agent: string) {
  const plan = planBottle(index.select(agent), input);
  const init = plan.files["bundle/init.json"];
  const egress = plan.files["bundle/egress.json"];
  assert.ok(init !== undefined && egress !== undefined, "the plan writes both sidecar configs");
  assert.deepEqual(parseInitConfig(init, "bundle/init.json"), JSON.parse(init));
  assert.deepEqual(parseEgressConfig(egress, "bundle/egress.json"), plan.egress);
  // The plan's own object too, before it is serialised (an undefined field would vanish there).
  EgressConfigSchema.parse(plan.egress);
  InitConfigSchema.parse(JSON.parse(init));
  return plan;
}

describe("the sidecar configs a plan writes", () => {
  test("parse with the schemas the bundle reads them with, for every agent of the example", () => {
    const index = startable();
    for (const agent of ["coder", "probe"]) assertConfigsParse(index, agent);
  });

  test("parse with every kind of route: port, paths, methods, passthrough, IP literal, scheme", () => {
    const index = startable((m) => {
      m.bottles.dev.egress.routes.push(
        { host: "*.Example.COM.", port: 8443, paths: ["/v1/"], methods: ["GET"] },
        { host: "pinned.example.org", tls_passthrough: true },
        { host: "203.0.113.7", allow_ip_literal: true },
        {
          host: "git.example.com",
          auth: { header: "Authorization", scheme: "Bearer", token_env: "GITEA_TOKEN" },
        },
      );
      m.bottles.dev.egress.extra_hosts = { "Build.Internal": "10.0.0.7" };
      m.bottles.dev.egress.trust_ca = "certs/ca.pem";
    });
    const plan = assertConfigsParse(index, "coder");
    assert.equal(plan.egress.routes.length, 6);
    assert.ok(plan.egress.trustCaFile);
  });
});
