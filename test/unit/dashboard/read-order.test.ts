/**
 * Overlapping reads of the dashboard: a listing of the engine that lands is never undone by a
 * read that began before it, and only the latest of each kind counts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ReadOrder } from "../../../src/dashboard/source.js";

describe("which overlapping reads count", () => {
  test("the first read lists the engine, even when asked for the files only", () => {
    const order = new ReadOrder<string>();
    const read = order.begin(false);
    assert.equal(read.known, undefined);
    read.landed("one bottle");
    assert.equal(order.listing, "one bottle");
    assert.equal(order.begin(false).known, "one bottle");
  });

  test("a files-only read that began before a listing landed does not count", () => {
    const order = new ReadOrder<string>();
    order.begin(true).landed("before");
    const files = order.begin(false);
    const engine = order.begin(true);
    // The engine's event came after the file change, and its listing lands first.
    assert.ok(engine.counts());
    engine.landed("after");
    assert.equal(files.counts(), false, "the files-only read would show the older listing");
    assert.equal(order.listing, "after");
  });

  test("a listing that lands after a later files-only read still counts", () => {
    const order = new ReadOrder<string>();
    order.begin(true).landed("before");
    const engine = order.begin(true);
    const files = order.begin(false);
    assert.ok(files.counts());
    files.landed("ignored: a files-only read carries no listing of its own");
    assert.equal(order.listing, "before");
    assert.ok(engine.counts(), "the engine's news is not dropped");
    engine.landed("after");
    assert.equal(order.listing, "after");
  });

  test("of two reads of a kind, only the later counts", () => {
    const order = new ReadOrder<string>();
    const first = order.begin(true);
    const second = order.begin(true);
    assert.equal(first.counts(), false);
    assert.ok(second.counts());
    second.landed("listed");
    const a = order.begin(false);
    const b = order.begin(false);
    assert.equal(a.counts(), false);
    assert.ok(b.counts());
  });
});
