import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkEnvName,
  checkKnownHostKey,
  closest,
  normaliseDnsName,
  parseGitUpstream,
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

  test("reads scp-like upstreams as git does: port 22, the path as written (home-relative)", () => {
    assert.deepEqual(parseGitUpstream("git@github.com:org/repo.git"), {
      kind: "ssh",
      user: "git",
      host: "github.com",
      port: 22,
      path: "org/repo.git",
    });
    assert.deepEqual(parseGitUpstream("deploy@Git.Example.COM.:/srv/x.git"), {
      kind: "ssh",
      user: "deploy",
      host: "git.example.com",
      port: 22,
      path: "/srv/x.git",
    });
    assert.deepEqual(parseGitUpstream("host.example:~/x.git"), {
      kind: "ssh",
      user: "git",
      host: "host.example",
      port: 22,
      path: "~/x.git",
    });
    assert.deepEqual(parseGitUpstream("git@[2001:DB8::1]:x.git"), {
      kind: "ssh",
      user: "git",
      host: "2001:db8::1",
      port: 22,
      path: "x.git",
    });
  });

  test("reads ssh:// upstreams as git does: the port, the path it sends (no / before ~)", () => {
    assert.deepEqual(parseGitUpstream("ssh://git@host.example:2222/srv/x.git"), {
      kind: "ssh",
      user: "git",
      host: "host.example",
      port: 2222,
      path: "/srv/x.git",
    });
    assert.deepEqual(parseGitUpstream("ssh://host.example/org/repo.git"), {
      kind: "ssh",
      user: "git",
      host: "host.example",
      port: 22,
      path: "/org/repo.git",
    });
    assert.deepEqual(parseGitUpstream("ssh://host.example/~/x.git"), {
      kind: "ssh",
      user: "git",
      host: "host.example",
      port: 22,
      path: "~/x.git",
    });
    assert.deepEqual(parseGitUpstream("ssh://git@[::1]:2200/~bob/x.git"), {
      kind: "ssh",
      user: "git",
      host: "::1",
      port: 2200,
      path: "~bob/x.git",
    });
  });

  test("reads https:// upstreams: port 443 unless given, IPv6 in brackets", () => {
    assert.deepEqual(parseGitUpstream("https://GitHub.com/org/repo.git"), {
      kind: "https",
      host: "github.com",
      port: 443,
      path: "/org/repo.git",
    });
    assert.deepEqual(parseGitUpstream("https://[::1]:8443/org/repo"), {
      kind: "https",
      host: "::1",
      port: 8443,
      path: "/org/repo",
    });
  });

  test("refuses upstreams the gate cannot reach exactly, never echoing them", () => {
    const bad: [string, RegExp][] = [
      ["http://git.example.com/o/r.git", /plain http:\/\//],
      ["git://git.example.com/o/r.git", /transport the git gate does not speak/],
      ["file:///srv/git/r.git", /transport the git gate does not speak/],
      ["ext::ssh -o ProxyCommand=x h %S", /transport the git gate does not speak/],
      ["/srv/git/r.git", /not an SSH or HTTPS URL/],
      ["git@host", /not an SSH or HTTPS URL/],
      ["ssh://git@host", /needs a repository path/],
      ["https://host.example", /needs a repository path/],
      ["ssh://git@host.example:0/r.git", /port/],
      ["https://host.example:65536/r.git", /port/],
      ["ssh://git:hunter2@host.example/r.git", /never put credentials in the URL/],
      ["git:hunter2@host.example:r.git", /never put credentials in the URL/],
      ["https://bot:hunter2@host.example/r.git", /never put credentials in the URL/],
      ["https://host.example/r.git?x=1", /query or fragment/],
      ["https://host.example/a/../r.git", /"\." or "\.\." segments/],
      ["ssh://host.example/a%20b.git", /"%"/],
      ["git@host.example:-oProxyCommand=x", /starting with "-"/],
      ["ssh://-oProxyCommand=x@host.example/r.git", /user name/],
      ["git@-host.example:r.git", /does not name a host/],
      ["git@host.example:my repo.git", /not an SSH or HTTPS URL|white space/],
    ];
    for (const [value, why] of bad) {
      const parsed = parseGitUpstream(value);
      assert.ok("problem" in parsed, value);
      assert.match(parsed.problem, why, value);
      assert.ok(!parsed.problem.includes("hunter2"), value);
      assert.match(parsed.problem, /ssh:\/\/|https:\/\/|credentials/, `${value}: shows the forms`);
    }
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
