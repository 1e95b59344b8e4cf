import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("bundled");

interface Health {
  ready: boolean;
  daemons: { name: string; pid: number; restarts: number; state: string }[];
}

async function health(bundle: string): Promise<Health> {
  const { stdout } = await run(
    "docker",
    ["exec", bundle, "node", "/opt/bot-bottle/sidecars/init/health.js"],
    { okExitCodes: [0, 1] },
  );
  return JSON.parse(stdout) as Health;
}

describe("the sidecar bundle in a running bottle", { timeout: 10 * 60_000 }, () => {
  let slug = "";
  let bundle = "";
  before(async () => {
    await t.setup(TestBottles.shellManifest([agent]));
    slug = await t.start(agent);
    bundle = `bot-bottle-${slug}-bundle`;
  });
  after(() => t.teardown());

  test("the egress daemon refuses what no route allows, recognisably", async () => {
    const r = await t.sh(
      slug,
      "curl -sS -i http://api.example.test/v1 ; curl -sS -o /dev/null -w '%{http_code}' https://api.example.test/ ; echo",
    );
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /^x-bot-bottle-refusal: not-in-routes/im);
    assert.match(
      r.stdout,
      /bot-bottle: host "api\.example\.test" is not in this bottle's routes — ask the operator to add it/,
    );
    assert.match(r.stderr, /CONNECT tunnel failed, response 403/);
  });

  test("init restarts a daemon that is killed, and the agent reaches it again", async () => {
    const before = await health(bundle);
    assert.equal(before.ready, true);
    const egress = before.daemons.find((d) => d.name === "egress");
    assert.ok(egress?.pid);
    await run("docker", ["exec", bundle, "sh", "-c", `kill -KILL ${egress.pid}`]);

    const deadline = Date.now() + 15_000;
    let now = await health(bundle);
    while (!(now.ready && now.daemons[0]?.restarts === 1)) {
      assert.ok(Date.now() < deadline, `egress was not restarted: ${JSON.stringify(now)}`);
      await new Promise((r) => setTimeout(r, 50));
      now = await health(bundle);
    }
    assert.notEqual(now.daemons[0]?.pid, egress.pid);
    const again = await t.sh(
      slug,
      "curl -sS -o /dev/null -w '%{http_code}' -x http://egress:9099 http://api.example.test/",
    );
    assert.equal(again.stdout, "403");
    const logs = await t.cli(["logs", slug, "--json"]);
    const events = logs.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string; component: string; message: string });
    assert.ok(
      events.some(
        (e) => e.component === "init" && e.event === "restart" && /signal SIGKILL/.test(e.message),
      ),
    );
  });
});
