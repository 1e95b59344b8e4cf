import assert from "node:assert/strict";
import { mkdtemp, mkdir } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { checkBridgeIsolation } from "../../../src/backends/docker/isolation.js";

describe("checking the agent bridge for a host address", () => {
  test("an interface that holds an IPv4 address is open", () => {
    const [name] =
      Object.entries(networkInterfaces()).find(([, as]) => as?.some((a) => a.family === "IPv4")) ??
      [];
    assert.ok(name);
    assert.equal(checkBridgeIsolation(name).verdict, "open");
  });

  test("a bridge that exists without an address is closed", async () => {
    const sysfs = await mkdtemp(join(tmpdir(), "sysfs-"));
    await mkdir(join(sysfs, "bbtest0i"));
    assert.deepEqual(checkBridgeIsolation("bbtest0i", sysfs), { verdict: "closed" });
  });

  test("a bridge this host cannot see is unverifiable, never closed", () => {
    assert.equal(checkBridgeIsolation("bbnothere0", "/nonexistent").verdict, "unverifiable");
  });
});
