import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { renderGitAudit } from "../../../src/state/audit.js";
import { visible } from "../../../src/shared/visible.js";

describe("text the agent chose, shown to the operator", () => {
  test("control characters, ANSI sequences, bidi overrides and zero-width characters are made visible", () => {
    assert.equal(visible("\u001b[31mred\u001b[0m"), "\\x1b[31mred\\x1b[0m");
    assert.equal(visible("a\nb\rc\td"), "a\\nb\\rc\\td");
    assert.equal(visible("evil\u202eexe.txt"), "evil\\u202eexe.txt");
    assert.equal(visible("pa\u200bypal"), "pa\\u200bypal");
    assert.equal(visible("\u0085\u007f\ufeff\u2066"), "\\x85\\x7f\\ufeff\\u2066");
  });

  test("ordinary text, accents and other scripts are left alone", () => {
    for (const text of ["src/app.ts", "café", "日本語", "a\\b", "emoji 🎉"])
      assert.equal(visible(text), text);
  });

  test("a git audit line shows a hostile file name escaped, exactly", () => {
    const line = renderGitAudit({
      time: "2026-12-07T02:00:00.000Z",
      repo: "app",
      op: "push",
      decision: "refuse",
      tag: "secret-detected",
      reason: "a secret (aws-access-token) in x\u001b[2K\u202e.txt line 1",
      finding: { rule: "aws-access-token", file: "x\u001b[2K\u202e.txt", line: 1 },
      ms: 3,
    });
    assert.ok(!line.includes("\u001b") && !line.includes("\u202e"), line);
    assert.match(line, /x\\x1b\[2K\\u202e\.txt/);
  });
});
