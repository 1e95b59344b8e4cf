import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { describe, test } from "node:test";
import type { Bottle, ExecOptions } from "../../../src/backends/backend.js";
import { CommandFailedError, run } from "../../../src/exec/run.js";
import {
  ALLOW_TIMEOUT_MS,
  assertCaged,
  CAGE_PROBE_SCRIPT,
  CageError,
  cageLine,
  cageProbes,
  DENY_TIMEOUT_MS,
  judge,
  selfTestCage,
  type ProbeOutcome,
} from "../../../src/provision/cage.js";

const HOSTS = [{ name: "host-gateway", address: "172.17.0.1" }];
const probes = cageProbes(
  {
    daemons: { egress: { host: "egress", port: 9099 } },
    unlisted: { host: "egress", port: 9000 },
    gatewayClosed: true,
  },
  HOSTS,
);
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
  const unused = () => Promise.reject(new Error("the self-test uses exec only"));
  return {
    slug: "test-abc123",
    exec,
    cpIn: unused,
    attach: unused,
    logs: unused,
    stop: unused,
    reach: unused,
  };
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

  test("a probe that passes on silence gives up soon; one that passes on an answer waits for it", () => {
    const waits = Object.fromEntries(probes.map((p) => [p.name, p.timeoutMs]));
    for (const n of ["ip-literal", "metadata", "dns", "no-proxy", "host-gateway"])
      assert.equal(waits[n], DENY_TIMEOUT_MS, n);
    // A busy machine's late refusal from the bundle is still a refusal, not a way out.
    for (const n of ["bundle-port", "ipv6", "egress"]) assert.equal(waits[n], ALLOW_TIMEOUT_MS, n);
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

  test("passes the probe program and the probe list as arguments, as the agent's user", async () => {
    let seen: { argv: readonly string[]; options?: ExecOptions } | undefined;
    const b = fakeBottle((argv, options) => {
      seen = { argv, ...(options ? { options } : {}) };
      return Promise.resolve({
        exitCode: 0,
        stdout: JSON.stringify({ results: closedCage() }) + "\n",
        stderr: "",
      });
    });
    const r = await selfTestCage(b, probes, { now: () => NOW });
    assert.equal(r.record.passed, true);
    assert.equal(r.record.checked, NOW.toISOString());
    assert.deepEqual(seen?.argv.slice(0, 3), ["node", "--input-type=module", "--eval"]);
    assert.match(seen?.argv[3] ?? "", /x-bot-bottle-refusal/);
    assert.deepEqual(JSON.parse(seen?.argv[4] ?? ""), { probes });
    assert.equal(seen?.options?.input, undefined, "nothing on stdin");
    assert.equal(seen?.options?.user, undefined, "the exec's default user: the agent's");
  });

  test("runs a root step in the same exec, and names it when it fails", async () => {
    const step = { what: "installing the bottle CA", script: "echo step", env: { X: "1" } };
    let seen: { argv: readonly string[]; options?: ExecOptions } | undefined;
    const ok = fakeBottle((argv, options) => {
      seen = { argv, ...(options ? { options } : {}) };
      return Promise.resolve({
        exitCode: 0,
        stdout: JSON.stringify({ results: closedCage() }) + "\n",
        stderr: "",
      });
    });
    const r = await selfTestCage(ok, probes, { now: () => NOW, alongside: step });
    assert.equal(r.record.passed, true);
    assert.equal(seen?.argv[0], "sh");
    assert.match(seen?.argv[2] ?? "", /echo step/);
    assert.match(seen?.argv[4] ?? "", /x-bot-bottle-refusal/);
    assert.deepEqual(JSON.parse(seen?.argv[5] ?? ""), { probes });
    assert.equal(seen?.options?.user, "root");
    assert.deepEqual(seen?.options?.env, { X: "1" });

    const failed = fakeBottle(() =>
      Promise.reject(
        new CommandFailedError("docker exec", 86, "cat: denied", "exited with status 86"),
      ),
    );
    await assert.rejects(
      selfTestCage(failed, probes, { alongside: step }),
      (e: unknown) =>
        e instanceof Error &&
        !(e instanceof CageError) &&
        e.message.includes("installing the bottle CA failed in test-abc123: cat: denied"),
    );
  });
});

describe("the probe program", () => {
  /** A free loopback port, not listening yet. */
  async function freePort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const { port } = s.address() as { port: number };
    await new Promise((resolve) => s.close(resolve));
    return port;
  }

  test("knocks again on a port that must answer until it listens, and only then tries the ports that wait for it", async () => {
    const [late, after, early] = [await freePort(), await freePort(), await freePort()];
    const servers: Server[] = [];
    // All three start listening together, after the program has started.
    const opening = setTimeout(() => {
      for (const port of [late, after, early]) {
        const s = createServer((c) => c.destroy());
        s.listen(port, "127.0.0.1");
        servers.push(s);
      }
    }, 300);
    try {
      const spec = {
        probes: [
          {
            name: "late",
            kind: "tcp",
            host: "127.0.0.1",
            port: late,
            timeoutMs: 2_000,
            retryRefusedMs: 5_000,
          },
          {
            name: "after",
            kind: "tcp",
            host: "127.0.0.1",
            port: after,
            timeoutMs: 500,
            afterAllowed: true,
          },
          { name: "early", kind: "tcp", host: "127.0.0.1", port: early, timeoutMs: 500 },
        ],
      };
      const script = await readFile(CAGE_PROBE_SCRIPT, "utf8");
      const { stdout } = await run(process.execPath, [
        "--input-type=module",
        "--eval",
        script,
        JSON.stringify(spec),
      ]);
      const { results } = JSON.parse(stdout) as { results: ProbeOutcome[] };
      const byName = new Map(results.map((r) => [r.name, r]));
      assert.equal(byName.get("late")?.outcome, "connected", "retried until the port listened");
      assert.equal(
        byName.get("after")?.outcome,
        "connected",
        "tried once the allowed port answered",
      );
      assert.equal(byName.get("early")?.code, "ECONNREFUSED", "a probe without retry: tried once");
    } finally {
      clearTimeout(opening);
      for (const s of servers) s.close();
    }
  });
});
