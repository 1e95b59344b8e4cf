import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseDecision } from "../../../src/shared/supervise.js";
import { runCli, STACK_LINE } from "../../helpers/cli.js";
import { fakeStateRoot, requestRecord, type FakeStateRoot } from "../../helpers/request-queue.js";

const SLUG = "coder-abc123";
const ROUTE = "r-route00001";
const QUESTION = "r-quest00001";

describe("the operator's requests commands, through the built CLI against a fabricated state dir", () => {
  let s: FakeStateRoot;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    s = await fakeStateRoot();
    env = { ...process.env, ...s.env };
    await s.add(SLUG, "running", [
      requestRecord(ROUTE, {
        kind: "egress-route",
        host: "api.example.com",
        methods: ["GET"],
        reason: "read \u001b[31mdocs",
      }),
      requestRecord(QUESTION, { kind: "question", question: "May I?" }),
    ]);
  });
  after(() => s.done());

  test("requests lists both, escaped; --json gives the raw values", async () => {
    const r = await runCli(["requests"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /r-route00001 {2}coder-abc123 .*api\.example\.com GET any path {2}"read \\u001b\[31mdocs"/,
    );
    assert.ok(!r.stdout.includes("\u001b"));
    const j = await runCli(["requests", SLUG, "--json"], { env });
    assert.equal(j.code, 0, j.stderr);
    const first = JSON.parse(j.stdout.split("\n")[0] ?? "") as { request: { reason: string } };
    assert.equal(first.request.reason, "read \u001b[31mdocs");
  });

  test("deny and answer write decisions the bundle (another user) can read, once", async () => {
    const d = await runCli(["deny", ROUTE, "--reason", "no"], { env });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, `denied ${ROUTE} (${SLUG}): no\n`);
    const a = await runCli(["answer", QUESTION, "yes"], { env });
    assert.equal(a.code, 0, a.stderr);
    const dir = join(s.dir(SLUG), "bundle", "decisions");
    assert.equal((await stat(dir)).mode & 0o777, 0o755);
    for (const id of [ROUTE, QUESTION]) {
      const file = join(dir, `${id}.json`);
      assert.equal((await stat(file)).mode & 0o777, 0o644);
      assert.equal(parseDecision(await readFile(file, "utf8"), file).slug, SLUG);
    }
    const again = await runCli(["deny", ROUTE], { env });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already has a decision \(deny\)/);
    assert.doesNotMatch(again.stderr, STACK_LINE);
  });

  test("logs --audit shows the supervise records beside the others", async () => {
    const r = await runCli(["logs", SLUG, "--audit"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      / supervise request r-route00001 egress-route api\.example\.com GET any path/,
    );
    assert.match(r.stdout, / supervise request r-quest00001 question "May I\?"/);
  });
});
