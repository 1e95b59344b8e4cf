import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { renderJson, renderLine } from "../../../src/lifecycle/logs.js";
import { mergeByTime, parseTimestamped } from "../../../src/shared/logs.js";

describe("bottle logs", () => {
  const bundle = parseTimestamped(
    "bundle",
    '2026-11-23T14:35:09.897000000Z {"time":"t","slug":"s","component":"init","event":"ready","message":"every daemon is ready"}\n',
  );
  const agent = parseTimestamped("agent", "2026-11-23T14:35:09.500000000Z hello from the agent\n");

  test("merges sources in time order", () => {
    assert.deepEqual(
      mergeByTime(bundle, agent).map((l) => l.source),
      ["agent", "bundle"],
    );
  });

  test("renders typed events and plain output as lines for people", () => {
    assert.equal(
      renderLine(bundle[0]!),
      "14:35:09.897 init     ready        every daemon is ready",
    );
    assert.equal(renderLine(agent[0]!), "14:35:09.500 agent    output       hello from the agent");
  });

  test("renders JSON lines for programs, keeping events whole", () => {
    assert.equal((JSON.parse(renderJson(bundle[0]!)) as { event: string }).event, "ready");
    assert.deepEqual(JSON.parse(renderJson(agent[0]!)), {
      time: "2026-11-23T14:35:09.500000000Z",
      component: "agent",
      event: "output",
      message: "hello from the agent",
    });
  });
});
