/**
 * The dashboard as pure state → frame, and key → state and effect: what each panel shows, which
 * request a key acts on, and that text the agent chose is shown escaped and cannot move the
 * layout. Rendered by ink's own test renderer at 80×24.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { render } from "ink-testing-library";
import { createElement as h } from "react";
import stringWidth from "string-width";
import type { BottleSummary } from "../../../src/lifecycle/bottles.js";
import type { BottleRequest } from "../../../src/lifecycle/requests.js";
import {
  initialState,
  press,
  progressed,
  SELECTION_SETTLE_MS,
  withData,
  type BottleRow,
  type DashboardState,
  type Key,
  type StartView,
} from "../../../src/dashboard/model.js";
import { Dashboard, KEYS } from "../../../src/dashboard/view.js";
import type { AuditEntry } from "../../../src/state/audit.js";

const NOW = new Date("2026-12-07T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

function bottle(slug: string, extra: Partial<BottleSummary> = {}): BottleRow {
  return {
    summary: {
      slug,
      agent: "coder",
      bottle: "dev",
      state: "running",
      backend: "docker",
      stateDir: `/state/${slug}`,
      workspace: "/work",
      template: "claude",
      created: ago(3_700),
      containers: [],
      networks: [],
      health: { status: "healthy" },
      ...extra,
    },
    egress: { allowed: 12, refused: 3 },
  };
}

function request(
  id: string,
  slug: string,
  age: number,
  extra: Partial<BottleRequest> = {},
): BottleRequest {
  return {
    id,
    slug,
    stateDir: `/state/${slug}`,
    time: ago(age),
    deadline: ago(-3_600),
    flags: [],
    status: "pending",
    request: { kind: "egress-route", host: "api.github.com", reason: "the build needs it" },
    ...extra,
  };
}

const question = (id: string, slug: string, age: number, text: string) =>
  request(id, slug, age, { request: { kind: "question", question: text } });

function frame(state: DashboardState, width = 80, height = 24): string {
  const { lastFrame, unmount } = render(
    h(Dashboard, { state, width, height, color: false, now: NOW }),
  );
  const out = lastFrame() ?? "";
  unmount();
  return out;
}

const keys = (state: DashboardState, ...presses: [string, Key?][]) => {
  let s = state;
  const effects = [];
  for (const [input, key] of presses) {
    const r = press(s, input, key ?? {});
    s = r.state;
    if (r.effect) effects.push(r.effect);
  }
  return { state: s, effects };
};

/** A listing read long ago: its selection has settled, decision keys act on it at once. */
const listed = (
  state: DashboardState,
  bottles: BottleRow[],
  requests: readonly BottleRequest[],
): DashboardState => withData(state, bottles, requests, 0);

const two = listed(
  initialState,
  [bottle("coder-aaaaaa"), bottle("coder-bbbbbb", { template: "codex" })],
  [
    request("r-old0000000", "coder-aaaaaa", 600),
    request("r-new0000000", "coder-bbbbbb", 30, {
      request: { kind: "git-repo", upstream: "git@github.com:acme/app.git", reason: "tests" },
    }),
    request("r-done000000", "coder-aaaaaa", 900, {
      status: "denied",
      outcome: { by: "operator", time: ago(800), reason: "no" },
    }),
  ],
);

describe("the dashboard's state and keys", () => {
  test("requests are pending first, newest first; the first pending is selected", () => {
    assert.deepEqual(
      two.requests.map((r) => r.id),
      ["r-new0000000", "r-old0000000", "r-done000000"],
    );
    assert.equal(two.request, "r-new0000000");
    assert.equal(two.bottle, "coder-aaaaaa");
  });

  test("a approves the selected pending request from any panel; A asks for a lease first", () => {
    for (const focus of ["bottles", "requests", "audit"] as const) {
      const { effects } = keys({ ...two, focus }, ["a"]);
      assert.deepEqual(effects, [{ kind: "approve", id: "r-new0000000" }]);
    }
    const leased = keys(two, ["A"], ["2"], ["h"], ["", { return: true }]);
    assert.deepEqual(leased.effects, [{ kind: "approve", id: "r-new0000000", for: "2h" }]);
    assert.equal(leased.state.prompt, undefined);
  });

  test("↓ in the requests panel selects the next; d denies it with an optional reason", () => {
    const { state, effects } = keys(
      two,
      ["", { tab: true }],
      ["", { downArrow: true }],
      ["d"],
      ["n"],
      ["o"],
      ["", { return: true }],
    );
    assert.equal(state.request, "r-old0000000");
    assert.deepEqual(effects, [{ kind: "deny", id: "r-old0000000", reason: "no" }]);
    const bare = keys(two, ["d"], ["", { return: true }]);
    assert.deepEqual(bare.effects, [{ kind: "deny", id: "r-new0000000" }]);
  });

  test("escape drops a prompt with no decision; q quits only outside one", () => {
    const { state, effects } = keys(two, ["d"], ["q"], ["", { escape: true }]);
    assert.deepEqual(effects, []);
    assert.equal(state.prompt, undefined);
    assert.deepEqual(keys(two, ["q"]).effects, [{ kind: "quit" }]);
  });

  test("r answers a question, and only a question; a on a question says to answer it", () => {
    const asked = listed(
      initialState,
      [bottle("coder-aaaaaa")],
      [question("r-ask0000000", "coder-aaaaaa", 5, "Which branch?")],
    );
    const answered = keys(asked, ["r"], ["m"], ["a"], ["i"], ["n"], ["", { return: true }]);
    assert.deepEqual(answered.effects, [{ kind: "answer", id: "r-ask0000000", text: "main" }]);
    const approved = keys(asked, ["a"]);
    assert.deepEqual(approved.effects, []);
    assert.match(approved.state.status?.text ?? "", /is a question: r answers it/);
    assert.match(keys(two, ["r"]).state.status?.text ?? "", /not an answer/);
  });

  test("with nothing pending, a decision key says so and decides nothing", () => {
    const none = listed(initialState, [bottle("coder-aaaaaa")], []);
    for (const k of ["a", "A", "d", "r"]) {
      const { effects, state } = keys(none, [k]);
      assert.deepEqual(effects, []);
      assert.equal(state.status?.text, "no request is pending");
    }
  });

  test("a selection that moved by itself a moment ago is not decided on: the key says to look first", () => {
    const t0 = 1_000_000;
    // r-old… was selected and is decided elsewhere; the agent's new request lands as `a` is pressed.
    const reading = withData(
      initialState,
      [bottle("coder-aaaaaa")],
      [request("r-read000000", "coder-aaaaaa", 60)],
      t0,
    );
    const swapped = withData(
      reading,
      reading.bottles,
      [
        request("r-read000000", "coder-aaaaaa", 60, {
          status: "denied",
          outcome: { by: "timeout", time: ago(0) },
        }),
        request("r-bait000000", "coder-aaaaaa", 0),
      ],
      t0 + 5_000,
    );
    assert.equal(swapped.request, "r-bait000000");
    for (const k of ["a", "A", "d"]) {
      const early = press(swapped, k, {}, t0 + 5_000 + SELECTION_SETTLE_MS - 1);
      assert.equal(early.effect, undefined, `${k} right after the move decides nothing`);
      assert.equal(early.state.prompt, undefined);
      assert.match(
        early.state.status?.text ?? "",
        /the selection just moved to r-bait000000: read it, then press again/,
      );
    }
    const later = press(swapped, "a", {}, t0 + 5_000 + SELECTION_SETTLE_MS);
    assert.deepEqual(later.effect, { kind: "approve", id: "r-bait000000" });
    // A listing that changes nothing does not count as a move.
    const same = withData(swapped, swapped.bottles, swapped.requests, t0 + 9_000);
    assert.deepEqual(press(same, "a", {}, t0 + 9_001).effect, {
      kind: "approve",
      id: "r-bait000000",
    });
  });

  test("s asks before it stops the selected bottle: only y stops it, any other key keeps it", () => {
    const asked = keys(two, ["", { downArrow: true }], ["s"]);
    assert.deepEqual(asked.state.prompt, { kind: "stop", id: "coder-bbbbbb", text: "" });
    assert.match(frame(asked.state), /stop coder-bbbbbb\? y stops it/);
    assert.deepEqual(keys(asked.state, ["y"]).effects, [{ kind: "stop", slug: "coder-bbbbbb" }]);
    for (const [input, key] of [["n"], [""], ["Y"], ["", { return: true }], ["q"]] as [
      string,
      Key?,
    ][]) {
      const kept = keys(asked.state, [input, key]);
      assert.deepEqual(kept.effects, [], `${JSON.stringify(input)} stops nothing`);
      assert.equal(kept.state.status?.text, "coder-bbbbbb keeps running");
    }
    assert.equal(
      keys(listed(initialState, [], []), ["s"]).state.status?.text,
      "no bottle is selected",
    );
  });

  test("a control character typed or pasted into a prompt never reaches the decision", () => {
    const { effects } = keys(two, ["d"], ["ok\u001b[2J\u0007"], ["", { return: true }]);
    assert.deepEqual(effects, [{ kind: "deny", id: "r-new0000000", reason: "ok[2J" }]);
  });

  test("once the selected request is decided, the next pending one is selected; one moved to stays", () => {
    const decided = (r: BottleRequest): BottleRequest => ({
      ...r,
      status: "approved",
      outcome: { by: "operator", time: ago(1) },
    });
    const [newer, older, done] = two.requests as [BottleRequest, BottleRequest, BottleRequest];
    const { state } = keys(two, ["a"]);
    const after = listed(state, state.bottles, [decided(newer), older, done]);
    assert.equal(after.request, older.id);
    const none = listed(state, state.bottles, [decided(newer), decided(older), done]);
    assert.equal(none.request, newer.id, "with nothing pending the decided one stays");
    const fresh = request("r-fresh00000", "coder-aaaaaa", 1);
    assert.equal(listed(none, none.bottles, [...none.requests, fresh]).request, fresh.id);
    // The operator moves to a decided request: it stays selected until a decision.
    const moved = keys(
      { ...two, focus: "requests" },
      ["", { downArrow: true }],
      ["", { downArrow: true }],
    );
    assert.equal(moved.state.request, done.id);
    assert.equal(
      listed(moved.state, moved.state.bottles, [...two.requests, fresh]).request,
      done.id,
    );
  });

  test("a new listing keeps the selections while their rows exist", () => {
    const moved = keys(two, ["", { downArrow: true }]).state;
    assert.equal(moved.bottle, "coder-bbbbbb");
    const again = listed(moved, moved.bottles, moved.requests);
    assert.equal(again.bottle, "coder-bbbbbb");
    const gone = listed(moved, [bottle("coder-aaaaaa")], []);
    assert.equal(gone.bottle, "coder-aaaaaa");
    assert.equal(gone.request, undefined);
  });
});

describe("starting and attaching from the dashboard", () => {
  const picker: DashboardState = {
    ...two,
    modal: { kind: "agents", agents: ["coder", "reviewer"], at: 0, workspace: "/work" },
  };
  const plan: DashboardState = {
    ...two,
    modal: {
      kind: "plan",
      agent: "reviewer",
      slug: "reviewer-cccccc",
      lines: ["bottle reviewer-cccccc  (agent reviewer, …)", "  workspace   /work -> /workspace"],
      top: 0,
    },
  };
  const underWay: DashboardState = {
    ...two,
    start: { agent: "reviewer", slug: "reviewer-cccccc", lines: ["- building images"] },
  };

  test("n asks for the manifest's agents; in the picker ↓ and enter ask for that agent's plan", () => {
    assert.deepEqual(keys(two, ["n"]).effects, [{ kind: "agents" }]);
    const { state, effects } = keys(picker, ["", { downArrow: true }], ["", { return: true }]);
    assert.deepEqual(effects, [{ kind: "plan", agent: "reviewer" }]);
    assert.equal(state.modal, undefined);
  });

  test("the picker takes every key: a, d, s and q decide or stop nothing; escape closes it", () => {
    for (const k of ["a", "d", "s", "r", "A", "q"])
      assert.deepEqual(keys(picker, [k]).effects, [], k);
    const closed = keys(picker, ["", { escape: true }]);
    assert.equal(closed.state.modal, undefined);
    assert.deepEqual(closed.effects, []);
  });

  test("the plan starts only on y: any other key, enter included, closes it with nothing started", () => {
    assert.deepEqual(keys(plan, ["y"]).effects, [{ kind: "start", slug: "reviewer-cccccc" }]);
    for (const [input, key] of [
      ["", { return: true }],
      ["n"],
      ["a"],
      [" "],
      ["Y", { shift: true }],
    ] as [string, Key?][]) {
      const { state, effects } = keys(plan, [input, key]);
      assert.deepEqual(effects, [], input);
      assert.equal(state.modal, undefined);
      assert.equal(state.status?.text, "reviewer-cccccc was not started");
    }
    // ↑↓ scroll the plan and keep it open.
    const scrolled = keys(plan, ["", { downArrow: true }]);
    assert.equal(scrolled.state.modal?.kind === "plan" && scrolled.state.modal.top, 1);
    assert.deepEqual(scrolled.effects, []);
  });

  test("one start at a time; while it runs q does not quit, and ctrl-c abandons it only when pressed twice", () => {
    assert.deepEqual(keys(underWay, ["n"]).effects, []);
    assert.match(keys(underWay, ["n"]).state.status?.text ?? "", /one start at a time/);
    assert.deepEqual(keys(underWay, ["q"]).effects, []);
    const once = keys(underWay, ["c", { ctrl: true }]);
    assert.deepEqual(once.effects, []);
    assert.match(once.state.status?.text ?? "", /ctrl-c again to abandon it/);
    assert.deepEqual(keys(underWay, ["c", { ctrl: true }], ["c", { ctrl: true }]).effects, [
      { kind: "quit", abandon: "reviewer-cccccc" },
    ]);
    // Another key between the two starts over.
    assert.deepEqual(
      keys(underWay, ["c", { ctrl: true }], ["j"], ["c", { ctrl: true }]).effects,
      [],
    );
    // With no start under way, q and ctrl-c quit at once.
    assert.deepEqual(keys(two, ["c", { ctrl: true }]).effects, [{ kind: "quit" }]);
    const ended = { ...underWay, start: { ...underWay.start!, outcome: "failed" as const } };
    assert.deepEqual(keys(ended, ["q"]).effects, [{ kind: "quit" }]);
    assert.equal(keys(ended, ["", { escape: true }]).state.start, undefined);
  });

  test("a start's progress: steps and outcomes as lines, the detail overwritten, escapes shown", () => {
    let v: StartView = { agent: "reviewer", slug: "reviewer-cccccc", lines: [] };
    v = progressed(v, "step", "building bot-bottle/shell:latest");
    v = progressed(v, "detail", "Step 1/9");
    v = progressed(v, "detail", "Step 2/9 \u001b[2J\u001b[H");
    assert.equal(v.detail, "Step 2/9 \\x1b[2J\\x1b[H");
    v = progressed(v, "done", "built");
    v = progressed(v, "warn", "the notify command will not run");
    assert.deepEqual(v.lines, [
      "- building bot-bottle/shell:latest",
      "  built",
      "WARNING: the notify command will not run",
    ]);
    assert.equal(v.detail, undefined);
  });

  test("enter attaches to the selected bottle, from any panel; not to one that is not running", () => {
    for (const focus of ["bottles", "requests", "audit"] as const)
      assert.deepEqual(keys({ ...two, focus }, ["", { return: true }]).effects, [
        { kind: "attach", slug: "coder-aaaaaa" },
      ]);
    const exited = listed(initialState, [bottle("coder-dddddd", { state: "broken" })], []);
    const { effects, state } = keys(exited, ["", { return: true }]);
    assert.deepEqual(effects, []);
    assert.equal(state.status?.text, "coder-dddddd is not running");
  });
});

describe("the dashboard's frame", () => {
  test("at 80×24: the bottles, the requests, the selected bottle's audit and the keys", () => {
    const audit: AuditEntry[] = [
      {
        source: "egress",
        record: {
          time: ago(20),
          decision: "allow",
          method: "GET",
          host: "api.anthropic.com",
          path: "/v1/messages",
        },
      } as AuditEntry,
      {
        source: "egress",
        record: {
          time: ago(10),
          decision: "refuse",
          method: "GET",
          host: "evil.example",
          path: "/",
          reason: "no route",
        },
      } as AuditEntry,
    ];
    const out = frame({ ...two, audit });
    const lines = out.split("\n");
    assert.equal(lines.length, 24);
    assert.ok(
      lines.every((l) => l.length <= 80),
      out,
    );
    assert.match(out, /bot-bottle dashboard — 2 bottles, 2 pending requests/);
    assert.match(
      out,
      /› coder-aaaaaa\s+coder\s+claude\s+docker\s+running\s+healthy\s+1h\s+12 ok 3 ✗/,
    );
    assert.match(out, /› r-new0000000\s+coder-bbbbbb\s+30s\s+git-repo/);
    assert.match(out, /Audit of coder-aaaaaa/);
    assert.match(out, /! \d\d:\d\d:\d\d\.\d{3} egress .*evil\.example/);
    assert.equal(lines.at(-1)?.trimEnd(), KEYS);
  });

  test("the selected request is shown in full below the table, on up to three lines", () => {
    const long = "the build fetches release notes from the GitHub API to write the changelog";
    const out = frame(
      listed(
        initialState,
        [bottle("coder-aaaaaa")],
        [
          request("r-long000000", "coder-aaaaaa", 5, {
            request: { kind: "egress-route", host: "api.github.com", reason: long },
          }),
        ],
      ),
    );
    const joined = out
      .split("\n")
      .filter((l) => l.startsWith("    "))
      .map((l) => l.slice(4))
      .join("");
    assert.ok(
      joined.includes(`↳ r-long000000: api.github.com any method any path — reason "${long}"`),
      out,
    );
  });

  test("hostile request text is shown escaped and keeps every line inside the frame", () => {
    const hostile = listed(
      initialState,
      [bottle("coder-aaaaaa")],
      [
        question(
          "r-evil000000",
          "coder-aaaaaa",
          5,
          "\u001b[2J\u001b[Hpwned\u202eevil\nsecond line",
        ),
      ],
    );
    const out = frame(hostile);
    assert.ok(!out.includes("\u001b"), "no escape sequence reaches the terminal");
    assert.ok(!out.includes("\u202e"), "no bidi override reaches the terminal");
    // As `bot-bottle requests` shows it: the question JSON-escaped, then made visible.
    assert.match(out, /› r-evil000000 .* question {2}"\\u001b\[2J\\u001b\[Hpwned\\u202eevil\\/);
    const lines = out.split("\n");
    assert.equal(lines.length, 24);
    assert.ok(lines.every((l) => l.length <= 80));
  });

  test("l shows the selected bottle's logs as `logs` prints them, the agent's output escaped; l again the audit", () => {
    const { state } = keys(two, ["l"]);
    assert.equal(state.view, "logs");
    const out = frame({
      ...state,
      logs: [
        { time: ago(3), source: "agent", text: "npm test\u001b[2J" },
        {
          time: ago(2),
          source: "bundle",
          text: JSON.stringify({
            time: ago(2),
            component: "egress",
            event: "listen",
            message: "listening on :9099",
          }),
        },
      ],
    });
    assert.match(out, /Logs of coder-aaaaaa {2}\(l: audit\)/);
    assert.match(out, /\d\d:\d\d:\d\d\.\d{3} agent {4}output {7}npm test\\x1b\[2J/);
    assert.match(out, /egress {3}listen {7}listening on :9099/);
    assert.equal(keys(state, ["l"]).state.view, "audit");
  });

  test("wide characters and emoji are cut by terminal columns: no line is wider than the frame", () => {
    const wide = listed(
      initialState,
      [bottle("coder-aaaaaa")],
      [question("r-wide000000", "coder-aaaaaa", 5, "界".repeat(200) + "😀".repeat(50))],
    );
    const lines = frame(wide).split("\n");
    assert.equal(lines.length, 24);
    for (const l of lines) assert.ok(stringWidth(l) <= 80, `${stringWidth(l)} columns: ${l}`);
    assert.ok(lines.some((l) => l.includes("↳ r-wide000000")));
  });

  test("n's picker and plan take the place of the requests and the audit; the plan wraps, never cuts", () => {
    const picker = frame({
      ...two,
      modal: { kind: "agents", agents: ["coder", "reviewer"], at: 1, workspace: "/work/app" },
    });
    assert.match(picker, /Start a bottle: which agent\?/);
    assert.match(picker, /workspace \/work\/app/);
    assert.match(picker, /› reviewer/);
    assert.doesNotMatch(picker, /Requests|Audit of/);
    assert.equal(picker.split("\n").at(-1)?.trim(), "↑↓ choose  ⏎ show its plan  escape cancels");

    const long = `  workspace   /home/someone/projects/a-rather-long-project-name/with/a/deep/folder -> /workspace (the only host path the agent sees)`;
    const lines = frame({
      ...two,
      modal: {
        kind: "plan",
        agent: "reviewer",
        slug: "reviewer-cccccc",
        lines: [
          "bottle reviewer-cccccc",
          long,
          ...Array.from({ length: 40 }, (_, i) => `  route ${i}`),
        ],
        top: 0,
      },
    }).split("\n");
    assert.equal(lines.length, 24);
    assert.ok(lines.every((l) => l.length <= 80));
    const shown = lines.join("\n");
    assert.match(shown, /The plan of reviewer-cccccc \(agent reviewer\)/);
    // Every character of the plan is on screen: a word longer than a line is broken, not cut.
    const characters = shown.replace(/\s+/g, "");
    assert.ok(characters.includes(long.replace(/\s+/g, "")), shown);
    assert.match(shown, /^ {4}workspace {3}\S/m);
    assert.match(shown, /^ {16}\S/m, "a continuation lines up under the value");
    assert.match(shown, /… \d+ more lines \(↓\)/);
    assert.equal(lines.at(-1)?.trim(), "y starts it  ↑↓ scroll  any other key cancels");
  });

  test("a start's progress shows in the lower panel, its build output escaped", () => {
    const out = frame({
      ...two,
      start: {
        agent: "reviewer",
        slug: "reviewer-cccccc",
        lines: ["- building the agent image", "  built"],
        detail: "Step 3/9 \\u001b[2J",
      },
    });
    assert.match(out, /Start of reviewer-cccccc \(agent reviewer\): under way/);
    assert.match(out, /- building the agent image/);
    assert.match(out, /Step 3\/9/);
    assert.match(out, /Requests/);
    const failed = frame({
      ...two,
      start: {
        agent: "reviewer",
        slug: "reviewer-cccccc",
        lines: ["- x", "the engine said no"],
        outcome: "failed",
      },
    });
    assert.match(failed, /failed \(escape hides this\)/);
    assert.match(failed, /! the engine said no/);
  });

  test("no bottles: the frame says how to start one; a narrow terminal cuts, never wraps", () => {
    assert.match(frame(initialState), /no bottles \(n starts one\)/);
    const narrow = frame(two, 40, 24).split("\n");
    assert.equal(narrow.length, 24);
    assert.ok(narrow.every((l) => l.length <= 40));
  });
});
