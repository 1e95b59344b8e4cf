/**
 * What an approval of a git repository request makes: the manifest entry (checked by the
 * manifest's own rules, errors naming approve's flags) and the repository the gate serves.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultRepoName, grantEntry } from "../../../src/lifecycle/git-grants.js";
import { grantedRepo } from "../../../src/plan/git.js";
import { HOST_KEY } from "../../helpers/manifest.js";

const ssh = { kind: "git-repo" as const, upstream: "git@github.com:org/app.git", reason: "r" };
const https = {
  kind: "git-repo" as const,
  upstream: "https://gitlab.com/org/lib.git",
  reason: "r",
};

describe("granting a git repository", () => {
  test("its name in the bottle is the upstream's last path segment, unless --name says", () => {
    assert.equal(defaultRepoName("git@github.com:org/app.git"), "app");
    assert.equal(defaultRepoName("ssh://git@host:2222/srv/git/tool"), "tool");
    assert.equal(defaultRepoName("https://gitlab.com/group/sub/lib.git/"), "lib");
    assert.equal(grantEntry(ssh, { hostKey: HOST_KEY, keyFile: "/k", name: "mine" }).name, "mine");
  });

  test("an SSH upstream needs its pinned host key and a key file; the error names the flag", () => {
    assert.throws(() => grantEntry(ssh, { keyFile: "/k" }), /--host-key is missing/);
    assert.throws(() => grantEntry(ssh, { hostKey: HOST_KEY }), /--key-file is missing/);
    assert.throws(
      () => grantEntry(ssh, { hostKey: "ssh-ed25519 AAAA", keyFile: "/k" }),
      /--host-key /,
    );
    assert.throws(
      () => grantEntry(ssh, { hostKey: HOST_KEY, keyFile: "/k", tokenEnv: "T" }),
      /--token-env is for HTTPS upstreams — an SSH upstream is authenticated with --key-file: remove --token-env/,
    );
    assert.throws(
      () => grantEntry(ssh, { hostKey: HOST_KEY, keyFile: "/k", name: "../x" }),
      /--name must be letters, digits/,
    );
    const entry = grantEntry(ssh, { hostKey: `github.com ${HOST_KEY}`, keyFile: "/keys/deploy" });
    assert.deepEqual(entry.key, { provider: "static", path: "/keys/deploy" });
    assert.deepEqual(entry.push, { refs: ["refs/heads/*"], force: false, delete: false });
  });

  test("an HTTPS upstream takes a token variable and refuses SSH's flags", () => {
    assert.equal(grantEntry(https, { tokenEnv: "GL_TOKEN" }).token_env, "GL_TOKEN");
    assert.equal(grantEntry(https, {}).token_env, undefined, "anonymous: fetch only");
    assert.throws(
      () => grantEntry(https, { hostKey: HOST_KEY }),
      /--host-key is for SSH upstreams — .*: remove --host-key/,
    );
    assert.throws(() => grantEntry(https, { keyFile: "/k" }), /--key-file is for SSH upstreams/);
  });

  test("the gate finds a granted credential in its own home, never in a variable; the grant and its end are marked", () => {
    const repo = grantedRepo(
      grantEntry(ssh, { hostKey: HOST_KEY, keyFile: "/k" }),
      "coder-abc123",
      "r-abcdefghij",
      "2026-12-07T10:00:00.000Z",
    );
    assert.equal(repo.upstream.kind, "ssh");
    assert.deepEqual(repo.upstream.kind === "ssh" && repo.upstream.key, { provider: "granted" });
    assert.equal(repo.grant, "r-abcdefghij");
    assert.equal(repo.expires, "2026-12-07T10:00:00.000Z");
    const lib = grantedRepo(grantEntry(https, { tokenEnv: "GL_TOKEN" }), "coder-abc123", "r-x");
    assert.equal(lib.upstream.kind === "https" && lib.upstream.tokenGranted, true);
    assert.equal(lib.upstream.kind === "https" && lib.upstream.tokenEnv, undefined);
    assert.equal(lib.expires, undefined);
  });
});
