import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  describeRequest,
  decidedResult,
  formatLease,
  pendingResult,
} from "../../../src/sidecars/supervise/results.js";
import {
  checkEgressRoute,
  checkGitRepo,
  checkInput,
  checkQuestion,
  existingRoute,
  isPublicSuffix,
  mixedScript,
  type CheckContext,
  type Checked,
} from "../../../src/sidecars/supervise/validate.js";

const ctx: CheckContext = {
  reservedHosts: [
    "egress",
    "git-gate",
    "supervise",
    "bundle",
    "localhost",
    "host.docker.internal",
    "gateway.docker.internal",
  ],
  routes: ["api.github.com", "*.googleapis.com", "registry.example.com:8443"],
  gitUpstreams: ["git@github.com:acme/app.git"],
};

const route = (host: string, more: Record<string, unknown> = {}) =>
  checkEgressRoute({ host, reason: "the build needs it", ...more }, ctx);

function refusedWith(checked: Checked, pattern: RegExp, what: string): void {
  assert.equal(checked.ok, false, `${what} should be refused`);
  if (!checked.ok) assert.match(checked.reason, pattern, what);
}

function allowed(checked: Checked, what: string): Extract<Checked, { ok: true }> {
  assert.ok(checked.ok, `${what} should pass: ${checked.ok ? "" : checked.reason}`);
  return checked;
}

describe("supervise: what an egress route request may ask for", () => {
  // Each refused host after the allowed twin that proves the check is not refusing everything.
  const cases: [allowedTwin: string, refused: string, reason: RegExp][] = [
    ["*.example.com", "*.com", /wildcard over a public suffix \(com\)/],
    ["*.example.co.uk", "*.co.uk", /wildcard over a public suffix \(co\.uk\)/],
    ["*.example.com.au", "*.com.au", /public suffix \(com\.au\)/],
    ["acme.github.io", "*.github.io", /public suffix \(github\.io\)/],
    ["ten.example.com", "10.0.0.1", /IP address/],
    ["ten.example.com", "[::1]", /IP address/],
    ["ten.example.com", "::ffff:127.0.0.1", /IP address/],
    ["metadata.example.com", "169.254.169.254", /IP address/],
    ["metadata.example.com", "metadata.google.internal", /local or internal name \(\.internal\)/],
    ["example.com", "localhost", /local or internal name \(\.localhost\)/],
    ["foo.example.com", "foo.localhost", /local or internal name \(\.localhost\)/],
    ["foo.example.com", "FOO.LOCALHOST.", /local or internal name \(\.localhost\)/],
    ["printer.example.com", "printer.local", /\(\.local\)/],
    ["docker.example.com", "host.docker.internal", /\(\.internal\)/],
    ["docker.example.com", "gateway.docker.internal", /\(\.internal\)/],
    ["docker.example.com", "*.internal", /\(\.internal\)/],
    ["egress.example.com", "egress", /bundle's own names/],
    ["supervise.example.com", "supervise", /bundle's own names/],
    ["supervise.example.com", "api.supervise", /bundle's own names/],
    ["wiki.example.com", "wiki", /single-label name/],
    ["api.gitlab.com", "api.github.com", /^already allowed/],
    ["api.gitlab.com", "API.GitHub.com.", /^already allowed/],
    ["storage.example.com", "storage.googleapis.com", /^already allowed/],
    ["*.example.com", "*.googleapis.com", /^already allowed/],
    ["api.example.com", "api.example.com:443", /includes a port/],
    ["api.example.com", "https://api.example.com", /includes a scheme/],
    ["api.example.com", "user@api.example.com", /user information/],
    ["api.example.com", "*", /every host/],
    ["api.example.com", "0x7f.1", /not a valid DNS host name/],
    ["api.example.com", "co.uk", /public suffix \(co\.uk\), not a site/],
  ];
  for (const [twin, host, reason] of cases)
    test(`refuses ${host} (allows ${twin})`, () => {
      allowed(route(twin), twin);
      refusedWith(route(host), reason, host);
    });

  test("hosts are normalised as manifest route hosts are: lower case, no trailing dot, IDNA", () => {
    assert.deepEqual(allowed(route("API.Example.COM."), "upper case").body, {
      kind: "egress-route",
      host: "api.example.com",
      reason: "the build needs it",
    });
    assert.equal(
      (allowed(route("*.Bücher.example"), "IDN").body as { host: string }).host,
      "*.xn--bcher-kva.example",
    );
  });

  test("a port the bottle has for the host is already allowed; another port is not", () => {
    allowed(route("api.github.com", { port: 8443 }), "another port");
    refusedWith(route("api.github.com", { port: 443 }), /^already allowed/, "443");
    refusedWith(route("registry.example.com", { port: 8443 }), /^already allowed/, "8443");
    allowed(route("registry.example.com"), "a route for 8443 only does not cover 443");
  });

  test("paths must be plain prefixes starting with /, as in the manifest", () => {
    const ok = allowed(route("api.example.com", { paths: ["/v1/", "/v1/"] }), "/v1/");
    assert.deepEqual((ok.body as { paths: string[] }).paths, ["/v1/"]);
    refusedWith(route("api.example.com", { paths: ["v1/"] }), /paths\[0\] must be a path/, "v1/");
    refusedWith(route("api.example.com", { paths: ["/a/../admin"] }), /"\.\." segments/, "..");
    refusedWith(route("api.example.com", { paths: ["/a%2f"] }), /percent-escapes/, "%");
    refusedWith(route("api.example.com", { paths: ["/a?token=x"] }), /query/, "?");
    refusedWith(route("api.example.com", { paths: [] }), /paths must have at least one/, "[]");
  });

  test("methods are upper-case HTTP methods, each once", () => {
    const ok = allowed(route("api.example.com", { methods: ["GET", "POST", "GET"] }), "GET");
    assert.deepEqual((ok.body as { methods: string[] }).methods, ["GET", "POST"]);
    refusedWith(
      route("api.example.com", { methods: ["get"] }),
      /methods\[0\] must be one of/,
      "get",
    );
    refusedWith(route("api.example.com", { methods: ["CONNECT"] }), /must be one of/, "CONNECT");
  });

  test("ports are whole numbers from 1 to 65535", () => {
    allowed(route("api.example.com", { port: 8443 }), "8443");
    refusedWith(route("api.example.com", { port: 0 }), /port must be at least 1/, "0");
    refusedWith(route("api.example.com", { port: 70000 }), /port must be at most 65535/, "70000");
    refusedWith(route("api.example.com", { port: "443" }), /port must be a number/, '"443"');
  });

  test("a request carries no credential and no field the tool does not take", () => {
    allowed(route("api.example.com"), "plain");
    for (const field of ["authorization", "token", "headers", "api_key", "apiKey", "cookie"])
      refusedWith(
        route("api.example.com", { [field]: "Bearer sk-live-123" }),
        /never carries a credential/,
        field,
      );
    refusedWith(route("api.example.com", { note: "x" }), /note is not a field/, "note");
    const long = checkEgressRoute(
      { host: "api.example.com", reason: "r", ["x".repeat(500)]: 1 },
      ctx,
    );
    assert.ok(!long.ok && long.reason.length < 300, "a long field name is not echoed whole");
  });

  test("reasons are text for a person: not empty, not over 2000 characters", () => {
    allowed(route("api.example.com", { reason: "r".repeat(2000) }), "2000");
    refusedWith(route("api.example.com", { reason: "r".repeat(2001) }), /at most 2000/, "2001");
    refusedWith(route("api.example.com", { reason: "  \n " }), /reason is empty/, "blank");
    refusedWith(checkEgressRoute({ host: "api.example.com" }, ctx), /reason is missing/, "none");
  });

  test("a mixed-script host is flagged for the operator, not refused", () => {
    assert.deepEqual(allowed(route("example.com"), "latin").flags, []);
    assert.deepEqual(allowed(route("\u0430pple.com"), "cyrillic a").flags, [
      "mixed-script host name",
    ]);
    assert.deepEqual(allowed(route("xn--pple-43d.com"), "punycode").flags, [
      "mixed-script host name",
    ]);
    assert.equal(mixedScript("xn--e1afmkfd.xn--p1ai"), false, "пример.рф is all Cyrillic");
    assert.equal(mixedScript("xn--bcher-kva.example"), false, "bücher is Latin");
    assert.equal(mixedScript("xn--wgv71a119e.jp"), false, "日本語.jp: Han with Latin");
  });
});

describe("supervise: what a git repository request may ask for", () => {
  const repo = (upstream: string, more: Record<string, unknown> = {}) =>
    checkGitRepo({ upstream, reason: "the task needs it", ...more }, ctx);

  test("SSH and HTTPS URLs pass; the stored request keeps the URL as given", () => {
    assert.deepEqual(allowed(repo("git@github.com:acme/other.git"), "scp").body, {
      kind: "git-repo",
      upstream: "git@github.com:acme/other.git",
      reason: "the task needs it",
    });
    allowed(repo("ssh://git@git.example.com:2222/team/x.git"), "ssh://");
    allowed(repo("https://gitlab.com/acme/x.git"), "https");
  });

  const cases: [allowedTwin: string, refused: string, reason: RegExp][] = [
    ["git@github.com:acme/other.git", "git@github.com:acme/app.git", /^already allowed/],
    ["https://github.com/acme/other", "https://github.com/acme/app", /^already allowed/],
    ["https://github.com/acme/x.git", "http://github.com/acme/x.git", /plain http:\/\//],
    ["https://github.com/acme/x.git", "https://u:p@github.com/acme/x.git", /credentials/],
    ["git@github.com:acme/x.git", "file:///srv/x.git", /transport/],
    ["git@git.example.com:x.git", "git@10.0.0.5:x.git", /IP address/],
    ["git@git.example.com:x.git", "git@localhost:x.git", /\(\.localhost\)/],
    ["git@git.example.com:x.git", "git@git-gate:x.git", /bundle's own names/],
    ["git@git.example.com:x.git", "git@gitserver:x.git", /single-label/],
    ["git@git.example.com:x.git", "not a url", /not an SSH or HTTPS URL/],
  ];
  for (const [twin, upstream, reason] of cases)
    test(`refuses ${upstream} (allows ${twin})`, () => {
      allowed(repo(twin), twin);
      refusedWith(repo(upstream), reason, upstream);
    });

  test("a key or token field is refused: the operator supplies the key", () => {
    allowed(repo("git@github.com:acme/x.git"), "plain");
    refusedWith(repo("git@github.com:acme/x.git", { ssh_key: "-----BEGIN" }), /credential/, "key");
    refusedWith(repo("git@github.com:acme/x.git", { token: "ghp_x" }), /credential/, "token");
  });
});

describe("supervise: questions and status", () => {
  test("a question is free text up to 2000 characters", () => {
    allowed(checkQuestion({ question: "Which branch should I use?" }), "question");
    refusedWith(checkQuestion({ question: "" }), /question must not be empty/, "empty");
    refusedWith(checkQuestion({ question: "q".repeat(2001) }), /at most 2000/, "long");
    refusedWith(checkQuestion({ question: "q", urgent: true }), /urgent is not a field/, "extra");
  });

  test("a status query takes a request id and nothing else", () => {
    assert.ok(checkInput("request_status", { id: "r-7k2m9x4p0q" }).ok);
    const bad = checkInput("request_status", { id: "7k2m9x4p0q" });
    assert.ok(!bad.ok && /id must be a request id/.test(bad.reason));
  });
});

describe("supervise: the pieces the checks are made of", () => {
  test("public suffixes: every top-level domain and the listed second levels", () => {
    for (const s of ["com", "uk", "co.uk", "com.au", "github.io", "s3.amazonaws.com"])
      assert.ok(isPublicSuffix(s), s);
    for (const s of ["example.com", "example.co.uk", "acme.github.io"])
      assert.ok(!isPublicSuffix(s), s);
  });

  test("an existing route covers its host, a wildcard its subdomains, by port", () => {
    const routes = ["api.github.com", "*.example.com", "x.test:8080"];
    assert.equal(existingRoute(routes, "api.github.com", undefined), "api.github.com");
    assert.equal(existingRoute(routes, "api.github.com", 80), "api.github.com");
    assert.equal(existingRoute(routes, "api.github.com", 8443), undefined);
    assert.equal(existingRoute(routes, "a.b.example.com", undefined), "*.example.com");
    assert.equal(existingRoute(routes, "*.b.example.com", undefined), "*.example.com");
    assert.equal(existingRoute(routes, "example.com", undefined), undefined);
    assert.equal(existingRoute(routes, "x.test", 8080), "x.test:8080");
    assert.equal(existingRoute(routes, "x.test", undefined), undefined);
  });

  test("results are one line the model can act on", () => {
    const body = {
      kind: "egress-route" as const,
      host: "api.example.com",
      methods: ["GET"],
      paths: ["/v1/"],
      reason: "r",
    };
    assert.equal(describeRequest(body), "api.example.com GET /v1/");
    assert.equal(
      pendingResult("r-0123456789"),
      "pending: request r-0123456789 waits for the operator; call request_status with id r-0123456789 later",
    );
    const base = {
      time: "2026-01-01T00:00:00.000Z",
      event: "decided" as const,
      id: "r-0123456789",
    };
    assert.equal(
      decidedResult(
        { ...base, outcome: "approved", by: "operator", until: "2026-01-01T01:00:00.000Z" },
        body,
      ),
      "approved for 1h: api.example.com GET /v1/",
    );
    assert.equal(
      decidedResult(
        { ...base, outcome: "approved", by: "operator", applied: "api.example.com GET" },
        body,
      ),
      "approved: api.example.com GET",
    );
    assert.equal(
      decidedResult({ ...base, outcome: "denied", by: "operator", reason: "not today" }, body),
      "denied: not today",
    );
    assert.equal(
      decidedResult({ ...base, outcome: "denied", by: "timeout" }, body),
      "denied (timeout)",
    );
    assert.equal(
      decidedResult({ ...base, outcome: "denied", by: "restart" }, body),
      "denied (restart)",
    );
    assert.equal(formatLease(5400), "1h30m");
    assert.equal(formatLease(3599.8), "1h");
  });
});
