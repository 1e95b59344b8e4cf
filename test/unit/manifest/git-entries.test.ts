import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hostWarnings } from "../../../src/manifest/host-check.js";
import { formatPath } from "../../../src/manifest/problems.js";
import { example, gitEntry, load, problemsOf } from "../../helpers/manifest.js";

/** The one problem reported at `path`, failing when there is none. */
function problemAt(data: unknown, path: string) {
  const err = problemsOf(data);
  const found = err.problems.find((p) => formatPath(p.path) === path);
  assert.ok(found, `expected a problem at ${path}; got:\n${err.message}`);
  return found;
}

function withGit(...entries: Record<string, unknown>[]) {
  const m = example();
  m.bottles.dev.git = entries;
  return m;
}

function httpsEntry(name: string, extra: Record<string, unknown> = {}) {
  return { name, upstream: `https://git.example.com/team/${name}.git`, ...extra };
}

const BOTH_FORMS = /git@github\.com:owner\/repo\.git.*https:\/\/github\.com\/owner\/repo\.git/;

describe("git entries in the manifest", () => {
  test("accepts an HTTPS entry with a token variable, and fills the user name and push policy", () => {
    const m = load(withGit(httpsEntry("app", { token_env: "GIT_TOKEN" })));
    const [entry] = m.data.bottles["dev"]?.git ?? [];
    assert.deepEqual(entry, {
      name: "app",
      upstream: "https://git.example.com/team/app.git",
      token_env: "GIT_TOKEN",
      username: "x-access-token",
      push: { refs: ["refs/heads/*"], force: false, delete: false },
      extra_hosts: {},
    });
  });

  test("accepts an HTTPS entry without a token (anonymous fetch) and keeps a given user name", () => {
    const m = load(withGit(httpsEntry("app"), httpsEntry("lib", { username: "oauth2" })));
    const git = m.data.bottles["dev"]?.git ?? [];
    assert.equal(git[0]?.token_env, undefined);
    assert.equal(git[1]?.username, "oauth2");
  });

  test("fills the push policy field by field, and keeps an empty ref list (no push at all)", () => {
    const m = load(
      withGit(
        gitEntry("app", { push: { force: true } }),
        gitEntry("lib", { push: { refs: [], delete: true } }),
      ),
    );
    const git = m.data.bottles["dev"]?.git ?? [];
    assert.deepEqual(git[0]?.push, { refs: ["refs/heads/*"], force: true, delete: false });
    assert.deepEqual(git[1]?.push, { refs: [], force: false, delete: true });
  });

  test("gives every entry its own default ref list", () => {
    const git = load(withGit(gitEntry("app"), gitEntry("lib"))).data.bottles["dev"]?.git ?? [];
    assert.notEqual(git[0]?.push.refs, git[1]?.push.refs);
    git[0]?.push.refs.push("refs/tags/*");
    const again = load(withGit(gitEntry("app"))).data.bottles["dev"]?.git ?? [];
    assert.deepEqual(again[0]?.push.refs, ["refs/heads/*"]);
  });

  test("refuses an SSH entry without a pinned host key, saying how to get one", () => {
    const entry: Record<string, unknown> = gitEntry("app");
    delete entry["known_host_key"];
    const problem = problemAt(withGit(entry), "bottles.dev.git[0].known_host_key");
    assert.match(problem.message, /^is missing — an SSH upstream needs its host key pinned/);
    assert.match(problem.message, /`ssh-keyscan -t ed25519 HOST`/);
    assert.match(problem.message, /published fingerprint/);
  });

  test("refuses an SSH entry without a key, naming the key forms", () => {
    const entry: Record<string, unknown> = gitEntry("app");
    delete entry["key"];
    const problem = problemAt(withGit(entry), "bottles.dev.git[0].key");
    assert.match(
      problem.message,
      /^is missing — an SSH upstream needs the key the gate signs in with/,
    );
    assert.match(problem.message, /"provider": "static"/);
  });

  test("refuses token_env and username on an SSH entry", () => {
    const m = withGit(gitEntry("app", { token_env: "GIT_TOKEN", username: "bot" }));
    assert.match(
      problemAt(m, "bottles.dev.git[0].token_env").message,
      /^is for HTTPS upstreams — an SSH upstream is authenticated with `key`/,
    );
    assert.match(
      problemAt(m, "bottles.dev.git[0].username").message,
      /^is for HTTPS upstreams — an SSH upstream's user name is the part before "@"/,
    );
  });

  test("refuses a key and a host key on an HTTPS entry, saying TLS and token_env do that job", () => {
    const m = withGit(
      httpsEntry("app", {
        key: { provider: "static", path: "keys/deploy" },
        known_host_key: gitEntry("x").known_host_key,
      }),
    );
    const key = problemAt(m, "bottles.dev.git[0].key").message;
    assert.match(key, /^is for SSH upstreams — an HTTPS upstream is verified by TLS/);
    assert.match(key, /`token_env`/);
    const hostKey = problemAt(m, "bottles.dev.git[0].known_host_key").message;
    assert.match(hostKey, /^is for SSH upstreams — an HTTPS upstream is verified by TLS/);
    assert.match(hostKey, /`token_env`/);
  });

  test("refuses http://, git:// and file:// upstreams, showing the SSH and HTTPS forms", () => {
    const m = withGit(
      gitEntry("a", { upstream: "http://git.example.com/team/a.git" }),
      gitEntry("b", { upstream: "git://git.example.com/team/b.git" }),
      gitEntry("c", { upstream: "file:///srv/git/c.git" }),
      gitEntry("d", { upstream: "/srv/git/d.git" }),
    );
    const a = problemAt(m, "bottles.dev.git[0].upstream").message;
    assert.match(a, /^is a plain http:\/\/ URL — the git gate refuses unencrypted upstreams/);
    assert.match(a, BOTH_FORMS);
    for (const i of [1, 2]) {
      const message = problemAt(m, `bottles.dev.git[${i}].upstream`).message;
      assert.match(message, /^uses a transport the git gate does not speak/);
      assert.match(message, BOTH_FORMS);
    }
    assert.match(problemAt(m, "bottles.dev.git[3].upstream").message, BOTH_FORMS);
  });

  test("refuses credentials written into the upstream URL, without echoing them", () => {
    const m = withGit(
      httpsEntry("app", { upstream: "https://bot:ghp_SECRETSECRET@github.com/o/r.git" }),
    );
    const err = problemsOf(m);
    const problem = err.problems.find((p) => formatPath(p.path) === "bottles.dev.git[0].upstream");
    assert.match(problem?.message ?? "", /never put credentials in the URL/);
    assert.ok(!err.message.includes("SECRETSECRET"));
  });

  test("refuses a token_env that is not a variable name or looks like the token itself", () => {
    const m = withGit(
      httpsEntry("a", { token_env: "git token" }),
      httpsEntry("b", { token_env: "ghp_0123456789abcdefghijABCDEFGHIJ012345" }),
    );
    for (const i of [0, 1])
      assert.match(
        problemAt(m, `bottles.dev.git[${i}].token_env`).message,
        /name of an environment variable on the host.*never the token itself/,
      );
  });

  test("refuses a user name that is empty, has a colon or white space, or looks like a token", () => {
    const m = withGit(
      httpsEntry("a", { username: "" }),
      httpsEntry("b", { username: "bot:secret" }),
      httpsEntry("c", { username: "review bot" }),
      httpsEntry("d", { username: "glpat-0123456789abcdefghij" }),
    );
    assert.match(problemAt(m, "bottles.dev.git[0].username").message, /must not be empty/);
    assert.match(problemAt(m, "bottles.dev.git[1].username").message, /must not contain ":"/);
    assert.match(problemAt(m, "bottles.dev.git[2].username").message, /white space/);
    assert.match(problemAt(m, "bottles.dev.git[3].username").message, /looks like a token/);
  });

  test("accepts ref patterns with * in a segment and ** across segments", () => {
    const refs = ["refs/heads/*", "refs/heads/bot/**", "refs/tags/v*", "refs/heads/feature-*-wip"];
    const m = load(withGit(gitEntry("app", { push: { refs } })));
    assert.deepEqual(m.data.bottles["dev"]?.git[0]?.push.refs, refs);
  });

  test("refuses ref patterns git would not take as ref names, each with an example", () => {
    const bad: [string, RegExp][] = [
      ["heads/main", /must start with "refs\/"/],
      ["refs/heads/my branch", /white space/],
      ["refs/heads/a..b", /must not contain "\.\."/],
      ["refs/heads/ma?n", /"~", "\^", ":", "\?", "\["/],
      ["refs/heads/[ab]", /"~", "\^", ":", "\?", "\["/],
      ["refs/heads/x~1", /"~", "\^", ":", "\?", "\["/],
      ["refs/heads/a\\b", /"~", "\^", ":", "\?", "\["/],
      ["refs/heads/\u0007", /control characters/],
      ["refs/heads//x", /empty segment/],
      ["refs/notes/", /empty segment/],
      ["refs/heads/x.lock", /\.lock/],
      ["refs/heads/feature**", /"\*\*" only as a whole segment/],
      ["refs/heads/@{1}", /"@\{"/],
    ];
    const m = withGit(gitEntry("app", { push: { refs: bad.map(([ref]) => ref) } }));
    bad.forEach(([ref, why], i) => {
      const message = problemAt(m, `bottles.dev.git[0].push.refs[${i}]`).message;
      assert.match(message, why, ref);
      assert.ok(!message.includes(ref), `the message does not echo ${JSON.stringify(ref)}`);
    });
  });

  test("reports a missing host key and a bad ref pattern in one pass", () => {
    const entry: Record<string, unknown> = gitEntry("app", { push: { refs: ["main"] } });
    delete entry["known_host_key"];
    const err = problemsOf(withGit(entry));
    const paths = err.problems.map((p) => formatPath(p.path));
    assert.ok(paths.includes("bottles.dev.git[0].known_host_key"), err.message);
    assert.ok(paths.includes("bottles.dev.git[0].push.refs[0]"), err.message);
  });

  test("refuses unknown fields in push, naming the ones there are", () => {
    const m = withGit(gitEntry("app", { push: { branches: ["main"] } }));
    assert.match(
      problemAt(m, "bottles.dev.git[0].push.branches").message,
      /use one of: refs, force, delete/,
    );
  });

  test("the host check names an HTTPS entry's token variable when it is not set", () => {
    const m = load(
      withGit(httpsEntry("app", { token_env: "GIT_TOKEN" }), httpsEntry("lib")),
    ).select("coder");
    const paths = (env: NodeJS.ProcessEnv) =>
      hostWarnings(m, env, () => true).map((w) => formatPath(w.path));
    assert.ok(paths({}).includes("bottles.dev.git[0].token_env"));
    assert.ok(!paths({ GIT_TOKEN: "x" }).some((p) => p.startsWith("bottles.dev.git")));
  });
});
