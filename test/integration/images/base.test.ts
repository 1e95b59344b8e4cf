import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { runCli } from "../../helpers/cli.js";
import { runInImage } from "../../helpers/docker.js";

describe("the offline base image", () => {
  test(
    "is built from Debian's packages (or reused), and a container runs from it",
    { timeout: 20 * 60_000 },
    async () => {
      const built = await runCli(["images", "base", "--json"], { timeoutMs: 20 * 60_000 });
      assert.equal(built.code, 0, built.stderr);
      const result = JSON.parse(built.stdout) as { ref: string; reused: boolean; seconds: number };
      assert.equal(result.ref, "bot-bottle/base:trixie");
      if (!result.reused) {
        assert.match(built.stderr, /\[2\/3\] debootstrap trixie \(minbase\)/, "progress is shown");
        console.log(`# built ${result.ref} offline in ${result.seconds.toFixed(1)} s`);
      }

      const lines = await runInImage(
        result.ref,
        '. /etc/os-release && echo "$VERSION_CODENAME" && id -u && test -s /etc/ssl/certs/ca-certificates.crt && echo certs && command -v apt-get',
      );
      assert.deepEqual(lines, ["trixie", "0", "certs", "/usr/bin/apt-get"]);

      const { stdout: labels } = await run("docker", [
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        result.ref,
      ]);
      const l = JSON.parse(labels) as Record<string, string>;
      assert.equal(l["dev.bot-bottle.kind"], "base");
      assert.match(l["dev.bot-bottle.base-recipe"] ?? "", /^[0-9a-f]{16}$/);

      const again = await runCli(["images", "base", "--json"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as { reused: boolean }).reused, true);
      assert.match(again.stderr, /reusing it/);

      const doctor = await runCli(["doctor"]);
      assert.match(doctor.stdout, /^ok\s+image base\s+bot-bottle\/base:trixie present/m);
    },
  );
});
