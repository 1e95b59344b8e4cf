import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { judgeUpdates, refPattern } from "../../../src/sidecars/git-gate/policy.js";

const Z = "0".repeat(40);
const A = "a".repeat(40);
const B = "b".repeat(40);
const branches = { refs: ["refs/heads/*"], force: false, delete: false };

describe("the git gate's push policy", () => {
  test("a pattern's * stays within one segment, ** crosses them, the rest is literal", () => {
    assert.ok(refPattern("refs/heads/*").test("refs/heads/main"));
    assert.ok(!refPattern("refs/heads/*").test("refs/heads/feature/x"));
    assert.ok(refPattern("refs/heads/**").test("refs/heads/feature/x"));
    assert.ok(!refPattern("refs/heads/a.b").test("refs/heads/aXb"), "a dot is a dot");
    assert.ok(!refPattern("refs/heads/*").test("refs/tags/v1"));
  });

  test("allows a fast-forward and a new branch under the default policy", () => {
    const verdicts = judgeUpdates(
      branches,
      [
        { ref: "refs/heads/main", old: A, new: B },
        { ref: "refs/heads/new", old: Z, new: B },
      ],
      () => true,
    );
    assert.deepEqual(
      verdicts.map((v) => v.refused),
      [undefined, undefined],
    );
  });

  test("refuses a tag, a deletion and a forced move under the default policy, naming each", () => {
    const verdicts = judgeUpdates(
      branches,
      [
        { ref: "refs/tags/v1", old: Z, new: B },
        { ref: "refs/heads/old", old: A, new: Z },
        { ref: "refs/heads/main", old: A, new: B },
      ],
      () => false,
    );
    assert.match(
      verdicts[0]?.refused ?? "",
      /refs\/tags\/v1 is not among the refs .*refs\/heads\/\*/,
    );
    assert.match(
      verdicts[1]?.refused ?? "",
      /deleting refs\/heads\/old is not allowed \(push.delete/,
    );
    assert.match(verdicts[2]?.refused ?? "", /refs\/heads\/main would lose commits .*push.force/);
  });

  test("the entry's own policy allows what it names", () => {
    const verdicts = judgeUpdates(
      { refs: ["refs/heads/**", "refs/tags/*"], force: true, delete: true },
      [
        { ref: "refs/tags/v1", old: Z, new: B },
        { ref: "refs/heads/a/b", old: A, new: Z },
        { ref: "refs/heads/main", old: A, new: B },
      ],
      () => false,
    );
    assert.deepEqual(
      verdicts.map((v) => v.refused),
      [undefined, undefined, undefined],
    );
  });

  test("an empty ref list takes no push at all", () => {
    const [v] = judgeUpdates(
      { refs: [], force: true, delete: true },
      [{ ref: "refs/heads/main", old: A, new: B }],
      () => true,
    );
    assert.match(v?.refused ?? "", /takes no pushes/);
  });
});
