import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  CommandFailedError,
  CommandNotFoundError,
  formatCommand,
  run,
} from "../../../src/exec/run.js";

describe("running external programs", () => {
  test("streams output line by line and returns it", async () => {
    const lines: string[] = [];
    const result = await run("sh", ["-c", "echo one; echo two >&2; printf three"], {
      onStdoutLine: (l) => lines.push(l),
    });
    assert.deepEqual(lines, ["one"]);
    assert.equal(result.stdout, "one\nthree");
    assert.equal(result.stderr, "two\n");
  });

  test("passes arguments without a shell", async () => {
    const { stdout } = await run("printf", ["%s|", "a b", "$HOME", "; rm -rf /"]);
    assert.equal(stdout, "a b|$HOME|; rm -rf /|");
  });

  test("puts the command line and the last stderr lines in the error", async () => {
    await assert.rejects(run("sh", ["-c", "echo boom >&2; exit 3"]), (err: CommandFailedError) => {
      assert.ok(err instanceof CommandFailedError);
      assert.equal(err.exitStatus, 3);
      assert.match(err.message, /`sh -c "echo boom >&2; exit 3"` exited with status 3/);
      assert.match(err.message, /boom/);
      return true;
    });
  });

  test("says when a program is not installed", async () => {
    await assert.rejects(run("bot-bottle-no-such-program", []), CommandNotFoundError);
  });

  test("kills a program that outlives its deadline", async () => {
    const started = Date.now();
    await assert.rejects(run("sleep", ["30"], { timeoutMs: 200 }), /did not finish within 200 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  test("cancels through an AbortSignal", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(run("sleep", ["30"], { signal: controller.signal }), /cancelled/);
  });

  test("quotes only what needs quoting in messages", () => {
    assert.equal(formatCommand("docker", ["run", "--rm", "a b"]), 'docker run --rm "a b"');
  });
});
