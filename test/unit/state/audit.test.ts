import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import type { GitAuditRecord } from "../../../src/shared/git-gate-config.js";
import {
  auditEntryJson,
  auditFile,
  byTime,
  followAudit,
  parseAudit,
  parseAuditText,
  readAuditTail,
  readAuditTrail,
  renderAudit,
  renderAuditEntry,
  renderGitAudit,
  type AuditEntry,
} from "../../../src/state/audit.js";

const base: AuditRecord = {
  time: "2026-11-25T04:47:31.516Z",
  kind: "https",
  method: "POST",
  host: "api.anthropic.com",
  port: 443,
  path: "/v1/messages",
  decision: "allow",
  tag: "allowed",
  route: "api.anthropic.com",
  status: 200,
  bytesOut: 1200,
  bytesIn: 34_000,
  ms: 41.2,
};

const fetched: GitAuditRecord = {
  time: "2026-11-25T14:31:28.100Z",
  repo: "app",
  op: "fetch",
  decision: "allow",
  tag: "served",
  ms: 38,
};

const secretPush: GitAuditRecord = {
  time: "2026-11-25T14:31:29.865Z",
  repo: "app",
  op: "push",
  decision: "refuse",
  tag: "secret-detected",
  reason: "bot-bottle: the push adds an AWS access key in config.py:3",
  refs: [
    {
      ref: "refs/heads/main",
      old: "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678",
      new: "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80",
    },
  ],
  finding: {
    rule: "aws-access-token",
    file: "config.py",
    line: 3,
    commit: "5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80",
  },
  objects: 3,
  ms: 12,
};

const ZERO = "0".repeat(40);

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-audit-"));
  await mkdir(join(dir, "audit"));
  return dir;
}

const lines = (...records: object[]) => records.map((r) => JSON.stringify(r) + "\n").join("");

describe("the egress audit log", () => {
  test("parses JSON lines and skips what is not a record", () => {
    const text = [
      JSON.stringify(base),
      "not json",
      "{}",
      JSON.stringify({ ...base, decision: "refuse" }),
      "",
    ].join("\n");
    assert.deepEqual(
      parseAudit(text).map((r) => r.decision),
      ["allow", "refuse"],
    );
  });

  test("renders a line per decision for people", () => {
    assert.equal(
      renderAudit(base),
      "04:47:31.516 allow  POST    api.anthropic.com/v1/messages 200 ↑1200B ↓34kB 41.2ms",
    );
    const refused = renderAudit({
      ...base,
      kind: "connect",
      method: "CONNECT",
      host: "evil.test",
      port: 8443,
      path: "",
      decision: "refuse",
      tag: "not-in-routes",
      reason: 'bot-bottle: host "evil.test" is not in this bottle\'s routes',
    });
    assert.equal(
      refused,
      '04:47:31.516 refuse CONNECT evil.test:8443  [not-in-routes] bot-bottle: host "evil.test" is not in this bottle\'s routes',
    );
  });
});

describe("the git gate's audit log", () => {
  test("parses its own records and skips egress records, garbage and half lines", () => {
    const text = [
      JSON.stringify(fetched),
      JSON.stringify(base),
      "{not json",
      JSON.stringify(secretPush),
    ].join("\n");
    assert.deepEqual(
      parseAuditText("git", text).map((r) => r.op),
      ["fetch", "push"],
    );
  });

  test("renders a push refused for a secret with its refs and where the secret is", () => {
    assert.equal(
      renderGitAudit(secretPush),
      "14:31:29.865 git    push  refuse secret-detected app refs/heads/main 1a2b3c4→5d6e7f8  aws-access-token in config.py:3 (commit 5d6e7f8)",
    );
  });

  test("renders a fetch with the repository and the tag", () => {
    assert.equal(renderGitAudit(fetched), "14:31:28.100 git    fetch allow  served app 38ms");
  });

  test("renders a forwarded push with created and deleted refs and its objects", () => {
    const forwarded: GitAuditRecord = {
      ...fetched,
      op: "push",
      tag: "forwarded",
      refs: [
        { ref: "refs/heads/new", old: ZERO, new: "abcdef0123456789abcdef0123456789abcdef01" },
        { ref: "refs/heads/old", old: "0123456789abcdef0123456789abcdef01234567", new: ZERO },
      ],
      objects: 12,
      ms: 840,
    };
    assert.equal(
      renderGitAudit(forwarded),
      "14:31:28.100 git    push  allow  forwarded app refs/heads/new +abcdef0, refs/heads/old 0123456→(deleted) 12 objects 840ms",
    );
  });

  test("renders a refusal without a finding with its reason and the upstream's answer", () => {
    const rejected: GitAuditRecord = {
      ...fetched,
      op: "push",
      decision: "refuse",
      tag: "upstream-rejected",
      reason: "bot-bottle: the upstream refused the push",
      upstream: "! [remote rejected] main -> main (protected branch hook declined)",
    };
    assert.equal(
      renderGitAudit(rejected),
      "14:31:28.100 git    push  refuse upstream-rejected app  bot-bottle: the upstream refused the push — upstream: ! [remote rejected] main -> main (protected branch hook declined)",
    );
    const undeclared: GitAuditRecord = {
      ...fetched,
      repo: "other",
      op: "connect",
      decision: "refuse",
      tag: "undeclared",
      reason: 'bot-bottle: "other" is not a repository of this bottle',
    };
    assert.equal(
      renderGitAudit(undeclared),
      '14:31:28.100 git    connect refuse undeclared other  bot-bottle: "other" is not a repository of this bottle',
    );
  });
});

describe("the audit trail across sources", () => {
  test("egress lines in the mixed view carry their source, aligned with git's", () => {
    assert.equal(
      renderAuditEntry({ source: "egress", record: base }),
      "04:47:31.516 egress allow  POST    api.anthropic.com/v1/messages 200 ↑1200B ↓34kB 41.2ms",
    );
    assert.match(renderAuditEntry({ source: "git", record: fetched }), /^14:31:28\.100 git {4}/);
  });

  test("orders by instant, not by spelling, and keeps the source order for ties", () => {
    const entries: AuditEntry[] = [
      { source: "egress", record: { ...base, time: "2026-11-25T10:00:01Z" } },
      { source: "egress", record: { ...base, time: "2026-11-25T10:00:02.000Z" } },
      { source: "git", record: { ...fetched, time: "2026-11-25T10:00:01.500Z" } },
      { source: "git", record: { ...fetched, time: "2026-11-25T10:00:02Z" } },
      { source: "git", record: { ...fetched, time: "2026-11-25T09:59:59.999Z" } },
    ];
    assert.deepEqual(
      byTime(entries).map((e) => `${e.source} ${e.record.time}`),
      [
        "git 2026-11-25T09:59:59.999Z",
        "egress 2026-11-25T10:00:01Z",
        "git 2026-11-25T10:00:01.500Z",
        "egress 2026-11-25T10:00:02.000Z",
        "git 2026-11-25T10:00:02Z",
      ],
    );
  });

  test("reads both files interleaved in time; a missing file is empty; a half line waits", async () => {
    const dir = await stateDir();
    try {
      const t = (s: number) => `2026-11-25T10:00:0${s}.000Z`;
      await writeFile(
        auditFile(dir, "egress"),
        lines({ ...base, time: t(1) }, { ...base, time: t(3) }) + '{"time":',
      );
      await writeFile(
        auditFile(dir, "git"),
        "garbage\n" + lines({ ...fetched, time: t(2) }, { ...secretPush, time: t(4) }),
      );
      const { entries, offsets } = await readAuditTrail(dir, ["egress", "git"]);
      assert.deepEqual(
        entries.map((e) => `${e.source} ${e.record.time.slice(18, 19)}`),
        ["egress 1", "git 2", "egress 3", "git 4"],
      );
      const egressText = lines({ ...base, time: t(1) }, { ...base, time: t(3) });
      assert.equal(offsets.get("egress"), Buffer.byteLength(egressText));
      await rm(auditFile(dir, "git"));
      const onlyEgress = await readAuditTrail(dir, ["git"]);
      assert.deepEqual(onlyEgress.entries, []);
      assert.equal(onlyEgress.offsets.get("git"), 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("reads the ends of the files only: whole lines, in time order, a cut or half line left out", async () => {
    const dir = await stateDir();
    try {
      const t = (s: number) => `2026-11-25T10:00:${String(s).padStart(2, "0")}.000Z`;
      const egress = Array.from({ length: 40 }, (_, i) => ({ ...base, time: t(i) }));
      await writeFile(auditFile(dir, "egress"), lines(...egress) + '{"time":');
      await writeFile(auditFile(dir, "git"), lines({ ...fetched, time: t(39) }));
      const one = Buffer.byteLength(lines(egress[0]!));
      // A window of 5½ egress lines (and the half line): 5 whole ones, the cut one left out.
      const tail = await readAuditTail(
        dir,
        ["egress", "git", "supervise"],
        Math.floor(one * 5.5) + 8,
      );
      assert.deepEqual(
        tail.map((e) => `${e.source} ${e.record.time.slice(17, 19)}`),
        ["egress 35", "egress 36", "egress 37", "egress 38", "egress 39", "git 39"],
      );
      // A window larger than the file reads all of it.
      const all = await readAuditTail(dir, ["egress"], 1024 * 1024);
      assert.equal(all.length, 40);
      // A window inside one line has no whole line.
      assert.deepEqual(await readAuditTail(dir, ["git"], 10), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("follows every file from where the read stopped, in time order, finishing a half line", async () => {
    const dir = await stateDir();
    try {
      const first = JSON.stringify({ ...base, time: "2026-11-25T15:00:00.000Z" });
      await writeFile(auditFile(dir, "egress"), first + "\n" + first.slice(0, 20));
      const { offsets } = await readAuditTrail(dir, ["egress", "git"]);
      // Written after the read, before the follow's first poll: one poll sees them all.
      await appendFile(auditFile(dir, "egress"), first.slice(20) + "\n");
      await writeFile(auditFile(dir, "git"), lines(fetched, secretPush));
      const seen: string[] = [];
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 5000).unref(); // a failure, not a hang
      await followAudit(
        dir,
        ["egress", "git"],
        offsets,
        (e) => {
          seen.push(auditEntryJson(e));
          if (seen.length === 3) controller.abort();
        },
        controller.signal,
        5,
      );
      const parsed = seen.map((s) => JSON.parse(s) as { source: string; time: string });
      assert.deepEqual(
        parsed.map((p) => [p.source, p.time]),
        [
          ["git", fetched.time],
          ["git", secretPush.time],
          ["egress", "2026-11-25T15:00:00.000Z"],
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
