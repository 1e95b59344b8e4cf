import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatPath } from "../../../src/manifest/problems.js";
import { load, problemsOf } from "../../helpers/manifest.js";

/** A manifest of one shell agent in bottle "b" with this `supervise`. */
function withSupervise(supervise: unknown): Record<string, unknown> {
  return {
    agents: { a: { template: "shell", bottle: "b" } },
    bottles: { b: supervise === undefined ? {} : { supervise } },
  };
}

const supervise = (value: unknown) => load(withSupervise(value)).data.bottles["b"]?.supervise;

function problems(value: unknown): { path: string; message: string }[] {
  return problemsOf(withSupervise(value)).problems.map((p) => ({
    path: formatPath(p.path),
    message: p.message,
  }));
}

describe("a bottle's supervise setting", () => {
  test("true and a missing field mean on with the defaults; false means off", () => {
    const defaults = { wait_seconds: 120, timeout_seconds: 3600, rate_per_minute: 10 };
    assert.deepEqual(supervise(undefined), defaults);
    assert.deepEqual(supervise(true), defaults);
    assert.equal(supervise(false), false);
    assert.deepEqual(supervise({}), defaults);
  });

  test("an object sets the wait, the timeout, the rate and a notify command, in seconds", () => {
    assert.deepEqual(
      supervise({
        wait: "30s",
        timeout: "2h",
        rate_per_minute: 3,
        notify: { command: ["ntfy", "publish", "mytopic"] },
      }),
      {
        wait_seconds: 30,
        timeout_seconds: 7200,
        rate_per_minute: 3,
        notify: { command: ["ntfy", "publish", "mytopic"] },
      },
    );
    assert.deepEqual(supervise({ timeout: "1h30m" }), {
      wait_seconds: 120,
      timeout_seconds: 5400,
      rate_per_minute: 10,
    });
  });

  test("refuses a duration without a unit, naming the field and giving an example", () => {
    for (const wait of ["120", "2 m", "1.5m", "-5s", "soon", ""]) {
      const [p, ...rest] = problems({ wait });
      assert.equal(rest.length, 0, wait);
      assert.equal(p?.path, "bottles.b.supervise.wait", wait);
      assert.match(p?.message ?? "", /must be a duration.*e\.g\. "30s", "5m", "2h"/, wait);
    }
  });

  test("refuses a timeout out of bounds and a wait longer than the timeout", () => {
    assert.match(problems({ timeout: "5s" })[0]?.message ?? "", /must be at least 10s/);
    assert.match(problems({ timeout: "8d" })[0]?.message ?? "", /must be at most 7d/);
    assert.match(problems({ wait: "2h" })[0]?.message ?? "", /must be at most 1h/);
    const [p] = problems({ wait: "10m", timeout: "5m" });
    assert.equal(p?.path, "bottles.b.supervise.wait");
    assert.match(p?.message ?? "", /longer than `timeout`/);
  });

  test("refuses wrong types field by field, an unknown field with the choices, and other values", () => {
    assert.deepEqual(
      problems({ rate_per_minute: 1.5 }).map((p) => p.path),
      ["bottles.b.supervise.rate_per_minute"],
    );
    assert.match(problems({ wait: 30 })[0]?.message ?? "", /must be a string/);
    const [unknown] = problems({ wiat: "30s" });
    assert.equal(unknown?.path, "bottles.b.supervise.wiat");
    assert.match(unknown?.message ?? "", /did you mean "wait"\?.*wait, timeout, rate_per_minute/);
    const [command] = problems({ notify: { command: [] } });
    assert.equal(command?.path, "bottles.b.supervise.notify.command");
    const [other] = problems("sometimes");
    assert.equal(other?.path, "bottles.b.supervise");
    assert.match(other?.message ?? "", /must be true or false, or an object such as/);
    assert.doesNotMatch(other?.message ?? "", /sometimes/);
  });

  test("never prints the value it refuses", () => {
    const secretish = "ghp_0123456789abcdefghij0123456789abcdef";
    for (const p of problems({ wait: secretish, timeout: secretish }))
      assert.doesNotMatch(p.message, /ghp_/);
  });
});
