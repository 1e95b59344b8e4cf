/**
 * The git gate over HTTPS: an upstream of the test's own (git's smart-HTTP CGI behind TLS, its
 * certificate from a test CA the bottle trusts with trust_ca, mapped with extra_hosts) that wants
 * a token. The gate authenticates with the token from the operator's environment, which the agent
 * never sees; a wrong token, and a certificate the bottle does not trust, fail with the reason.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../../src/exec/run.js";
import { TestBottles } from "../../helpers/bottles.js";
import { upstreamCerts } from "../../helpers/fake-upstream.js";

const t = new TestBottles();
const agent = t.agent("gatehttps");
const wrongToken = t.agent("gatebadtok");
const untrusted = t.agent("gatenoca");
const HOST = "git.example.test";
const UPSTREAM = `https://${HOST}/web.git`;
const TOKEN_ENV = "BB_TEST_GIT_TOKEN";
const WRONG_ENV = "BB_TEST_GIT_WRONG";
const TOKEN = `gta_${randomBytes(20).toString("hex")}`;

interface Seen {
  event: string;
  method?: string;
  service?: string;
  user?: string;
  authorized?: boolean;
  status?: number;
}

describe("the git gate over HTTPS", { timeout: 15 * 60_000 }, () => {
  let server = "";
  let slug = "";

  const seen = async (): Promise<Seen[]> =>
    (await run("docker", ["logs", server])).stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Seen);

  const upstreamHead = async () =>
    (
      await run("docker", ["exec", server, "git", "-C", "/srv/git/web.git", "rev-parse", "main"])
    ).stdout.trim();

  before(async () => {
    await t.setup({});
    const net = await t.network([]);
    const certs = join(t.dir, "certs");
    await mkdir(certs);
    await upstreamCerts(certs, [HOST]);
    server = await t.container([
      "--network",
      net,
      "--user",
      "root",
      "-v",
      `${certs}:/certs:ro`,
      "-v",
      `${join(import.meta.dirname, "../../fixtures")}:/fixtures:ro`,
      "-e",
      `GIT_TOKEN=${TOKEN}`,
      "-e",
      "REPOS=web",
      "bot-bottle/shell:latest",
      "node",
      "/fixtures/git-https.mjs",
    ]);
    for (let i = 0; i < 100 && !(await seen()).some((e) => e.event === "listening"); i++)
      await sleep(100);
    const ip = await t.ip(server, net);
    const entry = (tokenEnv: string) => ({
      name: "web",
      upstream: UPSTREAM,
      token_env: tokenEnv,
      extra_hosts: { [HOST]: ip },
    });
    const trusted = { network: net, trust_ca: join(certs, "ca", "ca.crt") };
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [agent]: {
            template: "shell",
            bottle: "web",
            git_user: { name: "A", email: "a@example.test" },
          },
          [wrongToken]: { template: "shell", bottle: "badtoken" },
          [untrusted]: { template: "shell", bottle: "noca" },
        },
        bottles: {
          web: { egress: trusted, git: [entry(TOKEN_ENV)] },
          badtoken: { egress: trusted, git: [entry(WRONG_ENV)] },
          noca: { egress: { network: net }, git: [entry(TOKEN_ENV)] },
        },
      }),
    );
    t.env[TOKEN_ENV] = TOKEN;
    t.env[WRONG_ENV] = `gta_${randomBytes(20).toString("hex")}`;
    slug = await t.start(agent);
  });

  after(() => t.teardown());

  test("the agent clones and pushes by the https URL; the gate holds the token", async () => {
    const clone = await t.sh(slug, `git clone -q ${UPSTREAM} ~/web && cat ~/web/README.md`);
    assert.equal(clone.code, 0, clone.stderr);
    assert.match(clone.stdout, /# web/);
    const push = await t.sh(
      slug,
      "cd ~/web && echo hi > hi.txt && git add hi.txt && git commit -qm hi && git push -q origin main 2>&1 && git rev-parse HEAD",
    );
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.equal(await upstreamHead(), push.stdout.trim().split("\n").pop());
    const pushes = (await seen()).filter(
      (e) => e.service === "git-receive-pack" && e.method === "GET",
    );
    assert.ok(
      pushes.some((e) => e.authorized && e.user === "x-access-token"),
      "the push was authenticated",
    );
    assert.deepEqual(await t.secretPlaces(slug, TOKEN), [], "the token is nowhere in the agent");
  });

  test("a wrong token fails the fetch with the upstream's answer, naming the repository", async () => {
    const other = await t.start(wrongToken);
    const r = await t.sh(other, `git clone -q ${UPSTREAM} ~/web 2>&1`);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      /bot-bottle git-gate: upstream web unreachable: .*(401|Authentication failed|could not read Username)/i,
    );
    await t.cli(["stop", other]);
  });

  test("an upstream certificate the bottle does not trust fails the fetch: TLS is verified", async () => {
    const other = await t.start(untrusted);
    const r = await t.sh(other, `git clone -q ${UPSTREAM} ~/web 2>&1`);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /upstream web unreachable: .*(certificate|SSL)/i);
    await t.cli(["stop", other]);
  });
});
