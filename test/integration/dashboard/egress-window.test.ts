/**
 * The dashboard's egress counts of the last minute, from a bottle's real log file: read
 * incrementally (only what the file gained), a line still being written counted once whole, a
 * new file read from the start, a jump past the tail read from its tail, and concurrent reads of
 * one log counting each line once.
 */
import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EgressWindow } from "../../../src/dashboard/source.js";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import { auditFile } from "../../../src/state/audit.js";

const NOW = new Date("2026-12-07T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

const line = (secondsAgo: number, decision: "allow" | "refuse", path = "/") =>
  JSON.stringify({
    time: ago(secondsAgo),
    kind: "https",
    method: "GET",
    host: "api.example.test",
    port: 443,
    path,
    decision,
    tag: decision === "allow" ? "allowed" : "not-in-routes",
    bytesOut: 0,
    bytesIn: 0,
    ms: 1,
  } satisfies AuditRecord) + "\n";

describe("a bottle's egress counts of the last minute", () => {
  let root = "";
  let n = 0;
  /** A new bottle state dir with its audit folder. */
  const bottle = async () => {
    const dir = join(root, `b${n++}`);
    await mkdir(join(dir, "audit"), { recursive: true });
    return dir;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "bb-egress-window-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("counts what the log gains, never a line twice; a minute-old decision drops out", async () => {
    const dir = await bottle();
    const w = new EgressWindow();
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 0 }, "no log yet");
    await writeFile(auditFile(dir), line(90, "allow") + line(30, "allow") + line(20, "refuse"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 1, refused: 1 });
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 1, refused: 1 }, "nothing new");
    await appendFile(auditFile(dir), line(5, "allow"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 2, refused: 1 });
    const later = new Date(NOW.getTime() + 45_000);
    assert.deepEqual(await w.counts(dir, later), { allowed: 1, refused: 0 });
  });

  test("a line still being written is counted once it is whole", async () => {
    const dir = await bottle();
    const w = new EgressWindow();
    const whole = line(10, "refuse", "/é-ü");
    const cut = Buffer.from(whole).length - 12;
    await writeFile(auditFile(dir), Buffer.from(whole).subarray(0, cut));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 0 });
    await appendFile(auditFile(dir), Buffer.from(whole).subarray(cut));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 1 });
  });

  test("a log made anew (shorter, or another file) is read from its start", async () => {
    const dir = await bottle();
    const w = new EgressWindow();
    await writeFile(auditFile(dir), line(10, "allow") + line(9, "allow") + line(8, "allow"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 3, refused: 0 });
    await rm(auditFile(dir));
    await writeFile(auditFile(dir), line(5, "refuse"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 1 });
  });

  test("a log that grew by more than the tail is read from its tail's first whole line", async () => {
    const dir = await bottle();
    const w = new EgressWindow();
    await writeFile(auditFile(dir), line(50, "refuse"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 1 });
    // About 600 KiB of allowed decisions: more than the 256 KiB read.
    const one = line(10, "allow");
    const many = one.repeat(Math.ceil((600 * 1024) / one.length));
    await appendFile(auditFile(dir), many);
    const counts = await w.counts(dir, NOW);
    const tail = Math.floor((256 * 1024) / one.length);
    assert.equal(counts.refused, 0, "the old refusal fell before the tail");
    assert.ok(counts.allowed >= tail - 1 && counts.allowed <= tail, `${counts.allowed}`);
  });

  test("overlapping reads of one log count each line once; a bottle gone is forgotten", async () => {
    const dir = await bottle();
    const w = new EgressWindow();
    await writeFile(auditFile(dir), line(10, "allow").repeat(50));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 50, refused: 0 });
    await appendFile(auditFile(dir), line(5, "allow").repeat(10));
    const all = await Promise.all(Array.from({ length: 5 }, () => w.counts(dir, NOW)));
    for (const c of all) assert.deepEqual(c, { allowed: 60, refused: 0 });
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 60, refused: 0 });
    w.keep([]);
    await writeFile(auditFile(dir), line(10, "refuse"));
    assert.deepEqual(await w.counts(dir, NOW), { allowed: 0, refused: 1 });
  });
});
