import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli, STACK_LINE } from "../../helpers/cli.js";

describe("bot-bottle dashboard without a terminal", () => {
  test("is refused in one sentence with what to use instead, status 2, no stack", async () => {
    const r = await runCli(["dashboard"], { input: "" });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /the dashboard needs a terminal/);
    assert.match(r.stderr, /bot-bottle ls.*bot-bottle requests/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.equal(r.stdout, "");
  });
});
