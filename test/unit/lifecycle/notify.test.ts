import assert from "node:assert/strict";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { processRunner, type Runner } from "../../../src/exec/run.js";
import {
  NOTIFY_FILE,
  NOTIFY_LOG,
  startNotifyWatcher,
  watchNotify,
} from "../../../src/lifecycle/notify.js";
import {
  fakeStateRoot,
  fromNow,
  requestRecord,
  type FakeStateRoot,
} from "../../helpers/request-queue.js";

const SLUG = "coder-abc123";
const SETTINGS = { wait_seconds: 120, timeout_seconds: 3600, rate_per_minute: 10 };

/** A notify program: appends what it was given (stdin, its variables) as one JSON line to $OUT. */
const RECORDER = [
  process.execPath,
  "-e",
  'let d = ""; process.stdin.on("data", (c) => (d += c)).on("end", () => { require("fs").appendFileSync(process.env.OUT, JSON.stringify({ stdin: d, slug: process.env.BOT_BOTTLE_SLUG, id: process.env.BOT_BOTTLE_REQUEST_ID, summary: process.env.BOT_BOTTLE_REQUEST_SUMMARY }) + "\\n"); if (process.env.BOT_BOTTLE_REQUEST_ID === "r-fail000001") process.exit(3); });',
];

interface Call {
  stdin: string;
  slug: string;
  id: string;
  summary: string;
}

async function calls(file: string): Promise<Call[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Call);
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 8000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what} within 8 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("supervise.notify: the watcher start leaves behind", () => {
  let s: FakeStateRoot;
  beforeEach(async () => {
    s = await fakeStateRoot();
    await s.add(SLUG, "running", [
      requestRecord("r-pend000001", { kind: "question", question: "May I?" }),
      requestRecord("r-done000001", { kind: "question", question: "Old?" }),
      {
        time: fromNow(-30),
        event: "decided",
        id: "r-done000001",
        outcome: "answered",
        by: "operator",
        answer: "no",
      },
    ]);
  });
  afterEach(() => s.done());

  test("start leaves a detached notify-watch for a bottle with a notify command, which is kept 0600 in the state dir", async () => {
    const started: { command: string; args: readonly string[]; logFile: string }[] = [];
    const runner: Runner = {
      ...processRunner,
      startDetached: (command, args, options) => {
        started.push({ command, args, logFile: options.logFile });
        return Promise.resolve({ pid: 4242, exited: () => undefined });
      },
    };
    const none = await startNotifyWatcher({
      supervise: SETTINGS,
      slug: SLUG,
      stateDir: s.dir(SLUG),
      env: {},
      runner,
    });
    assert.equal(none, undefined);
    assert.equal(started.length, 0, "no notify command, no watcher");
    const child = await startNotifyWatcher({
      supervise: { ...SETTINGS, notify: { command: ["ntfy", "publish", "mytopic"] } },
      slug: SLUG,
      stateDir: s.dir(SLUG),
      env: {},
      runner,
      cli: ["/usr/bin/node", "/opt/bot-bottle/dist/cli/bin.js"],
    });
    assert.equal(child?.pid, 4242);
    assert.deepEqual(started, [
      {
        command: "/usr/bin/node",
        args: ["/opt/bot-bottle/dist/cli/bin.js", "notify-watch", SLUG],
        logFile: join(s.dir(SLUG), NOTIFY_LOG),
      },
    ]);
    const file = join(s.dir(SLUG), NOTIFY_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, "utf8")), {
      command: ["ntfy", "publish", "mytopic"],
    });
  });

  test("runs the command for each pending and each new request (never a decided one), the agent's text escaped, and exits when the bottle stops", async () => {
    const out = join(s.dir(SLUG), "calls.jsonl");
    await writeFile(join(s.dir(SLUG), NOTIFY_FILE), JSON.stringify({ command: RECORDER }));
    const log: string[] = [];
    const watching = watchNotify({
      slug: SLUG,
      stateDir: s.dir(SLUG),
      env: { ...process.env, OUT: out },
      log: (l) => log.push(l),
      intervalMs: 50,
    });
    await until("the pending request is notified", async () =>
      (await calls(out)).length >= 1 ? true : undefined,
    );
    const reason = "cdn\u001b[2J\u202e\nfake";
    await s.append(SLUG, [
      requestRecord("r-fail000001", { kind: "question", question: "fails?" }),
      requestRecord(
        "r-new0000001",
        { kind: "egress-route", host: "xn--pple-43d.com", reason },
        { flags: ["mixed-script host name"] },
      ),
      { time: fromNow(0), event: "decided", id: "r-pend000001", outcome: "denied", by: "operator" },
    ]);
    const seen = await until("the new requests are notified", async () => {
      const c = await calls(out);
      return c.length >= 3 ? c : undefined;
    });
    assert.deepEqual(
      seen.map((c) => [c.slug, c.id]),
      [
        [SLUG, "r-pend000001"],
        [SLUG, "r-fail000001"],
        [SLUG, "r-new0000001"],
      ],
    );
    const last = seen[2] as Call;
    const payload = JSON.parse(last.stdin) as { request: { reason: string }; flags: string[] };
    assert.equal(payload.request.reason, reason, "the raw value, for programs");
    assert.deepEqual(payload.flags, ["mixed-script host name"]);
    for (const c of ["\u001b", "\u202e"]) {
      assert.ok(!last.stdin.includes(c), `stdin hides no ${JSON.stringify(c)}`);
      assert.ok(!last.summary.includes(c), `the summary hides no ${JSON.stringify(c)}`);
    }
    assert.equal(
      last.summary,
      `${SLUG} asks (r-new0000001): egress-route xn--pple-43d.com any method any path — "cdn\\u001b[2J\\u202e\\nfake" [! mixed-script host name]`,
    );
    await until("the failure is logged", () =>
      Promise.resolve(
        log.some((l) => /^notify for r-fail000001 failed: .*exited with status 3/.test(l))
          ? true
          : undefined,
      ),
    );

    const meta = join(s.dir(SLUG), "metadata.json");
    await writeFile(meta, JSON.stringify({ slug: SLUG, status: "stopped" }));
    await watching;
    assert.equal((await calls(out)).length, 3);
  });

  test("does not start for a bottle that is not running", async () => {
    await writeFile(join(s.dir(SLUG), NOTIFY_FILE), JSON.stringify({ command: RECORDER }));
    await writeFile(
      join(s.dir(SLUG), "metadata.json"),
      JSON.stringify({ slug: SLUG, status: "failed" }),
    );
    const out = join(s.dir(SLUG), "calls.jsonl");
    await watchNotify({ slug: SLUG, stateDir: s.dir(SLUG), env: { ...process.env, OUT: out } });
    assert.deepEqual(await calls(out), []);
  });
});
