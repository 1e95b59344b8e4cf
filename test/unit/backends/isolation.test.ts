import assert from "node:assert/strict";
import { mkdtemp, mkdir } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { checkBridgeIsolation, isolationRefusal } from "../../../src/backends/docker/isolation.js";

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

  test("start and doctor refuse an open bridge and one they cannot verify; only a closed one passes", async () => {
    const sysfs = await mkdtemp(join(tmpdir(), "sysfs-"));
    await mkdir(join(sysfs, "bbtest1i"));
    assert.equal(isolationRefusal("bbtest1i", checkBridgeIsolation("bbtest1i", sysfs)), undefined);
    const open = isolationRefusal("bbtest1i", { verdict: "open", address: "172.18.0.1" });
    assert.match(open?.message ?? "", /holds the host address 172\.18\.0\.1/);
    const unseen = isolationRefusal(
      "bbnothere0",
      checkBridgeIsolation("bbnothere0", "/nonexistent"),
    );
    assert.match(
      unseen?.message ?? "",
      /^cannot verify that the agent's internal bridge bbnothere0 holds no host address: .*not visible from this host.*does not start/,
    );
    assert.match(unseen?.remedy ?? "", /engine's own host/);
  });
});
