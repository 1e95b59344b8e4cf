import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Bottle } from "../../../src/backends/backend.js";
import { CommandFailedError } from "../../../src/exec/run.js";
import {
  assertCaged,
  CageError,
  cageLine,
  cageProbes,
  judge,
  selfTestCage,
  type ProbeOutcome,
} from "../../../src/provision/cage.js";

const HOSTS = [{ name: "host-gateway", address: "172.17.0.1" }];
const probes = cageProbes({ egress: 9099 }, HOSTS);
const NOW = new Date("2026-01-01T00:00:00Z");

/** What a closed cage answers, probe by probe. */
function closedCage(): ProbeOutcome[] {
  return probes.map((p): ProbeOutcome => {
    if (p.name === "egress")
      return { name: p.name, outcome: "connected", status: 403, refusal: "not-a-proxy-request" };
    if (p.name === "ipv6") return { name: p.name, outcome: "error", code: "EADDRNOTAVAIL" };
    if (p.name === "bundle-port") return { name: p.name, outcome: "error", code: "ECONNREFUSED" };
    return { name: p.name, outcome: "error", code: "timeout" };
  });
}

function replace(outcomes: ProbeOutcome[], o: ProbeOutcome): ProbeOutcome[] {
  return outcomes.map((x) => (x.name === o.name ? o : x));
}

function fakeBottle(exec: Bottle["exec"]): Bottle {
  return { slug: "test-abc123", exec, cpIn: () => Promise.resolve() };
}

describe("the cage self-test's judgement", () => {
  test("probes every way out and each port the plan lists, and none the plan lists as out", () => {
    const names = probes.map((p) => p.name);
    for (const n of ["ip-literal", "ipv6", "dns", "no-proxy", "metadata", "bundle-port"])
      assert.ok(names.includes(n), n);
    assert.ok(names.includes("host-gateway") && names.includes("egress"));
    const unlisted = probes.find((p) => p.name === "bundle-port");
    assert.notEqual(unlisted?.port, 9099, "the unlisted bundle port is not the egress port");
    assert.equal(new Set(names).size, names.length, "names are unique");
  });

  test("passes a closed cage and says so in one line", () => {
    const r = judge(probes, closedCage(), 80, NOW);
    assert.equal(r.record.passed, true);
    assert.deepEqual(r.failures, []);
    assert.equal(cageLine(r.record), `${probes.length - 1} probes refused, egress answers`);
    assert.doesNotThrow(() => assertCaged("test-abc123", r));
  });

  test("fails a probe out that connects, naming it", () => {
    const r = judge(
      probes,
      replace(closedCage(), { name: "metadata", outcome: "connected" }),
      80,
      NOW,
    );
    assert.equal(r.record.passed, false);
    assert.deepEqual(
      r.failures.map((f) => [f.name, f.result]),
      [["metadata", "connected"]],
    );
    assert.throws(
      () => assertCaged("test-abc123", r),
      (e: unknown) =>
        e instanceof CageError &&
        /metadata \(169\.254\.169\.254:80\) got out: connected/.test(e.message),
    );
  });

  test("counts a reset from a host address as out: only a real path is refused there", () => {
    const r = judge(
      probes,
      replace(closedCage(), { name: "host-gateway", outcome: "error", code: "ECONNREFUSED" }),
      80,
      NOW,
    );
    assert.deepEqual(
      r.failures.map((f) => f.name),
      ["host-gateway"],
    );
  });

  test("does not count an unexpected error, or a missing result, as refused", () => {
    const crashed = replace(closedCage(), {
      name: "ip-literal",
      outcome: "error",
      code: "ERROR Cannot read properties of undefined",
    });
    const r = judge(
      probes,
      crashed.filter((o) => o.name !== "dns"),
      80,
      NOW,
    );
    assert.deepEqual(r.failures.map((f) => [f.name, f.result]).sort(), [
      ["dns", "no result"],
      ["ip-literal", "ERROR Cannot read properties of undefined"],
    ]);
  });

  test("fails when the egress proxy does not answer with its refusal", () => {
    for (const o of [
      { name: "egress", outcome: "error", code: "ECONNREFUSED" },
      { name: "egress", outcome: "connected", status: 200 },
      { name: "egress", outcome: "connected", status: 403 },
    ] as const) {
      const r = judge(probes, replace(closedCage(), o), 80, NOW);
      assert.deepEqual(
        r.failures.map((f) => f.name),
        ["egress"],
        JSON.stringify(o),
      );
    }
  });

  test("refuses to judge when the probe program fails or prints something else", async () => {
    const broken = [
      fakeBottle(() =>
        Promise.resolve({ exitCode: 0, stdout: "Segmentation fault\n", stderr: "" }),
      ),
      fakeBottle(() =>
        Promise.resolve({ exitCode: 0, stdout: '{"results":[{"x":1}]}', stderr: "" }),
      ),
      fakeBottle(() =>
        Promise.reject(
          new CommandFailedError("docker exec", 1, "SyntaxError: boom", "exited with status 1"),
        ),
      ),
    ];
    for (const b of broken)
      await assert.rejects(selfTestCage(b, probes), (e: unknown) => e instanceof CageError);
  });

  test("sends the probe program on stdin and the probe list as its argument", async () => {
    let seen: { argv: readonly string[]; input?: string } | undefined;
    const b = fakeBottle((argv, options) => {
      seen = { argv, ...(options?.input !== undefined ? { input: options.input } : {}) };
      return Promise.resolve({
        exitCode: 0,
        stdout: JSON.stringify({ results: closedCage() }) + "\n",
        stderr: "",
      });
    });
    const r = await selfTestCage(b, probes, () => NOW);
    assert.equal(r.record.passed, true);
    assert.equal(r.record.checked, NOW.toISOString());
    assert.deepEqual(seen?.argv.slice(0, 3), ["node", "--input-type=module", "-"]);
    assert.deepEqual(JSON.parse(seen?.argv[3] ?? ""), { probes });
    assert.match(seen?.input ?? "", /x-bot-bottle-refusal/);
  });
});
