import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CommandNotFoundError, startDetached } from "../../../src/exec/run.js";

async function until(what: string, ok: () => Promise<boolean> | boolean, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("starting a daemon detached", () => {
  let dir = "";
  before(async () => (dir = await mkdtemp(join(tmpdir(), "bot-bottle-detached-"))));
  after(() => rm(dir, { recursive: true, force: true }));

  test("runs in a session of its own with stdout and stderr appended to the log, and is not waited on", async () => {
    const log = join(dir, "daemon.log");
    const child = await startDetached(
      "sh",
      ["-c", 'echo "out $MARK"; echo err >&2; exec sleep 30'],
      { logFile: log, env: { ...process.env, MARK: "m1" } },
    );
    try {
      assert.ok(child.pid > 0);
      await until("the log shows both streams", async () => {
        const text = await readFile(log, "utf8");
        return text.includes("out m1\n") && text.includes("err\n");
      });
      // Field 6 of /proc/PID/stat is the session id: its own pid means a session of its own.
      const stat = await readFile(`/proc/${child.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      assert.equal(fields[3], String(child.pid), "session id");
      assert.equal(child.exited(), undefined, "still running");
    } finally {
      process.kill(child.pid, "SIGKILL");
    }
    await until("its end is seen", () => child.exited() !== undefined);
    assert.deepEqual(child.exited(), { code: null, signal: "SIGKILL" });
  });

  test("appends to an existing log, and reports a daemon that exits at once", async () => {
    const log = join(dir, "exits.log");
    for (const n of [1, 2]) {
      const child = await startDetached("sh", ["-c", `echo run ${n}; exit 3`], { logFile: log });
      await until("its end is seen", () => child.exited() !== undefined);
      assert.deepEqual(child.exited(), { code: 3, signal: null });
    }
    assert.equal(await readFile(log, "utf8"), "run 1\nrun 2\n");
  });

  test("says when the program is not installed", async () => {
    await assert.rejects(
      startDetached("bot-bottle-no-such-daemon", [], { logFile: join(dir, "none.log") }),
      CommandNotFoundError,
    );
  });
});
