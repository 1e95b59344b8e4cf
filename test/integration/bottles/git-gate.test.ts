/**
 * The git gate end to end: a real bottle whose agent clones, fetches and pushes a repository by
 * its upstream URL (git@github.com:app.git, mapped with extra_hosts to an sshd container of the
 * test's own, its host key made for this run and pinned in the manifest). Each refusal is shown
 * after its allowed twin works, and leaves the upstream's refs and objects as they were.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { parseGitAuditRecord, type GitAuditRecord } from "../../../src/shared/git-gate-config.js";
import { TestBottles } from "../../helpers/bottles.js";
import { startGitUpstream, type GitUpstream } from "../../helpers/git-upstream.js";

const t = new TestBottles();
const agent = t.agent("gate");
const wrongKeyAgent = t.agent("gatewrong");
const UPSTREAM = "git@github.com:app.git";
const TOKEN_ENV = "BB_TEST_GATE_TOKEN";
const TOKEN = `tok_${randomBytes(24).toString("hex")}`;
// An AWS access key id shape gitleaks and the egress scanner both know; never a real one.
const AWS = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
const AWS_LINE = `aws_access_key_id = ${AWS}`;

describe("the git gate end to end", { timeout: 20 * 60_000 }, () => {
  let upstream: GitUpstream;
  let slug = "";

  /** A shell script in the agent's clone of the repository (~/app), as node. */
  const inRepo = (script: string) => t.sh(slug, `set -e; cd ~/app; ${script}`);

  /** The upstream's state, to show a refused push changed nothing there. */
  const upstreamState = async () => ({
    refs: await upstream.refs("app"),
    objects: await upstream.objects("app"),
  });

  const auditLines = async (): Promise<GitAuditRecord[]> => {
    const text = await readFile(
      join(t.dir, "state", "bot-bottle", slug, "audit", "git.jsonl"),
      "utf8",
    ).catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => parseGitAuditRecord(l, "git.jsonl"));
  };

  before(async () => {
    await t.setup({});
    // The workspace is the user's own clone of the upstream: its origin names github.com.
    await run("git", ["init", "-q", "-b", "main", t.workspace]);
    await run("git", ["-C", t.workspace, "remote", "add", "origin", UPSTREAM]);
    await run("chown", ["-R", "1000:1000", t.workspace]);
    const net = await t.network([]);
    upstream = await startGitUpstream({
      network: net,
      alias: "upstream",
      launch: (a) => t.container(a),
    });
    await upstream.createRepo("app", { files: { "README.md": "# app\n" } });
    const ip = await t.ip(upstream.container, net);
    const entry = (hostKey: string) => ({
      name: "app",
      upstream: UPSTREAM,
      known_host_key: hostKey,
      key: { provider: "static", path: upstream.clientKeyPath },
      extra_hosts: { "github.com": ip },
      push: { refs: ["refs/heads/*", "refs/tags/*"] },
    });
    const { stdout: otherKey } = await run("sh", [
      "-c",
      `d=$(mktemp -d) && ssh-keygen -q -t ed25519 -N '' -f "$d/k" && cut -d' ' -f1,2 "$d/k.pub" && rm -r "$d"`,
    ]);
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [agent]: {
            template: "shell",
            bottle: "gated",
            git_user: { name: "Agent", email: "agent@example.test" },
          },
          [wrongKeyAgent]: { template: "shell", bottle: "wrongkey" },
        },
        bottles: {
          gated: {
            egress: {
              network: net,
              // A held token: a push carrying it, in any encoding, is refused.
              routes: [
                {
                  host: "api.example.test",
                  auth: { header: "authorization", scheme: "Bearer", token_env: TOKEN_ENV },
                },
              ],
            },
            git: [entry(upstream.hostKey)],
          },
          wrongkey: { egress: { network: net }, git: [entry(otherKey.trim())] },
        },
      }),
    );
    t.env[TOKEN_ENV] = TOKEN;
    slug = await t.start(agent);
  });

  after(() => t.teardown());

  test("the agent clones the repository by its upstream URL, through the gate", async () => {
    const r = await t.sh(
      slug,
      `git clone -q ${UPSTREAM} ~/app && cat ~/app/README.md && git -C ~/app remote get-url origin`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /# app/);
    const config = await t.sh(slug, "git config --global --get-regexp '^url\\.'");
    assert.match(
      config.stdout,
      /url\.git:\/\/git-gate\/app\.git\.insteadof git@github\.com:app\.git/i,
    );
    const lines = await auditLines();
    assert.ok(lines.some((l) => l.op === "fetch" && l.decision === "allow" && l.tag === "served"));
  });

  test("the workspace's own origin (the upstream's URL) works against the gate unchanged", async () => {
    const r = await t.sh(
      slug,
      "cd ~/workspace && git fetch -q origin && git rev-parse origin/main",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (await upstream.refs("app"))["refs/heads/main"]);
  });

  test("a fetch is never stale: the upstream's new commit is there at the next fetch", async () => {
    await upstream.commit("app", {
      branch: "main",
      files: { "NEWS.md": "news\n" },
      message: "upstream news",
    });
    const want = (await upstream.refs("app"))["refs/heads/main"];
    const r = await inRepo("git pull -q --ff-only && git rev-parse HEAD");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), want);
  });

  test("a clean push lands upstream, with the gate's key the agent never sees", async () => {
    const r = await inRepo(
      `echo ok > ok.txt && git add ok.txt && git commit -qm "add ok" && git push -q origin main 2>&1 && git rev-parse HEAD`,
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const head = r.stdout.trim().split("\n").pop();
    assert.equal((await upstream.refs("app"))["refs/heads/main"], head);
    const key = await readFile(upstream.clientKeyPath, "utf8");
    assert.deepEqual(
      await t.secretPlaces(slug, key.split("\n")[1] ?? key),
      [],
      "the key is nowhere in the agent",
    );
    assert.ok((await auditLines()).some((l) => l.op === "push" && l.tag === "forwarded"));
  });

  /**
   * Each way of planting a secret, with its clean twin: `plant(secret)` prepares a push from a
   * clean main (the clone is reset to the upstream first); `push` is the git push to run.
   */
  const cases: { name: string; plant: (text: string) => string; push?: string }[] = [
    {
      name: "a new file",
      plant: (text) =>
        `printf '%s\\n' "${text}" > config.py && git add config.py && git commit -qm config`,
    },
    {
      name: "a commit message",
      plant: (text) => `echo x >> notes.txt && git add notes.txt && git commit -qm "notes ${text}"`,
    },
    {
      name: "a file added then deleted within the push",
      plant: (text) =>
        `printf '%s\\n' "${text}" > tmp.env && git add tmp.env && git commit -qm add && git rm -q tmp.env && git commit -qm remove`,
    },
    {
      name: "an intermediate commit of a multi-commit push",
      plant: (text) =>
        `echo a > a.txt && git add a.txt && git commit -qm a && printf '%s\\n' "${text}" >> a.txt && git commit -qam b && echo c > a.txt && git commit -qam c`,
    },
    {
      name: "a new branch",
      plant: (text) =>
        `git checkout -qb feature-${randomBytes(3).toString("hex")} && printf '%s\\n' "${text}" > f.txt && git add f.txt && git commit -qm f`,
      push: "git push -q origin HEAD",
    },
    {
      name: "a tag",
      plant: (text) => `git tag -a v-${randomBytes(2).toString("hex")} -m "release ${text}"`,
      push: "git push -q origin --tags",
    },
  ];

  const reset = () =>
    inRepo(
      "git checkout -q main && git fetch -q origin && git reset -q --hard origin/main && git clean -qfdx && git tag -l | xargs -r git tag -d >/dev/null && (git branch --format='%(refname:short)' | grep -v '^main$' | xargs -r git branch -qD)",
    );

  for (const c of cases)
    test(`a secret in ${c.name} is refused, naming where, after the clean twin lands`, async () => {
      assert.equal((await reset()).code, 0);
      const twin = await inRepo(
        `${c.plant("nothing secret here")} && ${c.push ?? "git push -q origin main"} 2>&1`,
      );
      assert.equal(twin.code, 0, `the clean twin: ${twin.stdout}${twin.stderr}`);

      assert.equal((await reset()).code, 0);
      const before = await upstreamState();
      const r = await inRepo(`${c.plant(AWS_LINE)} && ${c.push ?? "git push -q origin main"} 2>&1`);
      const out = r.stdout + r.stderr;
      assert.notEqual(r.code, 0, out);
      assert.match(out, /bot-bottle git-gate: push refused: a secret \(/);
      assert.ok(!out.includes(AWS), "the refusal never shows the value");
      assert.deepEqual(
        await upstreamState(),
        before,
        "the upstream's refs and objects are unchanged",
      );
      const last = (await auditLines()).pop();
      assert.equal(last?.tag, "secret-detected");
      assert.ok(last?.finding?.rule);
    });

  test("a token the bundle holds is refused base64-encoded, after the clean twin lands", async () => {
    assert.equal((await reset()).code, 0);
    const clean = Buffer.from("just some bytes of data").toString("base64");
    const twin = await inRepo(
      `echo ${clean} > blob.b64 && git add blob.b64 && git commit -qm b && git push -q origin main 2>&1`,
    );
    assert.equal(twin.code, 0, twin.stdout + twin.stderr);
    assert.equal((await reset()).code, 0);
    const before = await upstreamState();
    const encoded = Buffer.from(`token=${TOKEN}`).toString("base64");
    const r = await inRepo(
      `echo ${encoded} > blob.b64 && git add blob.b64 && git commit -qm b && git push -q origin main 2>&1`,
    );
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(`a secret \\(${TOKEN_ENV}\\) in blob\\.b64 line 1`),
    );
    assert.deepEqual(await upstreamState(), before);
  });

  test("a pushed .gitleaks.toml, .gitleaksignore or gitleaks:allow changes nothing", async () => {
    assert.equal((await reset()).code, 0);
    const before = await upstreamState();
    const r = await inRepo(
      [
        `printf '[allowlist]\\npaths = [".*"]\\nregexes = [".*"]\\n' > .gitleaks.toml`,
        `printf 'config.py:aws-access-token:1\\n' > .gitleaksignore`,
        `printf '%s # gitleaks:allow\\n' "${AWS_LINE}" > config.py`,
        "git add -A && git commit -qm 'allow all' && git push -q origin main 2>&1",
      ].join(" && "),
    );
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout + r.stderr, /push refused: a secret \(.*\) in config\.py line 1/);
    assert.deepEqual(await upstreamState(), before);
  });

  test("the push policy: a fast-forward lands; a forced move and a deletion are refused", async () => {
    assert.equal((await reset()).code, 0);
    const ff = await inRepo(
      "echo 1 >> ff.txt && git add ff.txt && git commit -qm ff && git push -q origin main HEAD:refs/heads/keep 2>&1",
    );
    assert.equal(ff.code, 0, ff.stdout);
    const before = await upstreamState();
    const forced = await inRepo(
      "git reset -q --hard HEAD~1 && echo 2 > other.txt && git add other.txt && git commit -qm other && git push -q -f origin main 2>&1",
    );
    assert.notEqual(forced.code, 0);
    assert.match(forced.stdout + forced.stderr, /refs\/heads\/main would lose commits/);
    const deleted = await inRepo("git push -q origin :refs/heads/keep 2>&1");
    assert.notEqual(deleted.code, 0);
    assert.match(deleted.stdout + deleted.stderr, /deleting refs\/heads\/keep is not allowed/);
    assert.deepEqual(await upstreamState(), before);
  });

  test("a push the upstream rejects fails with the upstream's reason; the mirror does not move", async () => {
    assert.equal((await reset()).code, 0);
    // The upstream's own hook declines one branch, as a protected-branch rule would.
    await upstream.exec([
      "sh",
      "-c",
      `printf '#!/bin/sh\\nwhile read o n r; do [ "$r" = refs/heads/protected ] && { echo "protected branch hook declined"; exit 1; }; done; exit 0\\n' > /srv/git/app.git/hooks/pre-receive && chmod +x /srv/git/app.git/hooks/pre-receive`,
    ]);
    const twin = await inRepo("git push -q origin HEAD:refs/heads/open 2>&1");
    assert.equal(twin.code, 0, twin.stdout);
    const mirror = join(t.dir, "state", "bot-bottle", slug, "git", "app.git");
    const before = await upstreamState();
    const r = await inRepo("git push -q origin HEAD:refs/heads/protected 2>&1");
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      /upstream app refused the push: .*\n.*upstream: protected branch hook declined/,
    );
    assert.deepEqual(await upstreamState(), before);
    const mirrorRefs = await run("git", [
      "-c",
      "safe.directory=*",
      "-C",
      mirror,
      "for-each-ref",
      "refs/heads/protected",
    ]);
    assert.equal(mirrorRefs.stdout, "", "the mirror has no such branch");
    assert.equal((await auditLines()).pop()?.tag, "upstream-rejected");
  });

  test("a push over an upstream that moved since the agent's fetch is refused; after a fetch and rebase it lands", async () => {
    assert.equal((await reset()).code, 0);
    const local = await inRepo("echo mine >> mine.txt && git add mine.txt && git commit -qm mine");
    assert.equal(local.code, 0, local.stderr);
    // Someone else pushes to main upstream: the mirror has not seen it yet.
    await upstream.commit("app", {
      branch: "main",
      files: { "THEIRS.md": "theirs\n" },
      message: "theirs",
    });
    const before = await upstreamState();
    const r = await inRepo("git push -q origin main 2>&1");
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(
      r.stdout + r.stderr,
      /push refused: *\n.*refs\/heads\/main has moved upstream since your last fetch: fetch, rebase or merge, and push again/,
    );
    assert.deepEqual(await upstreamState(), before, "nothing landed upstream");
    assert.equal((await auditLines()).pop()?.tag, "stale");
    const again = await inRepo(
      "git pull -q --rebase origin main && git push -q origin main 2>&1 && git rev-parse HEAD",
    );
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.equal(
      (await upstream.refs("app"))["refs/heads/main"],
      again.stdout.trim().split("\n").pop(),
    );
  });

  test("nothing but the declared repository is served: another path is refused", async () => {
    const ok = await t.sh(slug, "git ls-remote git://git-gate/app.git >/dev/null && echo served");
    assert.match(ok.stdout, /served/);
    for (const path of ["other.git", "app.git/../app.git", "..", "srv/git/app.git"]) {
      const r = await t.sh(
        slug,
        `cd /tmp && rm -rf x && git init -q x && cd x && git commit -q --allow-empty -m x && git push git://git-gate/${path} HEAD:refs/heads/x 2>&1`,
      );
      assert.notEqual(r.code, 0, `${path}: ${r.stdout}`);
    }
    assert.ok(
      (await auditLines()).some((l) => l.op === "connect" && l.tag === "undeclared"),
      "the refusal is in the audit trail",
    );
  });

  test("an unreachable upstream fails the fetch with the reason and leaves the mirror as it was", async () => {
    const mirror = join(t.dir, "state", "bot-bottle", slug, "git", "app.git");
    const refsBefore = (await run("git", ["-c", "safe.directory=*", "-C", mirror, "for-each-ref"]))
      .stdout;
    await upstream.stop();
    try {
      const r = await inRepo("git fetch origin 2>&1");
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /bot-bottle git-gate: upstream app unreachable: /);
      assert.equal(
        (await run("git", ["-c", "safe.directory=*", "-C", mirror, "for-each-ref"])).stdout,
        refsBefore,
      );
      assert.equal((await auditLines()).pop()?.tag, "upstream-unreachable");
    } finally {
      await upstream.start();
    }
    const again = await inRepo("git fetch -q origin");
    assert.equal(again.code, 0, again.stderr);
  });

  test("logs --git shows the gate's decisions; --audit puts them beside the egress lines", async () => {
    await t.sh(slug, "curl -s -o /dev/null https://not-declared.example.test/ || true");
    const git = await t.cli(["logs", slug, "--git"]);
    assert.equal(git.code, 0, git.stderr);
    assert.match(git.stdout, /fetch +allow +served app/);
    assert.match(git.stdout, /push +refuse +secret-detected app/);
    assert.ok(!git.stdout.includes(AWS) && !git.stdout.includes(TOKEN), "no secret in the audit");
    const all = await t.cli(["logs", slug, "--audit", "--json"]);
    const sources = new Set(
      all.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { source: string }).source),
    );
    assert.deepEqual([...sources].sort(), ["egress", "git"]);
  });

  test("a wrong pinned host key is refused before any authentication is attempted", async () => {
    const attempts = (await upstream.authAttempts()).length;
    const other = await t.start(wrongKeyAgent);
    const r = await t.sh(other, `git clone -q ${UPSTREAM} ~/app 2>&1`);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stdout + r.stderr,
      /upstream app unreachable: .*(Host key verification failed|REMOTE HOST IDENTIFICATION)/i,
    );
    assert.equal(
      (await upstream.authAttempts()).length,
      attempts,
      "the upstream saw no authentication",
    );
    await t.cli(["stop", other]);
  });
});
