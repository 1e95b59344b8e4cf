import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { run } from "../../../src/cli/program.js";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import type { GitAuditRecord } from "../../../src/shared/git-gate-config.js";
import { capture } from "../../helpers/capture.js";
import { STACK_LINE } from "../../helpers/cli.js";

const egress: AuditRecord = {
  time: "2026-11-25T10:00:02.000Z",
  kind: "https",
  method: "GET",
  host: "api.example.com",
  port: 443,
  path: "/v1/x",
  decision: "allow",
  tag: "allowed",
  status: 200,
  bytesOut: 10,
  bytesIn: 20,
  ms: 5,
};

const git: GitAuditRecord = {
  time: "2026-11-25T10:00:01.000Z",
  repo: "app",
  op: "fetch",
  decision: "allow",
  tag: "served",
  ms: 30,
};

/** A state root with one bottle "b1" whose audit files hold the given records. */
async function stateRoot(): Promise<{ env: NodeJS.ProcessEnv; done: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), "bot-bottle-logs-"));
  const dir = join(root, "bot-bottle", "b1");
  await mkdir(join(dir, "audit"), { recursive: true });
  await writeFile(join(dir, "metadata.json"), JSON.stringify({ slug: "b1" }));
  const jsonl = (...r: object[]) => r.map((x) => JSON.stringify(x) + "\n").join("");
  await writeFile(
    join(dir, "audit", "egress.jsonl"),
    jsonl(egress, { ...egress, time: "2026-11-25T10:00:04.000Z", path: "/v1/y" }),
  );
  await writeFile(
    join(dir, "audit", "git.jsonl"),
    "not a record\n" + jsonl(git, { ...git, time: "2026-11-25T10:00:03.000Z", repo: "lib" }),
  );
  return {
    env: { XDG_STATE_HOME: root },
    done: () => rm(root, { recursive: true, force: true }),
  };
}

describe("bot-bottle logs: the audit views", () => {
  test("--egress, --git and --audit are one choice: two of them is a usage error", async () => {
    for (const pair of [
      ["--egress", "--git"],
      ["--git", "--audit"],
      ["--egress", "--audit"],
    ]) {
      const c = capture();
      assert.equal(await run(["logs", "b1", ...pair], c.ctx), 2, pair.join(" "));
      assert.match(c.err(), new RegExp(`${pair[0]} and ${pair[1]} cannot be combined`));
      assert.match(c.err(), /hint: give one: --egress/);
      assert.doesNotMatch(c.err(), STACK_LINE);
      assert.equal(c.out(), "");
    }
  });

  test("--audit interleaves egress and git records in time order", async () => {
    const s = await stateRoot();
    try {
      const c = capture(s.env);
      assert.equal(await run(["logs", "b1", "--audit"], c.ctx), 0, c.err());
      assert.deepEqual(c.out().trimEnd().split("\n"), [
        "10:00:01.000 git    fetch allow  served app 30ms",
        "10:00:02.000 egress allow  GET     api.example.com/v1/x 200 ↑10B ↓20B 5ms",
        "10:00:03.000 git    fetch allow  served lib 30ms",
        "10:00:04.000 egress allow  GET     api.example.com/v1/y 200 ↑10B ↓20B 5ms",
      ]);
    } finally {
      await s.done();
    }
  });

  test("--audit --json prints each record with its source", async () => {
    const s = await stateRoot();
    try {
      const c = capture(s.env);
      assert.equal(await run(["logs", "b1", "--audit", "--json"], c.ctx), 0, c.err());
      const records = c
        .out()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(
        records.map((r) => r["source"]),
        ["git", "egress", "git", "egress"],
      );
      assert.deepEqual(records[0], { source: "git", ...git });
    } finally {
      await s.done();
    }
  });

  test("--git shows the git gate's records alone; --json prints them as written", async () => {
    const s = await stateRoot();
    try {
      const c = capture(s.env);
      assert.equal(await run(["logs", "b1", "--git"], c.ctx), 0, c.err());
      assert.deepEqual(c.out().trimEnd().split("\n"), [
        "10:00:01.000 git    fetch allow  served app 30ms",
        "10:00:03.000 git    fetch allow  served lib 30ms",
      ]);
      const j = capture(s.env);
      assert.equal(await run(["logs", "b1", "--git", "--json"], j.ctx), 0, j.err());
      assert.deepEqual(JSON.parse(j.out().split("\n")[0] ?? ""), git);
    } finally {
      await s.done();
    }
  });

  test("--egress keeps its own lines, without a source column", async () => {
    const s = await stateRoot();
    try {
      const c = capture(s.env);
      assert.equal(await run(["logs", "b1", "--egress"], c.ctx), 0, c.err());
      assert.equal(
        c.out().split("\n")[0],
        "10:00:02.000 allow  GET     api.example.com/v1/x 200 ↑10B ↓20B 5ms",
      );
    } finally {
      await s.done();
    }
  });
});
