/**
 * init adds a daemon to a running bundle: the host rewrites init.json and sends SIGHUP. init runs
 * here as a real process from src (through tsx), supervising real daemons
 * (test/fixtures/daemon.mjs, an HTTP server that logs a `reloaded` event on SIGHUP). First the
 * allowed path: a new daemon starts, answers, is counted in /health, is restarted when it dies,
 * and the daemon that ran before keeps its process. Then a rewrite that is invalid, and one that
 * cannot be read: one `reload-failed` event each, nothing started, nothing stopped, and SIGHUP
 * still reaches the daemons that reload. Last, in process: an added daemon is probed even when no
 * daemon init booted with declared a probe.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import {
  parseInitStatus,
  type DaemonSpec,
  type InitConfig,
  type InitStatus,
} from "../../../src/shared/init-config.js";
import { healthEndpoint } from "../../../src/sidecars/init/endpoint.js";
import { Supervisor } from "../../../src/sidecars/init/supervisor.js";

const INIT = join(PACKAGE_ROOT, "src", "sidecars", "init", "main.ts");
const DAEMON = join(PACKAGE_ROOT, "test", "fixtures", "daemon.mjs");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function health(port: number): Promise<{ status: number; body: InitStatus }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: parseInitStatus(await res.text(), "/health") };
}

/** What a daemon on `port` answers; the fixture answers "ok" to any GET. */
async function answer(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/`)).text();
}

const daemon = (name: string, port: number, reload: boolean): DaemonSpec => ({
  name,
  command: [process.execPath, DAEMON, String(port)],
  port,
  reload,
});

type Event = { event: string; component: string; message: string } & Record<string, unknown>;

describe("init started from its config adds the daemons a rewrite lists, on SIGHUP", () => {
  let dir: string;
  let file: string;
  let init: ChildProcess;
  let config: InitConfig;
  let healthPort: number;
  let gatePort: number;
  let webPid = 0;
  let gatePid = 0;
  const events: Event[] = [];
  const named = (event: string) => events.filter((e) => e.event === event);

  /** Ready with `names` (and only those), each ready; the report. */
  const readyWith = (names: string[]) =>
    until(`/health ready with ${names.join(", ")}`, async () => {
      const h = await health(healthPort);
      const listed = h.body.daemons.map((d) => [d.name, d.state]);
      return h.status === 200 &&
        JSON.stringify(listed) === JSON.stringify(names.map((n) => [n, "ready"]))
        ? h.body
        : undefined;
    });
  const pidOf = (report: InitStatus, name: string) =>
    report.daemons.find((d) => d.name === name)?.pid;
  /** The next `count` fixture `reloaded` events after the first `seen`, as their pids. */
  const reloadedPids = async (seen: number, count: number) => {
    await until(`${count} reloaded event(s)`, () =>
      Promise.resolve(named("reloaded").length >= seen + count ? true : undefined),
    );
    await sleep(200); // one that should not come would come by now
    return named("reloaded")
      .slice(seen)
      .map((e) => e["pid"] as number)
      .sort();
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-init-reload-"));
    file = join(dir, "init.json");
    healthPort = await freePort();
    gatePort = await freePort();
    config = {
      slug: "t-reload",
      healthPort,
      stopGraceMs: 500,
      daemons: [daemon("web", await freePort(), true)],
    };
    await writeFile(file, JSON.stringify(config));
    init = spawn(process.execPath, ["--import", "tsx", INIT], {
      env: { ...process.env, BOT_BOTTLE_INIT_CONFIG: file },
      stdio: ["ignore", "pipe", "inherit"],
      cwd: PACKAGE_ROOT,
    });
    let pending = "";
    init.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) if (l) events.push(JSON.parse(l) as Event);
    });
    webPid = pidOf(await readyWith(["web"]), "web") ?? 0;
    assert.ok(webPid > 0);
  });

  after(async () => {
    if (init.exitCode === null) {
      const exited = new Promise((r) => init.once("exit", r));
      init.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  test("starts a daemon the rewritten config adds, leaving the running one as it was", async () => {
    await assert.rejects(answer(gatePort), "nothing listens on the new daemon's port yet");
    await writeFile(
      file,
      JSON.stringify({
        ...config,
        // A changed spec of a running daemon is not applied: web keeps its process.
        daemons: [{ ...daemon("web", 1, true) }, daemon("git-gate", gatePort, true)],
      }),
    );
    const seen = named("reloaded").length;
    init.kill("SIGHUP");

    const report = await readyWith(["web", "git-gate"]);
    assert.equal(await answer(gatePort), "ok");
    assert.equal(pidOf(report, "web"), webPid, "web was not restarted");
    assert.equal(report.daemons.find((d) => d.name === "web")?.restarts, 0);
    gatePid = pidOf(report, "git-gate") ?? 0;
    assert.ok(gatePid > 0);

    const added = named("daemon-added");
    assert.equal(added.length, 1);
    assert.equal(added[0]?.component, "init");
    assert.equal(added[0]?.daemon, "git-gate");
    assert.equal(added[0]?.port, gatePort);
    assert.ok(
      named("daemon-ready").some((e) => e.daemon === "git-gate" && e.port === gatePort),
      "its readiness is logged as at boot",
    );
    // SIGHUP went to web, which ran before; not to git-gate, started after it.
    assert.deepEqual(await reloadedPids(seen, 1), [webPid]);
    assert.deepEqual(
      named("reload").map((e) => e.daemon),
      ["web"],
    );
    assert.equal(named("reload-failed").length, 0);
  });

  test("restarts an added daemon that dies, as one it booted with", async () => {
    process.kill(gatePid, "SIGKILL");
    const gate = await until("git-gate restarted", async () => {
      const d = (await health(healthPort)).body.daemons.find((x) => x.name === "git-gate");
      return d?.restarts === 1 && d.state === "ready" ? d : undefined;
    });
    assert.notEqual(gate.pid, gatePid);
    gatePid = gate.pid ?? 0;
    assert.equal(await answer(gatePort), "ok");
    assert.ok(named("restart").some((e) => e.daemon === "git-gate"));
  });

  test("an invalid rewrite: one reload-failed naming the problem, nothing started or stopped", async () => {
    const thirdPort = await freePort();
    await writeFile(
      file,
      JSON.stringify({
        ...config,
        daemons: [
          daemon("web", 1, true),
          daemon("git-gate", gatePort, true),
          { ...daemon("third", thirdPort, false), command: [] },
        ],
      }),
    );
    const seen = named("reloaded").length;
    init.kill("SIGHUP");

    const failed = await until("reload-failed", () => Promise.resolve(named("reload-failed")[0]));
    assert.equal(failed.component, "init");
    assert.equal(failed.file, file);
    assert.match(failed.message, /is not a valid init config/);
    assert.match(failed.message, /daemons\[2\]\.command must have at least one entry/);
    assert.match(failed.message, /keeping the daemons init runs$/);
    assert.deepEqual(
      (failed.problems as { path: string }[]).map((p) => p.path),
      ["daemons[2].command"],
    );

    // SIGHUP still reached both running daemons that reload.
    assert.deepEqual(await reloadedPids(seen, 2), [webPid, gatePid].sort());
    const report = await readyWith(["web", "git-gate"]);
    assert.equal(pidOf(report, "web"), webPid);
    assert.equal(pidOf(report, "git-gate"), gatePid);
    assert.equal(await answer(gatePort), "ok");
    await assert.rejects(answer(thirdPort), "the invalid file's new daemon did not start");
    assert.equal(named("reload-failed").length, 1);
    assert.equal(named("daemon-added").length, 1);
  });

  test("a config that cannot be read: one reload-failed naming the file, nothing changed", async () => {
    await rm(file);
    init.kill("SIGHUP");
    const failed = await until("a second reload-failed", () =>
      Promise.resolve(named("reload-failed")[1]),
    );
    assert.equal(failed.file, file);
    assert.match(failed.message, /ENOENT/);
    assert.ok(failed.message.includes(file), failed.message);
    assert.equal(failed.problems, undefined);
    const report = await readyWith(["web", "git-gate"]);
    assert.equal(pidOf(report, "web"), webPid);
    assert.equal(pidOf(report, "git-gate"), gatePid);
    assert.equal(init.exitCode, null, "init runs on");
  });
});

describe("a daemon added with a probe is probed, though none init booted with has one", () => {
  const TIMING = { intervalMs: 100, timeoutMs: 300 };
  const events: { event: string; daemon?: unknown }[] = [];
  let supervisor: Supervisor;
  let endpoint: Server;
  let healthPort = 0;
  let pid = 0;

  before(async () => {
    healthPort = await freePort();
    supervisor = new Supervisor(
      {
        slug: "t-reload-probe",
        healthPort,
        stopGraceMs: 500,
        daemons: [{ name: "quiet", command: [process.execPath, DAEMON, "0"], reload: false }],
      },
      (event, _message, fields = {}) => events.push({ event, ...fields }),
      process.env,
      TIMING,
    );
    endpoint = healthEndpoint(() => supervisor.status());
    await new Promise<void>((resolve) => endpoint.listen(healthPort, "127.0.0.1", resolve));
    supervisor.start();
  });

  after(async () => {
    if (pid) process.kill(pid, "SIGCONT");
    await supervisor.stop();
    endpoint.close();
  });

  test("a probed daemon added and then frozen turns the bundle not ready, naming it", async () => {
    await until("quiet ready", async () =>
      (await health(healthPort)).status === 200 ? true : undefined,
    );
    const port = await freePort();
    const started = supervisor.add([
      { name: "quiet", command: ["never-run"], reload: false },
      { ...daemon("supervise", port, false), probe: { port, path: "/health" } },
    ]);
    assert.deepEqual(started, ["supervise"]);
    const ready = await until("supervise ready", async () => {
      const h = await health(healthPort);
      return h.status === 200 && h.body.daemons.length === 2 ? h.body : undefined;
    });
    pid = ready.daemons.find((d) => d.name === "supervise")?.pid ?? 0;
    assert.ok(pid > 0);

    process.kill(pid, "SIGSTOP");
    const h = await until("503", async () => {
      const r = await health(healthPort);
      return r.status === 503 ? r.body : undefined;
    });
    assert.equal(h.daemons.find((d) => d.name === "supervise")?.answering, false);
    assert.ok(events.some((e) => e.event === "daemon-silent" && e.daemon === "supervise"));
    process.kill(pid, "SIGCONT");
    pid = 0;
    await until("200 again", async () =>
      (await health(healthPort)).status === 200 ? true : undefined,
    );
  });
});
