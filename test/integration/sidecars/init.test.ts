import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { InitConfig } from "../../../src/shared/init-config.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";

const INIT = join(PACKAGE_ROOT, "dist", "bundle", "sidecars", "init", "main.js");
const DAEMON = join(PACKAGE_ROOT, "test", "fixtures", "daemon.mjs");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Health {
  ready: boolean;
  daemons: { name: string; state: string; pid: number; restarts: number }[];
}

async function health(port: number): Promise<{ status: number; body: Health }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: (await res.json()) as Health };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("the bundle's init, as a real process", () => {
  let dir: string;
  let init: ChildProcess;
  const events: { event: string; component: string; daemon?: string; message: string }[] = [];
  let healthPort: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-init-"));
    healthPort = await freePort();
    const webPort = await freePort();
    const config: InitConfig = {
      slug: "t-1",
      healthPort,
      stopGraceMs: 500,
      daemons: [
        {
          name: "web",
          command: [process.execPath, DAEMON, String(webPort)],
          port: webPort,
          reload: true,
        },
        { name: "stubborn", command: [process.execPath, DAEMON, "0", "--stubborn"], reload: false },
      ],
    };
    await writeFile(join(dir, "init.json"), JSON.stringify(config));
    init = spawn(process.execPath, [INIT], {
      env: { ...process.env, BOT_BOTTLE_INIT_CONFIG: join(dir, "init.json") },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let pending = "";
    init.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) if (l) events.push(JSON.parse(l) as (typeof events)[number]);
    });
  });
  after(async () => {
    if (init.exitCode === null) init.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  test("starts every daemon and reports ready on its loopback health endpoint", async () => {
    const h = await until("ready", async () => {
      const r = await health(healthPort);
      return r.status === 200 ? r : undefined;
    });
    assert.deepEqual(
      h.body.daemons.map((d) => [d.name, d.state]),
      [
        ["web", "ready"],
        ["stubborn", "ready"],
      ],
    );
    assert.ok(events.some((e) => e.event === "ready"));
    assert.ok(
      events.some(
        (e) => e.event === "output" && e.message === "plain output line" && e.daemon === "web",
      ),
      "plain output is wrapped as an event",
    );
  });

  test("restarts a daemon that dies, with a log line", async () => {
    const before = (await health(healthPort)).body.daemons.find((d) => d.name === "web");
    assert.ok(before?.pid);
    process.kill(before.pid, "SIGKILL");
    const after = await until("web restarted", async () => {
      const d = (await health(healthPort)).body.daemons.find((x) => x.name === "web");
      return d && d.restarts === 1 && d.state === "ready" ? d : undefined;
    });
    assert.notEqual(after.pid, before.pid);
    assert.ok(
      events.some(
        (e) => e.event === "restart" && e.daemon === "web" && /signal SIGKILL/.test(e.message),
      ),
    );
  });

  test("forwards SIGHUP only to daemons that reload", async () => {
    const web = (await health(healthPort)).body.daemons.find((d) => d.name === "web");
    init.kill("SIGHUP");
    await until("reload event", () =>
      Promise.resolve(events.some((e) => e.event === "reloaded") ? true : undefined),
    );
    const reloaded = events.filter((e) => e.event === "reloaded") as unknown as { pid: number }[];
    assert.deepEqual(
      reloaded.map((e) => e.pid),
      [web?.pid],
    );
  });

  test("on SIGTERM stops every daemon within the deadline, killing one that ignores it", async () => {
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => {
      init.once("exit", (c) => resolve(c));
      init.kill("SIGTERM");
    });
    const took = Date.now() - started;
    assert.equal(code, 0);
    assert.ok(took < 3000, `stopped in ${took} ms`);
    assert.ok(events.some((e) => e.event === "kill" && e.daemon === "stubborn"));
    assert.ok(events.some((e) => e.event === "stopped"));
  });
});
