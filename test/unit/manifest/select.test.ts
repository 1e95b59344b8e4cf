import assert from "node:assert/strict";
import { homedir } from "node:os";
import { describe, test } from "node:test";
import { example, gitEntry, load } from "../../helpers/manifest.js";

describe("selecting an agent", () => {
  test("yields exactly that agent and its effective bottle", () => {
    const m = load(example()).select("coder");
    assert.equal(m.agent.name, "coder");
    assert.equal(m.bottle.name, "dev");
    assert.equal(m.bottle.egress.routes[0]?.host, "api.anthropic.com");
    assert.equal(m.bottle.egress.routes[0]?.auth?.header, "x-api-key");
  });

  test("overlays the agent's git identity onto the bottle", () => {
    const index = load(example());
    assert.deepEqual(index.select("coder").bottle.git_user, {
      name: "Coder Bot",
      email: "coder-bot@example.com",
    });
    assert.equal(index.select("probe").bottle.git_user, undefined);
  });

  test("resolves paths against the manifest's folder and ~ against home", () => {
    const data = example();
    data.agents.coder.skills = ["skills/review"];
    data.agents.coder.dockerfile = "/abs/Dockerfile";
    data.bottles.dev.egress.trust_ca = "certs/ca.pem";
    data.bottles.dev.git = [gitEntry("app")];
    const m = load(data, undefined, "/projects/site/bot-bottle.json").select("coder");
    assert.deepEqual(m.agent.skills, ["/projects/site/skills/review"]);
    assert.equal(m.agent.dockerfile, "/abs/Dockerfile");
    assert.equal(m.bottle.egress.trust_ca, "/projects/site/certs/ca.pem");
    const key = m.bottle.git[0]?.key;
    assert.equal(key?.provider === "static" && key.path, "/projects/site/keys/deploy");
    const home = load(example(), undefined, "/projects/site/bot-bottle.json").select("coder").bottle
      .git[0]?.key;
    assert.equal(
      home?.provider === "static" && home.path,
      `${homedir()}/.ssh/bot-bottle-deploy-key`,
    );
  });

  test("refuses an agent the file does not declare, listing those it does", () => {
    assert.throws(
      () => load(example()).select("nope"),
      (err: Error & { hint?: string; exitCode?: number }) => {
        assert.match(err.message, /no agent "nope"/);
        assert.match(err.hint ?? "", /coder, probe/);
        assert.equal(err.exitCode, 2);
        return true;
      },
    );
  });

  test("does not let an agent named like an Object property escape validation", () => {
    assert.throws(() => load(example()).select("constructor"), /no agent/);
  });
});
