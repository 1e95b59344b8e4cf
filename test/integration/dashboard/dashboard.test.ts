/**
 * The dashboard end to end: the built CLI's `dashboard` in a tmux pane of the test's own, over a
 * real bottle. It shows the bottle and its health; a request the agent makes from inside appears
 * within 2 s, its hostile text escaped and the frame undisturbed; `a` approves it and the agent's
 * next request through egress goes out; `d` and a typed reason deny the next one, which stays
 * refused; `l` shows its logs; `s` stops the bottle only once `y` confirms it. The fake model API container stands in
 * for the asked-for hosts.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SELECTION_SETTLE_MS } from "../../../src/dashboard/model.js";
import { run } from "../../../src/exec/run.js";
import { TestBottles } from "../../helpers/bottles.js";
import { CLI } from "../../helpers/cli.js";
import { fakeModelCerts } from "../../helpers/fake-model.js";
import { callTool, curlFrom, installMcpClient, requestIdOf } from "../../helpers/supervise.js";

const ALLOWED_HOST = "granted.example.test";
const DENIED_HOST = "refused.example.test";
const WIDTH = 100;
const HEIGHT = 30;

const t = new TestBottles();
const agent = t.agent("dash");
const socket = `bbdash-${t.id}`;
const tmux = (...args: string[]) => run("tmux", ["-L", socket, ...args]);

/** The pane as it is on screen now, one string per row. */
async function screen(): Promise<string[]> {
  return (await tmux("capture-pane", "-p", "-t", "main")).stdout.replace(/\n$/, "").split("\n");
}

/** Waits until the screen shows what `want` matches; fails with the screen's text. */
async function waitFor(want: RegExp, what: string, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  let text = "";
  while (Date.now() < deadline) {
    text = (await screen().catch(() => [text])).join("\n");
    if (want.test(text)) return text;
    await sleep(100);
  }
  throw new Error(`${what} did not appear within ${ms / 1000} s; the screen shows:\n${text}`);
}

describe("bot-bottle dashboard in a terminal, over a real bottle", { timeout: 15 * 60_000 }, () => {
  let slug = "";

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
        agents: { [agent]: { template: "shell", bottle: "asks" } },
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
    const env = ["XDG_STATE_HOME", "BOT_BOTTLE_MANIFEST", "PATH"].flatMap((k) => [
      "-e",
      `${k}=${t.env[k] ?? ""}`,
    ]);
    await tmux(
      "new-session",
      "-d",
      "-s",
      "main",
      "-x",
      String(WIDTH),
      "-y",
      String(HEIGHT),
      "-c",
      t.workspace,
      ...env,
      `'${process.execPath}' '${CLI}' dashboard; echo "EXITED $?"; sleep 3600`,
    );
  });

  after(async () => {
    await tmux("kill-server").catch(() => undefined);
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
    assert.match(rows.at(-1) ?? "", /^tab panel .* q quit/);
    assert.ok(!rows.join("\n").includes("\u202e"));

    // A selection that just moved by itself is not decided on for a moment (SELECTION_SETTLE_MS).
    await sleep(SELECTION_SETTLE_MS);
    await tmux("send-keys", "-t", "main", "a");
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
    await tmux("send-keys", "-t", "main", "d");
    await waitFor(/deny, reason \(optional\)/, "the reason prompt");
    await tmux("send-keys", "-t", "main", "-l", "not for this task");
    await tmux("send-keys", "-t", "main", "Enter");
    await waitFor(new RegExp(`denied ${id} of ${slug}`), "the denial's status line");
    assert.equal(await callTool(t, slug, "request_status", { id }), "denied: not for this task");
    assert.deepEqual(await curl(DENIED_HOST), { status: "403", tag: "not-in-routes" });
  });

  test("`l` shows the bottle's logs (supervise's last decision among them), `l` again its audit", async () => {
    await tmux("send-keys", "-t", "main", "l");
    await waitFor(new RegExp(`Logs of ${slug}`), "the logs panel");
    await waitFor(
      /supervise\s+decided\s+request r-[a-z0-9]{10} denied by operator/,
      "supervise's denial in the logs",
      15_000,
    );
    await tmux("send-keys", "-t", "main", "l");
    await waitFor(new RegExp(`Audit of ${slug}`), "the audit panel again");
  });

  test("`s` asks first: `n` keeps the bottle, `y` stops it, and `ls` no longer lists it", async () => {
    await tmux("send-keys", "-t", "main", "s");
    await waitFor(new RegExp(`stop ${slug}\\? y stops it`), "the stop's question");
    await tmux("send-keys", "-t", "main", "n");
    await waitFor(new RegExp(`${slug} keeps running`), "the kept bottle's status line");
    const still = await t.cli(["ls", "--json"]);
    assert.ok((JSON.parse(still.stdout) as { slug: string }[]).some((b) => b.slug === slug));

    await tmux("send-keys", "-t", "main", "s");
    await waitFor(new RegExp(`stop ${slug}\\? y stops it`), "the stop's question");
    await tmux("send-keys", "-t", "main", "y");
    await waitFor(
      new RegExp(`stopped ${slug}: its logs are kept`),
      "the stop's status line",
      60_000,
    );
    await waitFor(/no bottles \(start one with/, "the empty bottles panel", 10_000);
    const listed = await t.cli(["ls", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(
      !(JSON.parse(listed.stdout || "[]") as { slug: string }[]).some((b) => b.slug === slug),
    );
  });

  test("q quits with status 0", async () => {
    await tmux("send-keys", "-t", "main", "q");
    await waitFor(/EXITED 0/, "the dashboard's exit");
  });
});
