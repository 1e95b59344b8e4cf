import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PACKAGE_ROOT } from "../../../src/package-root.js";

const INIT = join(PACKAGE_ROOT, "dist", "bundle", "sidecars", "init", "main.js");
const EGRESS = join(PACKAGE_ROOT, "dist", "bundle", "sidecars", "egress", "main.js");
const SECRET = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

/** Runs a compiled sidecar to its end: exit code and the JSON events it wrote. */
function run(
  argv: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; events: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      env: { ...process.env, BOT_BOTTLE_SLUG: "t-1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const events = stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, events });
    });
  });
}

describe("a sidecar given a bad config file starts nothing and says why", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-config-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("init exits with a config-invalid event naming the file and the paths, no value", async () => {
    const good = join(dir, "good-init.json");
    await writeFile(
      good,
      JSON.stringify({ slug: "t-1", daemons: [], healthPort: 1, stopGraceMs: 0 }),
    );
    const bad = join(dir, "init.json");
    await writeFile(
      bad,
      JSON.stringify({
        slug: "t-1",
        daemons: [],
        healthPort: SECRET,
        stopGraceMs: 0,
        token: SECRET,
      }),
    );
    // The twin: the same program on a valid file boots (and is stopped once it has said so).
    const booted = await new Promise<boolean>((resolve) => {
      const child = spawn(process.execPath, [INIT], {
        env: { ...process.env, BOT_BOTTLE_INIT_CONFIG: good },
        stdio: ["ignore", "pipe", "inherit"],
      });
      child.stdout.setEncoding("utf8").on("data", (c: string) => {
        if (c.includes('"boot"')) {
          child.kill("SIGKILL");
          resolve(true);
        }
      });
      child.on("close", () => resolve(false));
    });
    assert.ok(booted, "init boots on a valid file");

    const { code, stdout, events } = await run([INIT], { BOT_BOTTLE_INIT_CONFIG: bad });
    assert.equal(code, 1);
    assert.ok(!stdout.includes(SECRET), "no value from the file is echoed");
    assert.deepEqual(
      events.map((e) => [e["component"], e["event"], e["slug"]]),
      [["init", "config-invalid", "t-1"]],
    );
    assert.equal(events[0]?.["file"], bad);
    assert.deepEqual(
      (events[0]?.["problems"] as { path: string }[]).map((p) => p.path),
      ["healthPort", "token"],
    );
    assert.match(String(events[0]?.["message"]), new RegExp(`^${bad} is not a valid init config`));
  });

  test("the egress daemon exits with a config-invalid event before it listens", async () => {
    const bad = join(dir, "egress.json");
    await writeFile(
      bad,
      JSON.stringify({
        slug: "t-1",
        generation: 1,
        secretEnv: [],
        routes: [{ host: "api.example.com", tlsPassthrough: false, allowIpLiteral: SECRET }],
        extraHosts: {},
      }),
    );
    const { code, stdout, events } = await run([EGRESS, "--port", "0", "--config", bad], {});
    assert.equal(code, 1);
    assert.ok(!stdout.includes(SECRET), "no value from the file is echoed");
    assert.deepEqual(
      events.map((e) => [e["component"], e["event"]]),
      [["egress", "config-invalid"]],
    );
    assert.deepEqual(
      (events[0]?.["problems"] as { path: string; message: string }[]).map((p) => p.path),
      ["routes[0].allowIpLiteral"],
    );
    assert.match(String(events[0]?.["message"]), /refusing to start/);
  });
});
