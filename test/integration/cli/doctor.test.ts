import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli, STACK_LINE } from "../../helpers/cli.js";

describe("bot-bottle doctor, against the real engine", () => {
  test("reports a running engine as running, with its version", async () => {
    const r = await runCli(["doctor"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok\s+docker engine\s+running: server \S+ \(API [\d.]+/m);
    assert.match(
      r.stdout,
      /^ok\s+host isolation\s+the agent's internal bridge holds no host address/m,
    );
    assert.match(r.stdout, /^(ok|warn)\s+disk \(docker\)\s+[\d.]+ GiB free/m);
    assert.match(r.stdout, /^(ok|info)\s+smolvm\s+/m);
    assert.match(r.stdout, /^(ok|warn)\s+image base\s+bot-bottle\/base:/m);
    assert.match(r.stdout, /^(ok|warn)\s+image shell\s+bot-bottle\/shell:/m);
    const json = await runCli(["doctor", "--json"]);
    const checks = JSON.parse(json.stdout) as { name: string; status: string }[];
    assert.equal(checks.find((c) => c.name === "docker engine")?.status, "ok");
  });

  test("reports a stopped engine as a failure, says what to do, and exits 3", async () => {
    // The socket of an engine that is not running: the path exists, nothing listens there.
    const dir = await mkdtemp(join(tmpdir(), "bot-bottle-doctor-"));
    try {
      const env = { ...process.env, DOCKER_HOST: `unix://${join(dir, "docker.sock")}` };
      const r = await runCli(["doctor"], { env });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stdout, /^FAIL\s+docker engine\s+not reachable at unix:\/\/.*docker\.sock/m);
      assert.match(r.stdout, /→ start the engine \(`sudo systemctl start docker`/);
      assert.match(
        r.stdout,
        /image base\s+bot-bottle\/base:\S+: cannot check while the engine is down/,
      );
      assert.match(r.stderr, /a required check failed: docker engine/);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
