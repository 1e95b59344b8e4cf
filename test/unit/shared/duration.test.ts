import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatDuration, parseDuration, roughDuration } from "../../../src/shared/duration.js";

describe("durations as the operator writes them", () => {
  test("reads whole numbers with s, m, h or d, larger units first", () => {
    assert.equal(parseDuration("30s"), 30);
    assert.equal(parseDuration("5m"), 300);
    assert.equal(parseDuration("2h"), 7200);
    assert.equal(parseDuration("1d"), 86_400);
    assert.equal(parseDuration("1h30m"), 5400);
    assert.equal(parseDuration("0s"), 0);
  });

  test("refuses a bare number, fractions, signs, spaces, upper case and units out of order", () => {
    for (const bad of [
      "",
      "30",
      "1.5h",
      "-5m",
      "+5m",
      " 5m",
      "5m ",
      "5M",
      "5min",
      "30m1h",
      "1h1h",
      "h",
      "1e3s",
    ])
      assert.equal(parseDuration(bad), undefined, JSON.stringify(bad));
  });

  test("writes the shortest exact spelling, which reads back", () => {
    for (const [seconds, text] of [
      [0, "0s"],
      [45, "45s"],
      [120, "2m"],
      [3600, "1h"],
      [5400, "1h30m"],
      [90_061, "1d1h1m1s"],
    ] as const) {
      assert.equal(formatDuration(seconds), text);
      assert.equal(parseDuration(text), seconds);
    }
  });

  test("an age for a table keeps the largest unit only", () => {
    assert.equal(roughDuration(59), "59s");
    assert.equal(roughDuration(61), "1m");
    assert.equal(roughDuration(7199), "1h");
    assert.equal(roughDuration(200_000), "2d");
    assert.equal(roughDuration(-3), "0s");
  });
});
