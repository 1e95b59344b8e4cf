/**
 * The dashboard end to end: the built CLI's `dashboard` in a tmux pane of the test's own, over a
 * real bottle. It shows the bottle and its health; a request the agent makes from inside appears
 * within 2 s, its hostile text escaped and the frame undisturbed; `a` approves it and the agent's
 * next request through egress goes out; `d` and a typed reason deny the next one, which stays
 * refused; `l` shows its logs; `n` shows an agent's plan and starts it only on `y`, its progress
 * inside the frame; ⏎ attaches to the agent's session (a tmux window inside tmux; outside, the
 * dashboard steps aside and comes back); `s` stops a bottle only once `y` confirms it. The fake
 * model API container stands in for the asked-for hosts.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SELECTION_SETTLE_MS } from "../../../src/dashboard/model.js";
import { TestBottles } from "../../helpers/bottles.js";
import { fakeModelCerts } from "../../helpers/fake-model.js";
import { callTool, curlFrom, installMcpClient, requestIdOf } from "../../helpers/supervise.js";
import { TestTerminal } from "../../helpers/terminal.js";

const ALLOWED_HOST = "granted.example.test";
const DENIED_HOST = "refused.example.test";
const WIDTH = 100;
const HEIGHT = 30;

const t = new TestBottles();
const agent = t.agent("dash");
/** The agent `n` starts from the dashboard. */
const second = t.agent("dash2");
/** The dashboard's window (⏎ opens others beside it in the same session). */
const DASH = "main:dash";
const term = new TestTerminal(t, ["XDG_STATE_HOME", "BOT_BOTTLE_MANIFEST", "PATH"]);
const tmux = (...args: string[]) => term.tmux(...args);

/** The pane as it is on screen now, one string per row. */
const screen = (target = DASH) => term.screen(target);

/** Waits until the screen shows what `want` matches; fails with the screen's text. */
const waitFor = (want: RegExp, what: string, ms = 30_000, target = DASH) =>
  term.waitFor(target, want, what, { ms });

/**
 * A tmux session of the test's own running the built CLI's dashboard in the workspace; `prefix`
 * goes before the command (`env -u TMUX ` runs it as outside tmux).
 */
const openDashboard = (session: string, window: string, prefix = "") =>
  term.open(`${session}:${window}`, ["dashboard"], {
    newSession: true,
    columns: WIDTH,
    rows: HEIGHT,
    prefix,
  });

describe("bot-bottle dashboard in a terminal, over a real bottle", { timeout: 15 * 60_000 }, () => {
  let slug = "";
  /** The bottle `n` starts. */
  let started = "";

  const curl = (host: string) => curlFrom(t, slug, host);

  before(async () => {
    await t.setup({ agents: {}, bottles: {} });
    const certs = join(t.dir, "certs");
    await fakeModelCerts(certs, [ALLOWED_HOST, DENIED_HOST]);
    const net = await t.network([]);
    const model = await t.fakeModel(certs, net);
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [agent]: { template: "shell", bottle: "asks" },
          [second]: { template: "shell", bottle: "asks" },
        },
        bottles: {
          asks: {
            egress: {
              routes: [],
              extra_hosts: { [ALLOWED_HOST]: model.ip, [DENIED_HOST]: model.ip },
              trust_ca: join(certs, "ca", "ca.crt"),
              network: net,
            },
            supervise: { wait: "1s", timeout: "1h" },
          },
        },
      }),
    );
    slug = await t.start(agent);
    await installMcpClient(t, slug);
    await openDashboard("main", "dash");
  });

  after(async () => {
    await term.close();
    if (!process.env["KEEP"]) await t.teardown();
  });

  test("shows the bottle, its template, backend, state and health", async () => {
    const text = await waitFor(new RegExp(`› ${slug} `), "the bottle's row");
    assert.match(
      text,
      new RegExp(`${slug}\\s+${agent}\\s+shell\\s+docker\\s+running\\s+(ready|healthy)`),
    );
    assert.match(text, /bot-bottle dashboard — 1 bottle, 0 pending requests/);
  });

  test("a request from inside appears within 2 s, escaped, and `a` approves it: the route works", async () => {
    assert.deepEqual(await curl(ALLOWED_HOST), { status: "403", tag: "not-in-routes" });
    // The reason is the agent's own text: a clear-screen, a cursor move and a bidi override.
    const asked = await callTool(t, slug, "request_egress_route", {
      host: ALLOWED_HOST,
      methods: ["GET"],
      reason: "docs\u001b[2J\u001b[1;1Hpwned\u202etxt.exe",
    });
    const id = requestIdOf(asked);
    assert.match(id, /^r-[a-z0-9]{10}$/);
    const recorded = Date.now();
    const text = await waitFor(new RegExp(`› ${id} `), "the request's row", 10_000);
    const seen = Date.now() - recorded;
    console.log(`# request on screen ${seen} ms after the tool call returned`);
    assert.ok(seen <= 2_000, `the request appeared after ${seen} ms`);

    // Escaped as `requests` shows it; the frame keeps its first and last lines and its size.
    const detail = text
      .split("\n")
      .filter((l) => l.startsWith("    "))
      .map((l) => l.slice(4).trimEnd())
      .join("");
    assert.ok(
      detail.includes(
        `↳ ${id}: ${ALLOWED_HOST} GET any path — reason "docs\\u001b[2J\\u001b[1;1Hpwned\\u202etxt.exe"`,
      ),
      text,
    );
    const rows = await screen();
    assert.equal(rows.length, HEIGHT);
    assert.match(rows[0] ?? "", /^bot-bottle dashboard — 1 bottle, 1 pending request/);
    assert.match(rows.at(-1) ?? "", /^tab ↑↓ .* q quit/);
    assert.ok(!rows.join("\n").includes("\u202e"));

    // A selection that just moved by itself is not decided on for a moment (SELECTION_SETTLE_MS).
    await sleep(SELECTION_SETTLE_MS);
    await tmux("send-keys", "-t", DASH, "a");
    await waitFor(new RegExp(`approved ${id} of ${slug}`), "the approval's status line");
    let now = await curl(ALLOWED_HOST);
    const clock = Date.now();
    while (now.tag && Date.now() - clock < 10_000) now = await curl(ALLOWED_HOST);
    // The fake answers a path it does not know with 404: the proxy let the request out.
    assert.deepEqual(now, { status: "404", tag: "" });
    const listed = await t.cli(["requests", slug, "--json"]);
    const entry = listed.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; status: string })
      .find((e) => e.id === id);
    assert.equal(entry?.status, "approved");
  });

  test("`d` and a typed reason deny the next request; the host stays refused", async () => {
    const asked = await callTool(t, slug, "request_egress_route", {
      host: DENIED_HOST,
      reason: "more docs",
    });
    const id = requestIdOf(asked);
    await waitFor(new RegExp(`› ${id} `), "the second request's row", 10_000);
    await sleep(SELECTION_SETTLE_MS);
    await tmux("send-keys", "-t", DASH, "d");
    await waitFor(/deny, reason \(optional\)/, "the reason prompt");
    await tmux("send-keys", "-t", DASH, "-l", "not for this task");
    await tmux("send-keys", "-t", DASH, "Enter");
    await waitFor(new RegExp(`denied ${id} of ${slug}`), "the denial's status line");
    assert.equal(await callTool(t, slug, "request_status", { id }), "denied: not for this task");
    assert.deepEqual(await curl(DENIED_HOST), { status: "403", tag: "not-in-routes" });
  });

  test("`l` shows the bottle's logs (supervise's last decision among them), `l` again its audit", async () => {
    await tmux("send-keys", "-t", DASH, "l");
    await waitFor(new RegExp(`Logs of ${slug}`), "the logs panel");
    await waitFor(
      /supervise\s+decided\s+request r-[a-z0-9]{10} denied by operator/,
      "supervise's denial in the logs",
      15_000,
    );
    await tmux("send-keys", "-t", DASH, "l");
    await waitFor(new RegExp(`Audit of ${slug}`), "the audit panel again");
  });

  test("`n` picks an agent and shows its plan; a key other than `y` starts nothing", async () => {
    await tmux("send-keys", "-t", DASH, "n");
    const picker = await waitFor(/Start a bottle: which agent\?/, "the agent picker");
    assert.match(
      picker,
      new RegExp(`workspace ${t.workspace.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
    assert.match(picker, new RegExp(`› ${agent}\\s*$`, "m"));
    await tmux("send-keys", "-t", DASH, "Down");
    await waitFor(new RegExp(`› ${second}`), "the second agent selected");
    await tmux("send-keys", "-t", DASH, "Enter");
    const plan = await waitFor(/The plan of (\S+) \(agent /, "the plan", 60_000);
    const planned = /The plan of (\S+) \(agent /.exec(plan)?.[1] ?? "";
    assert.match(planned, new RegExp(`^${second}-[a-z0-9]+$`));
    // The same summary `start` prints: the bottle line and the workspace.
    assert.match(plan, new RegExp(`bottle ${planned}\\s+\\(agent ${second}, template shell`));
    assert.match(plan, /workspace\s/);
    assert.match(plan, /y starts it {2}↑↓ scroll {2}any other key cancels/);
    await tmux("send-keys", "-t", DASH, "Enter");
    await waitFor(new RegExp(`${planned} was not started`), "the cancel's status line");
    const listed = JSON.parse((await t.cli(["ls", "--json"])).stdout) as { slug: string }[];
    assert.deepEqual(
      listed.map((b) => b.slug),
      [slug],
    );
  });

  test("`n`, then `y` on the plan, starts the bottle inside the frame; `ls` lists it", async () => {
    await tmux("send-keys", "-t", DASH, "n");
    await waitFor(/Start a bottle: which agent\?/, "the agent picker");
    await tmux("send-keys", "-t", DASH, "Down");
    await waitFor(new RegExp(`› ${second}`), "the second agent selected");
    await tmux("send-keys", "-t", DASH, "Enter");
    const plan = await waitFor(/The plan of (\S+) \(agent /, "the plan", 60_000);
    started = /The plan of (\S+) \(agent /.exec(plan)?.[1] ?? "";
    await tmux("send-keys", "-t", DASH, "y");
    await waitFor(/^tab ↑↓ /m, "the plan's modal closed", 10_000);
    // Until it is ready, every frame keeps its size, its title first and its keys last: the
    // start's output goes into the panel, never over the frame.
    const deadline = Date.now() + 180_000;
    let frames = 0;
    let progress = false;
    for (;;) {
      const rows = await screen();
      const text = rows.join("\n");
      assert.equal(rows.length, HEIGHT, text);
      assert.match(rows[0] ?? "", /^bot-bottle dashboard — /, text);
      assert.match(rows.at(-1) ?? "", /^tab ↑↓ .* q quit/, text);
      progress ||= new RegExp(`Start of ${started} \\(agent ${second}\\): under way`).test(text);
      frames++;
      if (new RegExp(`started ${started}: ⏎ attaches`).test(text)) break;
      assert.doesNotMatch(text, /failed \(escape hides this\)/, text);
      assert.ok(Date.now() < deadline, `the start did not end in 180 s:\n${text}`);
      await sleep(100);
    }
    assert.ok(progress, "the start's progress was on screen");
    console.log(`# ${frames} frames checked during the start`);
    const text = await waitFor(new RegExp(`› ${started} `), "the new bottle's row, selected");
    assert.match(text, /bot-bottle dashboard — 2 bottles/);
    const listed = JSON.parse((await t.cli(["ls", "--json"])).stdout) as { slug: string }[];
    assert.ok(
      listed.some((b) => b.slug === started),
      JSON.stringify(listed),
    );
  });

  test("inside tmux, ⏎ opens the agent's session in a new window; ctrl-b d closes it", async () => {
    await tmux("send-keys", "-t", DASH, "Enter");
    await waitFor(new RegExp(`in the tmux window "${started}"`), "the attach's status line");
    const windows = await tmux("list-windows", "-t", "main", "-F", "#{window_name}");
    assert.ok(windows.stdout.split("\n").includes(started), windows.stdout);
    // The bottle's own tmux: its status line names the bottle and how to detach.
    const session = await waitFor(
      /detach: Ctrl-b d/,
      "the agent's session",
      30_000,
      `main:${started}`,
    );
    assert.match(session, new RegExp(`\\[${started}\\]`));
    await tmux("send-keys", "-t", `main:${started}`, "C-b", "d");
    const deadline = Date.now() + 15_000;
    let names = windows.stdout;
    while (names.split("\n").includes(started) && Date.now() < deadline) {
      await sleep(200);
      names = (await tmux("list-windows", "-t", "main", "-F", "#{window_name}")).stdout;
    }
    assert.ok(!names.split("\n").includes(started), names);
  });

  test("outside tmux, ⏎ suspends the dashboard for the session and draws it again after the detach", async () => {
    await openDashboard("plain", "plain", "env -u TMUX ");
    await waitFor(new RegExp(`› ${slug} `), "the dashboard", 30_000, "plain");
    await tmux("send-keys", "-t", "plain", "Down");
    await waitFor(new RegExp(`› ${started} `), "the new bottle selected", 10_000, "plain");
    await tmux("send-keys", "-t", "plain", "Enter");
    const session = await waitFor(/detach: Ctrl-b d/, "the agent's session", 30_000, "plain");
    assert.doesNotMatch(session, /bot-bottle dashboard — /);
    await tmux("send-keys", "-t", "plain", "C-b", "d");
    const back = await waitFor(
      new RegExp(`detached from ${started}: it keeps running`),
      "the dashboard again",
      30_000,
      "plain",
    );
    const rows = back.split("\n");
    assert.equal(rows.length, HEIGHT);
    assert.match(rows[0] ?? "", /^bot-bottle dashboard — 2 bottles/);
    // Keys work again: q quits.
    await tmux("send-keys", "-t", "plain", "q");
    await waitFor(/EXITED 0/, "the dashboard's exit", 10_000, "plain");
  });

  test("`s` asks first: `n` keeps the bottle, `y` stops it, and `ls` no longer lists it", async () => {
    await tmux("send-keys", "-t", DASH, "s");
    await waitFor(new RegExp(`stop ${started}\\? y stops it`), "the stop's question");
    await tmux("send-keys", "-t", DASH, "n");
    await waitFor(new RegExp(`${started} keeps running`), "the kept bottle's status line");
    const still = await t.cli(["ls", "--json"]);
    assert.ok((JSON.parse(still.stdout) as { slug: string }[]).some((b) => b.slug === started));

    await tmux("send-keys", "-t", DASH, "s");
    await waitFor(new RegExp(`stop ${started}\\? y stops it`), "the stop's question");
    await tmux("send-keys", "-t", DASH, "y");
    await waitFor(/^tab ↑↓ /m, "the plan's modal closed", 10_000);
    await waitFor(
      new RegExp(`stopped ${started}: its logs are kept`),
      "the stop's status line",
      60_000,
    );
    await waitFor(/bot-bottle dashboard — 1 bottle,/, "one bottle left", 10_000);
    const listed = await t.cli(["ls", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      !(JSON.parse(listed.stdout || "[]") as { slug: string }[]).some((b) => b.slug === started),
    );
  });

  test("q quits with status 0", async () => {
    await tmux("send-keys", "-t", DASH, "q");
    await waitFor(/EXITED 0/, "the dashboard's exit");
  });
});
