import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkEnvName,
  checkKnownHostKey,
  closest,
  normaliseDnsName,
  parseSshUpstream,
} from "../../../src/manifest/rules.js";
import { HOST_KEY } from "../../helpers/manifest.js";

/** An SSH key blob: length-prefixed fields, base64-encoded. */
function blob(...fields: Buffer[]): string {
  return Buffer.concat(fields.flatMap((f) => [Buffer.from([0, 0, 0, f.length]), f])).toString(
    "base64",
  );
}

describe("manifest value rules", () => {
  test("normalises host names: case, trailing dot, IDNA", () => {
    assert.equal(normaliseDnsName("API.Example.COM."), "api.example.com");
    assert.equal(normaliseDnsName("bücher.example"), "xn--bcher-kva.example");
    assert.equal(normaliseDnsName("-bad.example"), undefined);
    assert.equal(normaliseDnsName("1.2.3.4"), undefined);
  });

  test("accepts SSH upstreams in URL and scp forms, and names their host", () => {
    assert.deepEqual(parseSshUpstream("git@github.com:owner/repo.git"), { host: "github.com" });
    assert.deepEqual(parseSshUpstream("ssh://git@git.corp:2222/team/app.git"), {
      host: "git.corp",
    });
    assert.deepEqual(parseSshUpstream("host.example:repo.git"), { host: "host.example" });
    for (const bad of ["https://github.com/o/r.git", "ssh://git@host", "/local/path", "git@host"])
      assert.ok("problem" in parseSshUpstream(bad), bad);
  });

  test("accepts host key lines with or without a host field", () => {
    assert.equal(checkKnownHostKey(HOST_KEY), undefined);
    assert.equal(checkKnownHostKey(`github.com ${HOST_KEY}`), undefined);
    assert.equal(checkKnownHostKey(`${HOST_KEY} comment here`), undefined);
    const ecdsa = blob(
      Buffer.from("ecdsa-sha2-nistp256"),
      Buffer.from("nistp256"),
      Buffer.alloc(65, 4),
    );
    assert.equal(checkKnownHostKey(`ecdsa-sha2-nistp256 ${ecdsa}`), undefined);
  });

  test("refuses host keys whose blob names another type or is cut short", () => {
    const rsaBlobClaimingEd = blob(
      Buffer.from("ssh-rsa"),
      Buffer.from([1, 0, 1]),
      Buffer.alloc(64, 1),
    );
    assert.match(checkKnownHostKey(`ssh-ed25519 ${rsaBlobClaimingEd}`) ?? "", /does not match/);
    assert.match(checkKnownHostKey(HOST_KEY.slice(0, -8)) ?? "", /truncated|base64/);
    assert.match(
      checkKnownHostKey("ssh-dss AAAAB3NzaC1kc3M=") ?? "",
      /not an OpenSSH public host key/,
    );
  });

  test("env var names: accepts names, refuses token-shaped strings", () => {
    assert.equal(checkEnvName("ANTHROPIC_API_KEY"), undefined);
    assert.equal(checkEnvName("_private2"), undefined);
    assert.notEqual(checkEnvName("ghp_0123456789abcdefghijABCDEFGHIJ012345"), undefined);
    assert.notEqual(checkEnvName("AKIAIOSFODNN7EXAMPLE"), undefined);
  });

  test("suggests the closest word only when it is close", () => {
    assert.equal(closest("egres", ["egress", "git", "supervise"]), "egress");
    assert.equal(closest("zzzzzz", ["egress", "git"]), undefined);
  });
});
