/**
 * The cage self-test that `start` runs from inside the agent before handing the bottle over:
 * first a closed cage (start shows one line and records every probe in metadata.json), then the
 * same bottle with a hole made on purpose — the agent also joined to a plain `--internal` network,
 * whose bridge holds a host address — where the self-test names the probe that got out and the
 * check start applies refuses the bottle.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DockerBackend } from "../../../src/backends/docker/backend.js";
import { DockerCli } from "../../../src/backends/docker/cli.js";
import { run } from "../../../src/exec/run.js";
import { EGRESS_PORT } from "../../../src/plan/plan.js";
import {
  assertCaged,
  CageError,
  cageProbes,
  hostAddresses,
  selfTestCage,
} from "../../../src/provision/cage.js";
import type { BottleMetadata } from "../../../src/state/bottle-state.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const agent = t.agent("selftest");
let slug = "";

describe("the cage self-test at start", { timeout: 10 * 60_000 }, () => {
  before(async () => {
    await t.setup(TestBottles.shellManifest([agent]));
  });
  after(async () => {
    await t.teardown();
  });

  test("start probes the cage from inside the agent, shows one line and records it", async () => {
    const r = await t.cli(["start", agent, "--detach", "--yes"]);
    assert.equal(r.code, 0, r.stderr);
    slug = r.stdout.trim();
    const line = /^cage: (\d+) probes refused, egress, supervise answer$/m.exec(r.stderr);
    assert.ok(line, r.stderr);
    assert.ok(
      r.stderr.indexOf(line[0]) < r.stderr.indexOf(`${slug} is ready`),
      "the cage is checked before the bottle is ready",
    );

    const metadata = JSON.parse(
      await readFile(join(t.dir, "state", "bot-bottle", slug, "metadata.json"), "utf8"),
    ) as BottleMetadata;
    assert.equal(metadata.status, "running");
    const cage = metadata.cage;
    assert.ok(cage, "metadata.json records the self-test");
    assert.equal(cage.passed, true);
    assert.equal(cage.refused, Number(line[1]));
    assert.ok(cage.ms > 0);
    const byName = new Map(cage.probes.map((p) => [p.name, p]));
    for (const name of ["ip-literal", "metadata", "internal-gateway"])
      assert.match(byName.get(name)?.result ?? "", /^(timeout|EHOSTUNREACH|ENETUNREACH)$/, name);
    assert.equal(byName.get("ipv6")?.result, "EADDRNOTAVAIL");
    assert.equal(byName.get("bundle-port")?.result, "ECONNREFUSED");
    for (const name of ["dns", "no-proxy"])
      assert.match(byName.get(name)?.result ?? "", /^(timeout|ETIMEOUT|ESERVFAIL|EREFUSED)$/);
    assert.deepEqual(byName.get("egress"), {
      name: "egress",
      target: `egress:${EGRESS_PORT}`,
      expected: "answers",
      result: "HTTP 403 refused (not-a-proxy-request)",
      ok: true,
    });
    for (const p of cage.probes) assert.equal(p.ok, true, JSON.stringify(p));
  });

  test("names the probe that gets out of a cage with a hole, and refuses the bottle", async () => {
    assert.ok(slug, "the first test started the bottle");
    const backend = new DockerBackend(new DockerCli(t.env));
    const bottle = await backend.handle(slug, await backend.resources(slug));
    assert.ok(bottle, "the running bottle has a handle");
    const reach = await bottle.reach();
    const closed = await selfTestCage(bottle, cageProbes(reach, hostAddresses()));
    assert.deepEqual(closed.failures, [], "the same handle and probes pass while the cage holds");

    // The hole: Docker's plain --internal network, whose bridge holds a host address.
    const leaky = await t.network(["--internal"]);
    await run("docker", ["network", "connect", leaky, bottle.agentContainer]);
    const { stdout } = await run("docker", [
      "network",
      "inspect",
      "--format",
      "{{(index .IPAM.Config 0).Gateway}}",
      leaky,
    ]);
    const hostSide = stdout.trim();
    const hosts = hostAddresses();
    assert.ok(
      hosts.some((h) => h.address === hostSide),
      `the host holds the leaky bridge's address ${hostSide}`,
    );

    const result = await selfTestCage(bottle, cageProbes(reach, hosts));
    assert.equal(result.record.passed, false);
    const escaped = result.failures.find((f) => f.target === `${hostSide}:22`);
    assert.ok(escaped, JSON.stringify(result.failures));
    // The host answered: a reset from a closed port, or a connection to an open one.
    assert.match(escaped.result, /^(ECONNREFUSED|connected)$/);
    assert.equal(
      result.record.probes.find((p) => p.name === "egress")?.ok,
      true,
      "the proxy still answers: only the hole differs",
    );
    assert.throws(
      () => assertCaged(slug, result),
      (e: unknown) =>
        e instanceof CageError &&
        e.message.includes("the bottle is not handed over") &&
        e.message.includes(`${escaped.name} (${hostSide}:22) got out: ${escaped.result}`),
    );
  });
});
