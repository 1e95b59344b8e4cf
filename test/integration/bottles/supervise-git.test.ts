/**
 * A git repository granted live, end to end: a bottle started with no git entry asks for one
 * through supervise (`request_git_repo`, from inside, with the MCP client fixture); the operator
 * approves it with the upstream's pinned host key and a key file; the bundle's init starts the
 * git gate, which serves the repository with no restart of the bottle; the agent clones it by its
 * upstream URL and pushes to it (the key never in the agent); when the grant's lease ends, the
 * gate refuses the repository again. The upstream is sshd in a container of the test's own.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../../src/exec/run.js";
import { parseGitAuditRecord, type GitAuditRecord } from "../../../src/shared/git-gate-config.js";
import { TestBottles } from "../../helpers/bottles.js";
import { callTool, installMcpClient, requestIdOf } from "../../helpers/supervise.js";
import { startGitUpstream, type GitUpstream } from "../../helpers/git-upstream.js";

const HOST = "git.upstream.test";
const UPSTREAM = `git@${HOST}:app.git`;
const LEASE_SECONDS = 25;

const t = new TestBottles();
const agent = t.agent("asksgit");

describe(
  "supervise: a git repository granted to a running bottle",
  { timeout: 15 * 60_000 },
  () => {
    let upstream: GitUpstream;
    let slug = "";

    const call = (tool: string, args: Record<string, unknown> = {}) =>
      callTool(t, slug, tool, args);
    const idOf = requestIdOf;
    const auditLines = async (): Promise<GitAuditRecord[]> =>
      (
        await readFile(
          join(t.dir, "state", "bot-bottle", slug, "audit", "git.jsonl"),
          "utf8",
        ).catch(() => "")
      )
        .split("\n")
        .filter(Boolean)
        .map((l) => parseGitAuditRecord(l, "git.jsonl"));

    before(async () => {
      await t.setup({});
      const net = await t.network([]);
      upstream = await startGitUpstream({
        network: net,
        alias: HOST,
        launch: (a) => t.container(a),
      });
      await upstream.createRepo("app", { files: { "README.md": "# app\n" } });
      await writeFile(
        t.manifest,
        JSON.stringify({
          agents: {
            [agent]: {
              template: "shell",
              bottle: "open",
              git_user: { name: "Agent", email: "agent@example.test" },
            },
          },
          // No git entry: the bundle runs no gate until a repository is granted. The bundle joins
          // the upstream's network, as it would reach a forge on the internet.
          bottles: {
            open: {
              egress: { network: net },
              supervise: { wait: "2s", timeout: "1h" },
            },
          },
        }),
      );
      slug = await t.start(agent);
      await installMcpClient(t, slug);
    });

    after(() => (process.env["KEEP"] ? undefined : t.teardown()));

    let id = "";

    test("before a grant the repository cannot be reached from the bottle", async () => {
      const r = await t.sh(slug, `git clone -q ${UPSTREAM} ~/early 2>&1`);
      assert.notEqual(r.code, 0, r.stdout);
      const gate = await t.sh(slug, "git ls-remote git://git-gate/app.git 2>&1");
      assert.notEqual(gate.code, 0, "no gate serves it yet");
    });

    test("the agent asks; the request waits on the host", async () => {
      const asked = await call("request_git_repo", {
        upstream: UPSTREAM,
        reason: "the app's code",
      });
      assert.match(asked, /^pending: request r-[a-z0-9]{10} /);
      id = idOf(asked);
      const listed = await t.cli(["requests", slug, "--json"]);
      assert.equal(listed.code, 0, listed.stderr);
      const entry = listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { id: string; status: string; request: { kind: string } })
        .find((e) => e.id === id);
      assert.equal(entry?.status, "pending");
      assert.equal(entry?.request.kind, "git-repo");
    });

    test("approving it without the pinned host key is refused, naming the flag; the request stays pending", async () => {
      const r = await t.cli(["approve", id, "--key-file", upstream.clientKeyPath]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /--host-key is missing/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      const wrong = await t.cli([
        "approve",
        id,
        "--host-key",
        upstream.hostKey,
        "--key-file",
        `${upstream.clientKeyPath}.pub`,
      ]);
      assert.notEqual(wrong.code, 0);
      assert.match(wrong.stderr, /does not hold a private key/);
      const listed = await t.cli(["requests", slug, "--json"]);
      assert.match(listed.stdout, new RegExp(`"id":"${id}"[^\\n]*"status":"pending"`));
    });

    test("approved with its host key and key file: the agent clones and pushes by the upstream's URL, with no restart", async () => {
      const started = async () =>
        (
          await run("docker", [
            "inspect",
            "--format",
            "{{.State.StartedAt}}",
            `bot-bottle-${slug}-bundle`,
          ])
        ).stdout.trim();
      const before = await started();
      const approved = await t.cli([
        "approve",
        id,
        "--host-key",
        upstream.hostKey,
        "--key-file",
        upstream.clientKeyPath,
        "--for",
        `${LEASE_SECONDS}s`,
        "--persist",
      ]);
      assert.equal(approved.code, 0, approved.stderr);
      assert.match(
        approved.stdout,
        new RegExp(`approved ${id} .*${UPSTREAM} as git://git-gate/app\\.git`),
      );

      const cloned = await t.sh(
        slug,
        `git clone -q ${UPSTREAM} ~/app && cat ~/app/README.md && cd ~/app && echo hi > hi.txt && git add hi.txt && git commit -qm hi && git push -q origin HEAD:main 2>&1 && git rev-parse HEAD`,
      );
      assert.equal(cloned.code, 0, cloned.stdout + cloned.stderr);
      assert.match(cloned.stdout, /# app/);
      assert.equal(
        (await upstream.refs("app"))["refs/heads/main"],
        cloned.stdout.trim().split("\n").pop(),
        "the push landed upstream",
      );
      assert.equal(await started(), before, "the bundle was not restarted");
      const key = await readFile(upstream.clientKeyPath, "utf8");
      assert.deepEqual(
        await t.secretPlaces(slug, key.split("\n")[1] ?? key),
        [],
        "the key is nowhere in the agent",
      );

      const status = await call("request_status", { id });
      assert.match(status, /^approved for 25s: /);
      const grant = (await auditLines()).find((l) => l.op === "grant");
      assert.equal(grant?.tag, "granted");
      assert.equal(grant?.repo, "app");

      const manifest = JSON.parse(await readFile(t.manifest, "utf8")) as {
        bottles: { open: { git?: { name: string; upstream: string; known_host_key: string }[] } };
      };
      assert.deepEqual(
        manifest.bottles.open.git?.map((g) => [g.name, g.upstream, g.known_host_key]),
        [["app", UPSTREAM, upstream.hostKey]],
        "--persist wrote the entry",
      );
      const valid = await t.cli(["validate"]);
      assert.equal(valid.code, 0, valid.stderr);
    });

    test("when the grant's lease ends, the gate refuses the repository again", async () => {
      const lease = (await auditLines()).find((l) => l.op === "grant" && l.tag === "granted");
      assert.ok(lease);
      const left = Date.parse(lease.time) + LEASE_SECONDS * 1000 - Date.now();
      if (left > 0) await sleep(left + 1500);
      const r = await t.sh(slug, "cd ~/app && git fetch -q origin 2>&1");
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stdout + r.stderr, /grant of app ended/);
      assert.ok((await auditLines()).some((l) => l.op === "grant" && l.tag === "grant-ended"));
    });
  },
);
