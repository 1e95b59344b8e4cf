/**
 * The git gate's "gitea" key provider end to end: a fake Gitea of the test's own (the real
 * deploy-key endpoints and status codes) shares its keys with the SSH upstream, so the key the
 * gate registers at start is what lets it push. The key is gone after stop, `cleanup` deletes the
 * one a killed bundle left, and an API failure fails the start naming the call.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { TestBottles } from "../../helpers/bottles.js";
import {
  createKeysVolume,
  removeKeysVolume,
  startFakeGitea,
  type FakeGitea,
} from "../../helpers/fake-gitea.js";
import { startGitUpstream, type GitUpstream } from "../../helpers/git-upstream.js";

const t = new TestBottles();
const agent = t.agent("gitea");
const TOKEN_ENV = "BB_TEST_GITEA_TOKEN";
const TOKEN = `gtea_${randomBytes(16).toString("hex")}`;
const UPSTREAM = "git@git.example.test:team/app.git";

describe("the git gate with Gitea deploy keys", { timeout: 20 * 60_000 }, () => {
  let upstream: GitUpstream;
  let gitea: FakeGitea;
  let volume = "";

  const titled = async (slug: string) =>
    (await gitea.keys("team/app")).filter((k) => k.title === `bot-bottle ${slug}`);

  before(async () => {
    await t.setup({});
    const net = await t.network([]);
    volume = await createKeysVolume();
    upstream = await startGitUpstream({
      network: net,
      alias: "upstream",
      keysVolume: volume,
      launch: (a) => t.container(a),
    });
    await upstream.createRepo("team/app", { files: { "README.md": "# app\n" } });
    gitea = await startFakeGitea({
      network: net,
      token: TOKEN,
      repos: ["team/app"],
      keysVolume: volume,
      launch: (a) => t.container(a),
    });
    const [upstreamIp, giteaIp] = await Promise.all([
      t.ip(upstream.container, net),
      t.ip(gitea.container, net),
    ]);
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [agent]: {
            template: "shell",
            bottle: "gitea",
            git_user: { name: "A", email: "a@example.test" },
          },
        },
        bottles: {
          gitea: {
            egress: { network: net },
            git: [
              {
                name: "app",
                upstream: UPSTREAM,
                known_host_key: upstream.hostKey,
                key: {
                  provider: "gitea",
                  api_url: "http://gitea.example.test:3000",
                  repo: "team/app",
                  provisioner_token_env: TOKEN_ENV,
                },
                extra_hosts: { "git.example.test": upstreamIp, "gitea.example.test": giteaIp },
              },
            ],
          },
        },
      }),
    );
    t.env[TOKEN_ENV] = TOKEN;
  });

  after(async () => {
    await t.teardown();
    if (volume) await removeKeysVolume(volume);
  });

  test("the gate registers its own deploy key at start, pushes with it, and it is gone after stop", async () => {
    const slug = await t.start(agent);
    const keys = await titled(slug);
    assert.equal(keys.length, 1, "one key, titled with the slug");
    assert.equal(keys[0]?.read_only, false);
    const r = await t.sh(
      slug,
      `git clone -q ${UPSTREAM} ~/app && cd ~/app && echo x > x.txt && git add x.txt && git commit -qm x && git push -q origin main 2>&1 && git rev-parse HEAD`,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(
      (await upstream.refs("team/app"))["refs/heads/main"],
      r.stdout.trim().split("\n").pop(),
    );
    assert.deepEqual(
      await t.secretPlaces(slug, keys[0]?.key ?? "missing"),
      [],
      "not even the public half is in the agent",
    );
    const stopped = await t.cli(["stop", slug]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(await titled(slug), [], "deleted at stop");
  });

  test("cleanup deletes the key a killed bundle left", async () => {
    const slug = await t.start(agent);
    assert.equal((await titled(slug)).length, 1);
    // SIGKILL: the gate gets no chance to delete its key.
    await run("docker", ["kill", `bot-bottle-${slug}-bundle`]);
    assert.equal((await titled(slug)).length, 1, "the key outlived its bundle");
    const cleaned = await t.cli(["cleanup"]);
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.match(cleaned.stderr + cleaned.stdout, /deleted 1 deploy key .*team\/app/);
    assert.deepEqual(await titled(slug), []);
  });

  test("an API failure at start fails the start naming the call; nothing is left registered", async () => {
    await gitea.failNext(500, 1000, "database is locked");
    try {
      const r = await t.cli(["start", agent, "--detach", "--yes"]);
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        /did not become ready .*: git-gate: (listing the deploy keys of|registering a deploy key on) team\/app: HTTP 500 \(database is locked\)/,
      );
      assert.ok(!r.stderr.includes(TOKEN), "the token is never shown");
    } finally {
      await gitea.failNext(500, 0);
    }
    await t.cli(["cleanup"]);
    assert.deepEqual(
      (await gitea.keys("team/app")).filter((k) => k.title.startsWith("bot-bottle ")),
      [],
    );
  });
});
