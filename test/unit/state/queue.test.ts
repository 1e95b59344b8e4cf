import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { SuperviseRecord } from "../../../src/shared/supervise.js";
import { parseDecision } from "../../../src/shared/supervise.js";
import {
  AUDIT_SOURCE_NAMES,
  auditEntryJson,
  readAuditTrail,
  renderAuditEntry,
} from "../../../src/state/audit.js";
import {
  DecisionExistsError,
  decisionFile,
  escapedJson,
  foldQueue,
  loadQueue,
  readQueue,
  writeDecision,
} from "../../../src/state/queue.js";

const T0 = "2026-11-25T10:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();
const NOW = new Date(at(60));

const route: SuperviseRecord = {
  time: T0,
  event: "request",
  id: "r-aaaaaaaaaa",
  request: {
    kind: "egress-route",
    host: "api.example.com",
    paths: ["/v1/"],
    methods: ["GET"],
    reason: "to read the docs",
  },
  deadline: at(3600),
  flags: [],
};
const question: SuperviseRecord = {
  time: at(1),
  event: "request",
  id: "r-bbbbbbbbbb",
  request: { kind: "question", question: "May I delete build/?" },
  deadline: at(3601),
  flags: [],
};
const repo: SuperviseRecord = {
  time: at(2),
  event: "request",
  id: "r-cccccccccc",
  request: { kind: "git-repo", upstream: "git@github.com:o/r.git", reason: "a dependency" },
  deadline: at(30), // before NOW
  flags: [],
};

const lines = (...records: object[]) => records.map((r) => JSON.stringify(r) + "\n").join("");

describe("the request queue, folded from audit/supervise.jsonl", () => {
  test("a request stays pending until the bundle records what became of it", () => {
    const [entry] = foldQueue([route], NOW);
    assert.equal(entry?.status, "pending");
    assert.equal(entry?.outcome, undefined);
    const decided = foldQueue(
      [
        route,
        {
          time: at(10),
          event: "decided",
          id: route.id,
          outcome: "approved",
          by: "operator",
          until: at(3610),
          applied: "api.example.com GET /v1/",
        },
      ],
      NOW,
    );
    assert.deepEqual(decided[0]?.status, "approved");
    assert.deepEqual(decided[0]?.outcome, {
      by: "operator",
      time: at(10),
      until: at(3610),
      applied: "api.example.com GET /v1/",
    });
  });

  test("a pending request past its deadline is denied (timeout) before the bundle says so", () => {
    const entries = foldQueue([route, repo], NOW);
    assert.deepEqual(
      entries.map((e) => [e.id, e.status, e.outcome?.by]),
      [
        ["r-aaaaaaaaaa", "pending", undefined],
        ["r-cccccccccc", "denied", "timeout"],
      ],
    );
    assert.equal(entries[1]?.outcome?.time, repo.deadline);
  });

  test("an approval whose lease ended is expired; answers and denials keep their text", () => {
    const entries = foldQueue(
      [
        route,
        question,
        { time: at(5), event: "decided", id: route.id, outcome: "approved", by: "operator" },
        {
          time: at(6),
          event: "decided",
          id: question.id,
          outcome: "answered",
          by: "operator",
          answer: "yes",
        },
        { time: at(40), event: "expired", id: route.id, applied: "api.example.com GET /v1/" },
      ],
      NOW,
    );
    assert.equal(entries[0]?.status, "expired");
    assert.equal(entries[0]?.outcome?.applied, "api.example.com GET /v1/");
    assert.equal(entries[1]?.status, "answered");
    assert.equal(entries[1]?.outcome?.answer, "yes");
  });

  test("the first record for an id counts: a repeated request or decision changes nothing", () => {
    const entries = foldQueue(
      [
        route,
        { ...route, time: at(3), request: { ...question.request } },
        {
          time: at(5),
          event: "decided",
          id: route.id,
          outcome: "denied",
          by: "operator",
          reason: "no",
        },
        { time: at(6), event: "decided", id: route.id, outcome: "approved", by: "operator" },
        { time: at(7), event: "decided", id: "r-zzzzzzzzzz", outcome: "approved", by: "operator" },
        { time: at(8), event: "expired", id: route.id },
      ],
      NOW,
    );
    assert.equal(entries.length, 1);
    assert.equal(entries[0]?.request.kind, "egress-route");
    assert.equal(entries[0]?.status, "denied");
    assert.equal(entries[0]?.outcome?.reason, "no");
  });
});

describe("reading a bottle's queue and writing a decision", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-queue-"));
    await mkdir(join(dir, "audit"));
    await mkdir(join(dir, "bundle"), { mode: 0o755 });
    await writeFile(
      join(dir, "audit", "supervise.jsonl"),
      "not a record\n" +
        lines(route, question, {
          time: at(3),
          event: "refused",
          kind: "x",
          reason: "y",
          input: "",
        }),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("reads the file, skipping lines that are not records; no decisions folder is no decision", async () => {
    const entries = await readQueue(dir, NOW);
    assert.deepEqual(
      entries.map((e) => [e.id, e.status, e.sent]),
      [
        ["r-aaaaaaaaaa", "pending", undefined],
        ["r-bbbbbbbbbb", "pending", undefined],
      ],
    );
  });

  test("writes a decision complete, 0644 in a 0755 folder whatever the umask, that the bundle's parser reads", async () => {
    const previous = process.umask(0o077);
    try {
      const file = await writeDecision(dir, {
        slug: "coder-abc123",
        id: route.id,
        decision: "deny",
        time: at(20),
        reason: "not today",
      });
      assert.equal(file, decisionFile(dir, route.id));
      assert.equal((await stat(file)).mode & 0o777, 0o644);
      assert.equal((await stat(join(dir, "bundle", "decisions"))).mode & 0o777, 0o755);
      const decision = parseDecision(await readFile(file, "utf8"), file);
      assert.deepEqual(decision, {
        slug: "coder-abc123",
        id: route.id,
        decision: "deny",
        time: at(20),
        reason: "not today",
      });
    } finally {
      process.umask(previous);
    }
  });

  test("a decision written and not yet recorded shows as sent; the request stays pending", async () => {
    const { entries, offsets } = await loadQueue(dir, NOW);
    assert.equal(entries[0]?.status, "pending");
    assert.equal(entries[0]?.sent, "deny");
    assert.equal(entries[1]?.sent, undefined);
    assert.ok((offsets.get("supervise") ?? 0) > 0);
  });

  test("refuses a second decision for the same request and leaves the first, and no temp file", async () => {
    await assert.rejects(
      writeDecision(dir, { slug: "coder-abc123", id: route.id, decision: "approve", time: at(21) }),
      (err: unknown) =>
        err instanceof DecisionExistsError &&
        /request r-aaaaaaaaaa already has a decision: a decision is used once/.test(err.message),
    );
    const file = decisionFile(dir, route.id);
    assert.equal(parseDecision(await readFile(file, "utf8"), file).decision, "deny");
    assert.deepEqual(await readdir(join(dir, "bundle", "decisions")), ["r-aaaaaaaaaa.json"]);
  });

  test("refuses a decision that does not match the schema (a bad id), writing nothing", async () => {
    await assert.rejects(
      writeDecision(dir, { slug: "s", id: "../../x", decision: "deny", time: at(1) }),
    );
    assert.deepEqual(await readdir(join(dir, "bundle", "decisions")), ["r-aaaaaaaaaa.json"]);
  });
});

describe("supervise in the audit trail", () => {
  const clock = "10:00:00.000";
  test("is one of the sources `logs --audit` interleaves", () => {
    assert.ok(AUDIT_SOURCE_NAMES.includes("supervise"));
  });

  test("a request reads as its kind, what it asks and why; flags are shown", () => {
    assert.equal(
      renderAuditEntry({ source: "supervise", record: route }),
      `${clock} supervise request r-aaaaaaaaaa egress-route api.example.com GET /v1/ "to read the docs"`,
    );
    assert.equal(
      renderAuditEntry({
        source: "supervise",
        record: {
          ...route,
          request: { kind: "egress-route", host: "xn--pple-43d.com", reason: "" },
          flags: ["mixed-script host name"],
        },
      }),
      `${clock} supervise request r-aaaaaaaaaa egress-route xn--pple-43d.com any method any path "" [mixed-script host name]`,
    );
    assert.match(
      renderAuditEntry({ source: "supervise", record: question }),
      /request r-bbbbbbbbbb question "May I delete build\/\?"$/,
    );
  });

  test("decisions, refusals and expiry each read as one line", () => {
    const line = (record: SuperviseRecord) =>
      renderAuditEntry({ source: "supervise", record }).slice(clock.length + 1);
    assert.equal(
      line({
        time: T0,
        event: "decided",
        id: route.id,
        outcome: "approved",
        by: "operator",
        until: at(3598),
        applied: "api.example.com GET /v1/",
      }),
      "supervise decided r-aaaaaaaaaa approved for 1h by operator (api.example.com GET /v1/)",
    );
    assert.equal(
      line({ time: T0, event: "decided", id: route.id, outcome: "denied", by: "timeout" }),
      "supervise decided r-aaaaaaaaaa denied by timeout",
    );
    assert.equal(
      line({
        time: T0,
        event: "decided",
        id: route.id,
        outcome: "denied",
        by: "operator",
        reason: "no",
      }),
      "supervise decided r-aaaaaaaaaa denied by operator: no",
    );
    assert.equal(
      line({ time: T0, event: "refused", kind: "request_egress_route", reason: "rate", input: "" }),
      "supervise refused request_egress_route: rate",
    );
    assert.equal(
      line({ time: T0, event: "expired", id: route.id, applied: "api.example.com" }),
      "supervise expired r-aaaaaaaaaa (api.example.com)",
    );
  });

  test("the agent's text is shown escaped: no escape sequence, bidi override or newline gets through", () => {
    const hostile: SuperviseRecord = {
      ...route,
      request: {
        kind: "egress-route",
        host: "api.example.com",
        reason: "ok\u001b[2J\u001b[31mAPPROVED\u202e\nfake line",
      },
    };
    const text = renderAuditEntry({ source: "supervise", record: hostile });
    for (const c of ["\u001b", "\u202e", "\n"]) assert.ok(!text.includes(c), JSON.stringify(c));
    assert.match(text, /\\u001b\[2J|\\x1b\[2J/);
    assert.match(text, /\\u202e/);
    const refused = renderAuditEntry({
      source: "supervise",
      record: {
        time: T0,
        event: "refused",
        kind: "ask\u001b]0;x\u0007",
        reason: "r\u200b",
        input: "",
      },
    });
    for (const c of ["\u001b", "\u0007", "\u200b"])
      assert.ok(!refused.includes(c), JSON.stringify(c));
  });

  test("logs --audit reads supervise.jsonl beside the others, in time order, with its source in JSON", async () => {
    const dir = await mkdtemp(join(tmpdir(), "bot-bottle-queue-audit-"));
    try {
      await mkdir(join(dir, "audit"));
      await writeFile(join(dir, "audit", "supervise.jsonl"), lines(route, question));
      await writeFile(
        join(dir, "audit", "git.jsonl"),
        lines({ time: at(0.5), repo: "app", op: "fetch", decision: "allow", tag: "served", ms: 3 }),
      );
      const { entries } = await readAuditTrail(dir, AUDIT_SOURCE_NAMES);
      assert.deepEqual(
        entries.map((e) => e.source),
        ["supervise", "git", "supervise"],
      );
      const first = entries[0];
      assert.ok(first);
      assert.deepEqual(JSON.parse(auditEntryJson(first)), { source: "supervise", ...route });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("JSON for programs that hides nothing", () => {
  test("escapes what a terminal would act on or hide, and reads back to the raw value", () => {
    const value = { reason: "a\u202eb\u200bc\u0085d\u2028e\u001bf\u007f" };
    const text = escapedJson(value);
    assert.ok(
      [...text].every((c) => c >= " " && c <= "~"),
      `only printable ASCII in ${text}`,
    );
    assert.deepEqual(JSON.parse(text), value);
  });
});
