import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DaemonSpec } from "../../../src/shared/init-config.js";
import { addedDaemons } from "../../../src/sidecars/init/added.js";

const daemon = (name: string, command = ["node", `${name}.js`]): DaemonSpec => ({
  name,
  command,
  reload: false,
});

describe("which daemons a re-read init config adds", () => {
  test("a name init does not run is added, in the file's order", () => {
    assert.deepEqual(
      addedDaemons(["egress"], [daemon("egress"), daemon("git-gate"), daemon("supervise")]).map(
        (d) => d.name,
      ),
      ["git-gate", "supervise"],
    );
  });

  test("a daemon init runs is not added again, even when its spec changed", () => {
    assert.deepEqual(addedDaemons(["egress"], [daemon("egress", ["node", "other.js"])]), []);
  });

  test("a daemon the file no longer lists is not the file's to stop: nothing is added", () => {
    assert.deepEqual(addedDaemons(["egress", "git-gate"], [daemon("egress")]), []);
  });

  test("a new name listed twice is added once, as its first entry says", () => {
    const added = addedDaemons([], [daemon("git-gate", ["first"]), daemon("git-gate", ["second"])]);
    assert.deepEqual(
      added.map((d) => d.command),
      [["first"]],
    );
  });
});
