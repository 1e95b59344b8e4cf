import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { followFlags, run } from "../../../src/cli/program.js";
import { approveRequest, type Grant } from "../../../src/lifecycle/requests.js";
import { parseDecision, type Decision } from "../../../src/shared/supervise.js";
import { capture } from "../../helpers/capture.js";
import { STACK_LINE } from "../../helpers/cli.js";
import {
  fakeStateRoot,
  fromNow,
  requestRecord,
  type FakeStateRoot,
} from "../../helpers/request-queue.js";
import { HOST_KEY } from "../../helpers/manifest.js";

const ROUTE = "r-route00001";
const QUESTION = "r-quest00001";
const REPO = "r-repo000001";
const LATE = "r-late000001";
const OLD = "r-old0000001";
const AWAY = "r-away000001";

const hostile = "docs\u001b[2J\u001b[31m APPROVED\u202e\nr-fake000000 pending";

async function decisionOf(s: FakeStateRoot, slug: string, id: string): Promise<Decision> {
  const file = join(s.dir(slug), "bundle", "decisions", `${id}.json`);
  return parseDecision(await readFile(file, "utf8"), file);
}

async function decisions(s: FakeStateRoot, slug: string): Promise<string[]> {
  return readdir(join(s.dir(slug), "bundle", "decisions")).catch(() => []);
}

describe("bot-bottle requests, approve, deny, answer (a fabricated state dir, no engine)", () => {
  let s: FakeStateRoot;
  beforeEach(async () => {
    s = await fakeStateRoot();
    await s.add("coder-abc123", "running", [
      requestRecord(
        ROUTE,
        {
          kind: "egress-route",
          host: "api.example.com",
          paths: ["/v1/"],
          methods: ["GET"],
          reason: hostile,
        },
        { age: 600 },
      ),
      requestRecord(QUESTION, { kind: "question", question: "May I delete build/?" }, { age: 300 }),
      requestRecord(
        REPO,
        { kind: "git-repo", upstream: "git@github.com:o/r.git", reason: "a dependency" },
        { age: 200 },
      ),
      requestRecord(
        LATE,
        { kind: "egress-route", host: "xn--pple-43d.com", reason: "cdn" },
        { age: 7200, deadlineIn: -3600, flags: ["mixed-script host name"] },
      ),
      requestRecord(OLD, { kind: "egress-route", host: "pypi.org", reason: "pip" }, { age: 9000 }),
      {
        time: fromNow(-8000),
        event: "decided",
        id: OLD,
        outcome: "approved",
        by: "operator",
        until: fromNow(600),
        applied: "pypi.org any method any path",
      },
    ]);
    await s.add("other-def456", "stopped", [
      requestRecord(AWAY, { kind: "question", question: "still there?" }),
    ]);
  });
  afterEach(() => s.done());

  test("lists the running bottles' pending requests first, then the decided, the agent's text escaped", async () => {
    const c = capture(s.env);
    assert.equal(await run(["requests"], c.ctx), 0, c.err());
    const lines = c.out().trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^ID\s+BOTTLE\s+AGE\s+KIND\s+WHAT\s+REASON\s+STATUS$/);
    assert.deepEqual(
      lines.slice(1).map((l) => l.split(/\s+/)[0]),
      [ROUTE, QUESTION, REPO, LATE, OLD],
      "pending oldest first, then the latest decided; the stopped bottle's request is not shown",
    );
    assert.match(
      lines[1] ?? "",
      /coder-abc123\s+10m\s+egress-route\s+api\.example\.com GET \/v1\//,
    );
    assert.match(lines[1] ?? "", /pending \(\d+m left\)$/);
    assert.match(lines[2] ?? "", /question\s+"May I delete build\/\?"\s+-\s+pending/);
    assert.match(lines[4] ?? "", /\[! mixed-script host name\].*denied \(timeout\)$/);
    assert.match(lines[5] ?? "", /approved until \d\d:\d\d UTC$/);
    for (const c0 of ["\u001b", "\u202e"]) assert.ok(!c.out().includes(c0), JSON.stringify(c0));
    assert.match(c.out(), /\\u001b\[2J/);
    assert.equal(lines.length, 6, "the agent's newline did not make a line of its own");
  });

  test("warns of a pending request's flags; --json prints each entry, raw values escaped", async () => {
    await s.append("coder-abc123", [
      requestRecord(
        "r-mixed00001",
        { kind: "egress-route", host: "xn--pple-43d.com", reason: "cdn" },
        { flags: ["mixed-script host name"] },
      ),
    ]);
    const c = capture(s.env);
    assert.equal(await run(["requests", "coder-abc123"], c.ctx), 0, c.err());
    assert.match(
      c.err(),
      /^warning: r-mixed00001 \(coder-abc123\) xn--pple-43d\.com any method any path: mixed-script host name/m,
    );
    const j = capture(s.env);
    assert.equal(await run(["requests", "--json"], j.ctx), 0, j.err());
    const rows = j
      .out()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; slug: string; request: { reason?: string } });
    assert.equal(rows[0]?.id, ROUTE);
    assert.equal(rows[0]?.slug, "coder-abc123");
    assert.equal(rows[0]?.request.reason, hostile, "the raw value, for programs");
    assert.ok(!j.out().includes("\u202e") && !j.out().includes("\u001b"));
    assert.ok(!("stateDir" in (rows[0] ?? {})));
  });

  test("names a bottle with no state dir; says when there are no requests", async () => {
    const c = capture(s.env);
    assert.equal(await run(["requests", "nobody-000000"], c.ctx), 2);
    assert.match(c.err(), /there is no running bottle "nobody-000000"/);
    const e = capture({ XDG_STATE_HOME: "/nonexistent" });
    assert.equal(await run(["requests"], e.ctx), 0);
    assert.equal(e.out(), "");
    assert.match(e.err(), /no requests from running bottles/);
  });

  test("deny writes the decision for that bottle and prints one line; a second decision is refused", async () => {
    const c = capture(s.env);
    assert.equal(await run(["deny", ROUTE, "--reason", "not today"], c.ctx), 0, c.err());
    assert.equal(c.out(), `denied ${ROUTE} (coder-abc123): not today\n`);
    const d = await decisionOf(s, "coder-abc123", ROUTE);
    assert.deepEqual(
      { slug: d.slug, id: d.id, decision: d.decision, reason: d.reason },
      { slug: "coder-abc123", id: ROUTE, decision: "deny", reason: "not today" },
    );
    const again = capture(s.env);
    assert.equal(await run(["approve", ROUTE], again.ctx), 2);
    assert.match(
      again.err(),
      /request r-route00001 of coder-abc123 already has a decision \(deny\) waiting for the bundle to read it: a decision is used once/,
    );
    const list = capture(s.env);
    await run(["requests"], list.ctx);
    assert.match(list.out(), /r-route00001 .*pending \(deny sent\)/);
  });

  test("answer writes the operator's answer to a question, and refuses to answer a route", async () => {
    const c = capture(s.env);
    assert.equal(await run(["answer", QUESTION, "yes, build/ only"], c.ctx), 0, c.err());
    assert.equal(c.out(), `answered ${QUESTION} (coder-abc123): "yes, build/ only"\n`);
    assert.equal((await decisionOf(s, "coder-abc123", QUESTION)).answer, "yes, build/ only");
    const route = capture(s.env);
    assert.equal(await run(["answer", ROUTE, "sure"], route.ctx), 2);
    assert.match(
      route.err(),
      /request r-route00001 of coder-abc123 asks for a route, not an answer/,
    );
    assert.match(route.err(), /hint: approve it \(bot-bottle approve r-route00001\)/);
    const empty = capture(s.env);
    assert.equal(await run(["answer", ROUTE, "  "], empty.ctx), 2);
    assert.match(empty.err(), /the answer is empty/);
    assert.deepEqual(await decisions(s, "coder-abc123"), [`${QUESTION}.json`]);
  });

  test("approve refuses a question (answer it), and a git upstream without its pinned host key or key file, writing nothing", async () => {
    const q = capture(s.env);
    assert.equal(await run(["approve", QUESTION], q.ctx), 2);
    assert.match(q.err(), /request r-quest00001 of coder-abc123 is a question/);
    assert.match(q.err(), /hint: answer it: bot-bottle answer r-quest00001 TEXT/);
    const g = capture(s.env);
    assert.equal(await run(["approve", REPO], g.ctx), 2);
    assert.match(g.err(), /--host-key is missing — an SSH upstream needs its host key pinned/);
    assert.match(g.err(), /hint: an SSH upstream needs --host-key "ssh-ed25519 AAAA…"/);
    assert.doesNotMatch(g.err(), STACK_LINE);
    const k = capture(s.env);
    assert.equal(await run(["approve", REPO, "--host-key", HOST_KEY], k.ctx), 2);
    assert.match(k.err(), /--key-file is missing/);
    const r = capture(s.env);
    assert.equal(await run(["approve", ROUTE, "--name", "x"], r.ctx), 2);
    assert.match(
      r.err(),
      /is for a route: --host-key, --key-file, --token-env and --name are for a git repository request/,
    );
    assert.deepEqual(await decisions(s, "coder-abc123"), []);
  });

  test("refuses a request past its deadline, already decided, of a stopped bottle, or unknown", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["deny", LATE],
        /request r-late000001 of coder-abc123 passed its deadline .*denied \(timeout\)/,
      ],
      [
        ["deny", OLD],
        /request r-old0000001 of coder-abc123 is already approved .*a decision is used once/,
      ],
      [["answer", AWAY, "yes"], /request r-away000001 is of other-def456, which is stopped/],
      [["deny", "r-zzzzzzzzzz"], /no bottle has a request r-zzzzzzzzzz/],
    ];
    for (const [argv, message] of cases) {
      const c = capture(s.env);
      assert.equal(await run(argv, c.ctx), 2, argv.join(" "));
      assert.match(c.err(), message);
      assert.doesNotMatch(c.err(), STACK_LINE);
      assert.equal(c.out(), "");
    }
    assert.deepEqual(await decisions(s, "coder-abc123"), []);
    assert.deepEqual(await decisions(s, "other-def456"), []);
  });

  test("checks an id's shape before looking anywhere, and shows a bad one escaped", async () => {
    for (const bad of ["../../etc/passwd", "r-SHORT", "r-aaaaaaaaaa.json", "x\u001b[31m"]) {
      const c = capture(s.env);
      assert.equal(await run(["deny", bad], c.ctx), 2, bad);
      assert.match(c.err(), /is not a request id/);
      assert.match(c.err(), /hint: ids look like "r-7k2m9x4p0q"/);
      assert.ok(!c.err().includes("\u001b"));
    }
  });

  test("approve --for must be a duration, refused before anything is granted", async () => {
    const c = capture(s.env);
    assert.equal(await run(["approve", ROUTE, "--for", "2 hours"], c.ctx), 2);
    assert.match(c.err(), /--for must be a duration: .*e\.g\. "30s", "5m", "2h"/);
    assert.deepEqual(await decisions(s, "coder-abc123"), []);
  });

  test("approve grants the route, then writes the decision with its lease and what was added", async () => {
    const calls: Parameters<Grant>[0][] = [];
    const grant: Grant = (options) => {
      calls.push(options);
      return Promise.resolve("api.example.com GET /v1/");
    };
    const now = new Date();
    const r = await approveRequest({
      env: s.env,
      id: ROUTE,
      backends: [],
      for: "2h",
      persist: true,
      now,
      grant,
    });
    assert.equal(calls.length, 1);
    const until = new Date(now.getTime() + 7200_000).toISOString();
    assert.deepEqual(
      { ...calls[0], request: calls[0]?.request.kind },
      {
        slug: "coder-abc123",
        stateDir: s.dir("coder-abc123"),
        env: s.env,
        backends: [],
        request: "egress-route",
        id: ROUTE,
        until,
        persist: true,
      },
    );
    assert.equal(r.until, until);
    assert.deepEqual(await decisionOf(s, "coder-abc123", ROUTE), {
      slug: "coder-abc123",
      id: ROUTE,
      decision: "approve",
      time: now.toISOString(),
      until,
      applied: "api.example.com GET /v1/",
    });
  });

  test("a grant that fails writes no decision: the request stays pending", async () => {
    const grant: Grant = () => Promise.reject(new Error("the proxy kept its routes"));
    await assert.rejects(
      approveRequest({ env: s.env, id: ROUTE, backends: [], grant }),
      /the proxy kept its routes/,
    );
    assert.deepEqual(await decisions(s, "coder-abc123"), []);
  });

  test("-f follows: a new request and a change of status are printed as they come", async () => {
    const c = capture(s.env);
    const running = run(["requests", "coder-abc123", "-f"], c.ctx);
    const until = async (what: RegExp) => {
      const deadline = Date.now() + 5000;
      while (!what.test(c.out())) {
        if (Date.now() > deadline) assert.fail(`${String(what)} within 5 s; got:\n${c.out()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    try {
      await until(/^ID/);
      await s.append("coder-abc123", [
        requestRecord("r-new0000001", { kind: "question", question: "new?" }, { age: 0 }),
        { time: fromNow(0), event: "decided", id: ROUTE, outcome: "denied", by: "operator" },
      ]);
      await until(/^r-new0000001 {2}coder-abc123 {2}\d+s {2}question {2}"new\?" {2}- {2}pending/m);
      await until(/^r-route00001 .* {2}denied$/m);
    } finally {
      process.emit("SIGINT");
    }
    assert.equal(await running, 0, c.err());
  });
});

describe("-f after logs or requests is their --follow", () => {
  test("before a command it is still the manifest", () => {
    assert.deepEqual(followFlags(["requests", "-f"]), ["requests", "--follow"]);
    assert.deepEqual(followFlags(["-f", "m.json", "logs", "b1", "-f"]), [
      "-f",
      "m.json",
      "logs",
      "b1",
      "--follow",
    ]);
    assert.deepEqual(followFlags(["validate", "-f", "x.json"]), ["validate", "-f", "x.json"]);
    assert.deepEqual(followFlags(["exec", "b1", "--", "logs", "-f"]), [
      "exec",
      "b1",
      "--",
      "logs",
      "-f",
    ]);
  });
});
