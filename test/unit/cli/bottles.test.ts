import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bundleHealthOf } from "../../../src/backends/docker/health.js";
import { lsRow } from "../../../src/cli/bottles.js";
import type { BottleSummary } from "../../../src/lifecycle/bottles.js";

const bottle: BottleSummary = {
  slug: "dev-7k2m9x",
  agent: "dev",
  bottle: "box",
  state: "running",
  backend: "docker",
  stateDir: "/state/dev-7k2m9x",
  workspace: "/p/site",
  template: "shell",
  created: "2026-11-25T09:00:00.000Z",
  containers: [],
  networks: [],
};

/** What docker inspect keeps of a failed check whose output was `output`. */
const unhealthy = (output: string) =>
  bundleHealthOf({ Status: "unhealthy", Log: [{ ExitCode: 1, Output: output }] }, "b");

const report = (daemons: Record<string, unknown>[]) =>
  JSON.stringify({
    ready: false,
    daemons: [{ name: "egress", state: "ready", pid: 12, restarts: 0 }, ...daemons],
  });

describe("a row of `ls`", () => {
  test("a bottle whose bundle answers its health check reads running", () => {
    assert.deepEqual(lsRow({ ...bottle, health: { status: "healthy" } }), [
      "dev-7k2m9x",
      "dev",
      "box",
      "docker",
      "running",
      "2026-11-25 09:00:00",
      "/p/site",
    ]);
    assert.equal(lsRow(bottle)[4], "running", "no health check: nothing to add");
    assert.equal(lsRow({ ...bottle, health: { status: "starting" } })[4], "running");
  });

  test("names the daemon that does not answer", () => {
    const health = unhealthy(
      report([
        {
          name: "supervise",
          state: "ready",
          pid: 13,
          restarts: 0,
          answering: false,
          silentSince: "2026-11-25T10:00:00.000Z",
        },
      ]),
    );
    assert.equal(lsRow({ ...bottle, health })[4], "running (supervise not answering)");
  });

  test("names a daemon init is restarting, and says when init itself does not answer", () => {
    const restarting = unhealthy(
      report([{ name: "supervise", state: "backoff", restarts: 3, answering: true }]),
    );
    assert.equal(lsRow({ ...bottle, health: restarting })[4], "running (supervise restarting)");
    const silent = unhealthy("init did not answer GET /health within 3 s");
    assert.equal(lsRow({ ...bottle, health: silent })[4], "running (init not answering)");
    assert.equal(
      lsRow({ ...bottle, health: { status: "unhealthy" } })[4],
      "running (bundle unhealthy)",
    );
  });

  test("a bottle that is not running says only its state", () => {
    const health = unhealthy(
      report([{ name: "supervise", state: "ready", restarts: 0, answering: false }]),
    );
    assert.equal(lsRow({ ...bottle, state: "broken", health })[4], "broken");
  });
});
