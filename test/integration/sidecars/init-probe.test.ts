/**
 * init's probe, in process: a real daemon (test/fixtures/daemon.mjs, an HTTP server in its own
 * process) that init supervises and probes. Frozen with SIGSTOP it still holds its port open but
 * answers nothing: init's health endpoint turns 503 naming it, and the engine's health check
 * command (run here by sh, as Docker runs it) fails printing that report. Thawed, it answers and
 * all is ready again. Each change is logged once, not at every probe.
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { healthCommand } from "../../../src/backends/docker/health.js";
import { run } from "../../../src/exec/run.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import { parseInitStatus, type InitStatus } from "../../../src/shared/init-config.js";
import { healthEndpoint } from "../../../src/sidecars/init/endpoint.js";
import { Supervisor } from "../../../src/sidecars/init/supervisor.js";

const DAEMON = join(PACKAGE_ROOT, "test", "fixtures", "daemon.mjs");
const TIMING = { intervalMs: 100, timeoutMs: 300 };

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
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("init probes a daemon that declares a probe", () => {
  const events: { event: string; message: string; daemon?: unknown }[] = [];
  let supervisor: Supervisor;
  let endpoint: Server;
  let healthPort = 0;
  let pid = 0;

  /** The engine's health check, exactly as `docker run --health-cmd` gives it to sh. */
  const check = async () => {
    const r = await run("sh", ["-c", healthCommand(healthPort)], { okExitCodes: [0, 1] });
    return { code: r.exitCode, report: parseInitStatus(r.stdout.trim(), "the check's output") };
  };
  const health = async (): Promise<{ status: number; body: InitStatus }> => {
    const res = await fetch(`http://127.0.0.1:${healthPort}/health`);
    return { status: res.status, body: parseInitStatus(await res.text(), "/health") };
  };
  const count = (event: string) => events.filter((e) => e.event === event).length;

  before(async () => {
    const webPort = await freePort();
    healthPort = await freePort();
    supervisor = new Supervisor(
      {
        slug: "t-probe",
        healthPort,
        stopGraceMs: 500,
        daemons: [
          {
            name: "supervise",
            command: [process.execPath, DAEMON, String(webPort)],
            port: webPort,
            reload: false,
            probe: { port: webPort, path: "/health" },
          },
          { name: "quiet", command: [process.execPath, DAEMON, "0"], reload: false },
        ],
      },
      (event, message, fields = {}) => events.push({ event, message, ...fields }),
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

  test("a daemon that answers: ready, and the health check passes with init's report", async () => {
    const ready = await until("ready", async () => {
      const h = await health();
      return h.status === 200 && h.body.daemons.every((d) => d.state === "ready") ? h : undefined;
    });
    // Probed at least once, and answered: no silence was ever logged.
    await sleep(TIMING.intervalMs * 3);
    assert.deepEqual(
      ready.body.daemons.map((d) => [d.name, d.answering]),
      [
        ["supervise", true],
        ["quiet", undefined],
      ],
    );
    assert.equal(count("daemon-silent"), 0);
    const c = await check();
    assert.equal(c.code, 0);
    assert.equal(c.report.ready, true);
    pid = ready.body.daemons[0]?.pid ?? 0;
    assert.ok(pid > 0);
  });

  test("a daemon that stops answering: not ready, named with since when, logged once", async () => {
    const stopped = Date.now();
    process.kill(pid, "SIGSTOP");
    const h = await until("503", async () => {
      const r = await health();
      return r.status === 503 ? r : undefined;
    });
    const supervise = h.body.daemons.find((d) => d.name === "supervise");
    assert.equal(h.body.ready, false);
    assert.equal(supervise?.state, "ready", "its process is up: only the probe tells");
    assert.equal(supervise?.answering, false);
    assert.ok(supervise?.silentSince);
    assert.ok(Date.parse(supervise.silentSince) >= stopped - 1000);
    assert.equal(h.body.daemons.find((d) => d.name === "quiet")?.answering, undefined);

    const c = await check();
    assert.equal(c.code, 1, "the engine's check fails");
    assert.equal(c.report.daemons.find((d) => d.name === "supervise")?.answering, false);

    // Several more probes fail: still one log line.
    await sleep(TIMING.intervalMs * 5 + TIMING.timeoutMs * 3);
    assert.equal(count("daemon-silent"), 1);
    const silent = events.find((e) => e.event === "daemon-silent");
    assert.equal(silent?.daemon, "supervise");
    assert.match(
      silent?.message ?? "",
      /^supervise does not answer GET \/health on :\d+ \(no answer within 300 ms\)/,
    );
    assert.equal(count("daemon-answering"), 0);
  });

  test("a daemon that answers again: ready, the check passes, logged once", async () => {
    process.kill(pid, "SIGCONT");
    pid = 0;
    const h = await until("200 again", async () => {
      const r = await health();
      return r.status === 200 ? r : undefined;
    });
    assert.equal(h.body.ready, true);
    assert.equal(h.body.daemons.find((d) => d.name === "supervise")?.silentSince, undefined);
    assert.equal((await check()).code, 0);
    await sleep(TIMING.intervalMs * 5);
    assert.equal(count("daemon-answering"), 1);
    assert.equal(count("daemon-silent"), 1);
    assert.match(
      events.find((e) => e.event === "daemon-answering")?.message ?? "",
      /^supervise answers GET \/health on :\d+ again, after \d+ s$/,
    );
    assert.equal(
      events.filter((e) => e.event === "restart").length,
      0,
      "init never restarted it: the probe only reports",
    );
  });
});
