import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bundleHealthOf } from "../../../src/backends/docker/health.js";
import type { BottleSummary } from "../../../src/lifecycle/bottles.js";
import { unhealthyBottleChecks } from "../../../src/lifecycle/health.js";

const bottle = (slug: string, output?: string): BottleSummary => ({
  slug,
  agent: "dev",
  bottle: "box",
  state: "running",
  backend: "docker",
  stateDir: `/state/${slug}`,
  workspace: "/p/site",
  template: "shell",
  created: "2026-11-25T09:00:00.000Z",
  containers: [],
  networks: [],
  ...(output === undefined
    ? { health: { status: "healthy" } }
    : {
        health: bundleHealthOf(
          { Status: "unhealthy", Log: [{ ExitCode: 1, Output: output }] },
          "b",
        ),
      }),
});

const silentSupervise = JSON.stringify({
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
});

describe("doctor's lines on running bottles", () => {
  test("one failing line for a bottle whose supervise does not answer, saying what to do", () => {
    const checks = unhealthyBottleChecks([
      bottle("dev-aaaaaa"),
      bottle("dev-bbbbbb", silentSupervise),
    ]);
    assert.deepEqual(checks, [
      {
        name: "bottle dev-bbbbbb",
        status: "fail",
        detail:
          "supervise does not answer its health check (since 2026-11-25 10:00:00 UTC): its bundle reports not ready",
        remedy:
          "supervise takes no request and applies no decision meanwhile, and the agent's pending requests are not carried over; `bot-bottle logs dev-bbbbbb` shows init's events; `bot-bottle stop dev-bbbbbb` (its state and audit are kept), then start the agent again",
      },
    ]);
  });

  test("no line while every bundle answers", () => {
    assert.deepEqual(unhealthyBottleChecks([bottle("dev-aaaaaa"), bottle("dev-cccccc")]), []);
  });

  test("a bundle whose init does not answer fails with the check's own words", () => {
    const [check] = unhealthyBottleChecks([
      bottle("dev-dddddd", "init did not answer GET /health within 3 s"),
    ]);
    assert.equal(check?.status, "fail");
    assert.equal(
      check?.detail,
      "its bundle fails its health check (init did not answer GET /health within 3 s)",
    );
    assert.doesNotMatch(check?.remedy ?? "", /supervise/);
  });
});
