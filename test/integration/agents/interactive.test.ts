/**
 * The agent's interactive UI, end to end in a terminal: `bot-bottle start AGENT` (no --detach)
 * runs in a tmux pane of the test's own; the real Claude Code or Codex UI appears, a prompt
 * typed there reaches the fake model API through the bottle's egress and its answer shows;
 * Ctrl-b d detaches and leaves the bottle running; `bot-bottle attach SLUG` comes back to the
 * same session, conversation and all.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { TestBottles } from "../../helpers/bottles.js";
import { fakeModelCerts } from "../../helpers/fake-model.js";
import { TestTerminal } from "../../helpers/terminal.js";

const t = new TestBottles();
const term = new TestTerminal(t, [
  "XDG_STATE_HOME",
  "BOT_BOTTLE_MANIFEST",
  "ANTHROPIC_API_KEY",
  "OPENAI_API_KEY",
]);
/** Waits for the pane, its scrollback included: the agents' UIs scroll. */
const waitFor = (target: string, want: RegExp, what: string, ms = 90_000) =>
  term.waitFor(target, want, what, { ms, scrollback: true });
/** A window of the test's tmux running `bot-bottle ARGS` in the workspace. */
const terminal = (name: string, args: string[]) => term.open(`main:${name}`, args);

describe("the agents' interactive UIs in a terminal", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    await t.setup({ agents: {}, bottles: {} });
    const certs = join(t.dir, "certs");
    await fakeModelCerts(certs);
    const net = await t.network([]);
    const model = await t.fakeModel(certs, net);
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: {
          [t.agent("claude")]: { template: "claude", bottle: "box" },
          [t.agent("codex")]: { template: "codex", bottle: "box", model: "gpt-fake" },
        },
        bottles: {
          box: {
            egress: {
              extra_hosts: { "api.anthropic.com": model.ip, "api.openai.com": model.ip },
              trust_ca: join(certs, "ca", "ca.crt"),
              network: net,
            },
          },
        },
      }),
    );
    t.env = {
      ...t.env,
      ANTHROPIC_API_KEY: `sk-ant-api03-${randomBytes(60).toString("base64url")}AA`,
      OPENAI_API_KEY: `sk-proj-${randomBytes(48).toString("base64url")}`,
    };
    const built = await t.cli(["images", "build", "claude", "codex"], 20 * 60_000);
    assert.equal(built.code, 0, built.stderr);
    await term.tmux("new-session", "-d", "-s", "main", "-x", "120", "-y", "40");
  });
  after(async () => {
    await term.close();
    if (!process.env["KEEP"]) await t.teardown();
  });

  for (const c of [
    { name: "claude", ready: /bypass permissions on/ },
    { name: "codex", ready: /OpenAI Codex[\s\S]*gpt-fake/ },
  ])
    test(`${c.name}: start shows the UI, a typed prompt is answered, detach leaves it running, attach comes back`, async () => {
      const word = `pong-${c.name}-${randomBytes(3).toString("hex")}`;
      const win = await terminal(c.name, ["start", t.agent(c.name), "--yes"]);
      await waitFor(win, c.ready, `the ${c.name} UI`);
      await term.keys(win, "-l", `SAY: ${word}`);
      await sleep(300);
      await term.keys(win, "Enter");
      // The answer is the word on a line of its own making, not the typed "SAY: …" line.
      const answered = new RegExp(`^(?!.*SAY:).*\\b${word}\\b`, "m");
      await waitFor(win, answered, `the model's answer in the ${c.name} UI`, 60_000);

      await term.keys(win, "C-b", "d");
      const detached = await waitFor(
        win,
        /detached: (\S+) keeps running[\s\S]*EXITED 0/,
        "the detach",
      );
      const slug = /detached: (\S+) keeps running/.exec(detached)?.[1] ?? "";
      const ls = await t.cli(["ls"]);
      assert.match(ls.stdout, new RegExp(`^${slug}\\s.*running`, "m"), "the bottle runs on");

      const again = await terminal(`${c.name}-again`, ["attach", slug]);
      await waitFor(again, answered, "the same session, conversation and all, after attach");
      await term.keys(again, "C-b", "d");
      await waitFor(again, /detached: \S+ keeps running[\s\S]*EXITED 0/, "the second detach");

      const stop = await t.cli(["stop", slug]);
      assert.equal(stop.code, 0, stop.stderr);
    });

  test("start without --detach and without a terminal refuses before creating anything", async () => {
    const r = await t.cli(["start", t.agent("claude"), "--yes"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /standard input is not a terminal/);
    assert.match(r.stderr, /--detach|bot-bottle run/);
    const ls = await t.cli(["ls"]);
    assert.doesNotMatch(ls.stdout, new RegExp(t.agent("claude")));
  });
});
