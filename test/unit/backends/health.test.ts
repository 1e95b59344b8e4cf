import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  bundleHealthOf,
  HEALTH_INTERVAL_ENV,
  healthCommand,
  healthFlags,
  healthInterval,
  healthOfStatus,
} from "../../../src/backends/docker/health.js";
import { UsageError } from "../../../src/errors.js";

const report = {
  ready: false,
  daemons: [
    { name: "egress", state: "ready", pid: 12, restarts: 0 },
    {
      name: "supervise",
      state: "ready",
      pid: 13,
      restarts: 0,
      answering: false,
      silentSince: "2026-11-25T10:00:00.000Z",
    },
  ],
};

describe("the bundle's health check", () => {
  test("is bash against init's port, never node, and passes on 200 alone", () => {
    const flags = healthFlags(9000, {});
    const cmd = flags[flags.indexOf("--health-cmd") + 1] ?? "";
    assert.equal(cmd, healthCommand(9000));
    assert.match(cmd, /^exec bash -c '/);
    assert.match(cmd, /\/dev\/tcp\/127\.0\.0\.1\/9000/);
    assert.doesNotMatch(cmd, /\bnode\b|curl|wget/);
    assert.equal(cmd.split("'").length, 3, "one single-quoted script: sh passes it whole");
    assert.match(cmd, /"HTTP\/1\."\?" 200 "\*\) exit 0/);
    assert.equal(flags[flags.indexOf("--health-interval") + 1], "60s");
  });

  test("its interval may be shortened by the environment, in whole seconds only", () => {
    assert.equal(healthInterval({ [HEALTH_INTERVAL_ENV]: "1" }), 1);
    assert.equal(healthInterval({ [HEALTH_INTERVAL_ENV]: "" }), 60);
    for (const bad of ["0", "1.5", "2s", "-1", "99999"])
      assert.throws(
        () => healthInterval({ [HEALTH_INTERVAL_ENV]: bad }),
        (err: unknown) =>
          err instanceof UsageError &&
          err.message === "BOT_BOTTLE_HEALTH_INTERVAL must be whole seconds from 1 to 3600",
        bad,
      );
  });

  test("reads the verdict from docker ps's status column", () => {
    assert.equal(healthOfStatus("Up 5 minutes (unhealthy)"), "unhealthy");
    assert.equal(healthOfStatus("Up 5 minutes (healthy)"), "healthy");
    assert.equal(healthOfStatus("Up 3 seconds (health: starting)"), "starting");
    assert.equal(healthOfStatus("Up 5 minutes"), undefined);
    assert.equal(healthOfStatus("Exited (0) 2 minutes ago"), undefined);
  });

  test("reads init's report from the last check docker inspect keeps", () => {
    const health = bundleHealthOf(
      {
        Status: "unhealthy",
        Log: [
          { End: "2026-11-25T09:59:30Z", ExitCode: 0, Output: '{"ready":true,"daemons":[]}\n' },
          { End: "2026-11-25T10:00:30Z", ExitCode: 1, Output: JSON.stringify(report) + "\n" },
        ],
      },
      "b",
    );
    assert.deepEqual(health, { status: "unhealthy", report, checked: "2026-11-25T10:00:30Z" });
  });

  test("keeps a check's output that is no report as one visible line", () => {
    assert.deepEqual(
      bundleHealthOf(
        {
          Status: "unhealthy",
          Log: [{ ExitCode: 1, Output: "\ninit did not answer GET /health within 3 s\x1b[2J\n" }],
        },
        "b",
      ),
      { status: "unhealthy", output: "init did not answer GET /health within 3 s\\x1b[2J" },
    );
    assert.deepEqual(bundleHealthOf({ Status: "unhealthy", Log: [{ ExitCode: 1 }] }, "b"), {
      status: "unhealthy",
      output: "exit status 1",
    });
  });

  test("a bundle with no health check has no health", () => {
    assert.equal(bundleHealthOf(null, "b"), undefined);
    assert.deepEqual(bundleHealthOf({ Status: "starting", Log: [] }, "b"), { status: "starting" });
  });
});
