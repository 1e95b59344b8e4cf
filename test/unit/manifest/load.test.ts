import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatPath } from "../../../src/manifest/problems.js";
import {
  example,
  EXAMPLE_TEXT,
  gitEntry,
  load,
  NO_PLUGINS,
  problemsOf,
} from "../../helpers/manifest.js";

/** The one problem reported at `path`, failing when there is none. */
function problemAt(data: unknown, path: string) {
  const err = problemsOf(data);
  const found = err.problems.find((p) => formatPath(p.path) === path);
  assert.ok(found, `expected a problem at ${path}; got:\n${err.message}`);
  return { problem: found, err };
}

function withRoute(route: Record<string, unknown>) {
  const m = example();
  m.bottles.dev.egress.routes = [route];
  return m;
}

describe("manifest loading", () => {
  test("accepts the example manifest, comments and all", () => {
    const index = load(EXAMPLE_TEXT);
    assert.deepEqual(index.agentNames, ["coder", "probe"]);
    assert.deepEqual(index.bottleNames, ["dev", "sandbox"]);
  });

  test("fills defaults the schema declares", () => {
    const index = load({ agents: { a: { template: "shell", bottle: "b" } }, bottles: { b: {} } });
    const bottle = index.data.bottles["b"];
    assert.deepEqual(bottle?.egress.routes, []);
    assert.deepEqual(bottle?.supervise, {
      wait_seconds: 120,
      timeout_seconds: 3600,
      rate_per_minute: 10,
    });
    assert.equal(index.data.agents["a"]?.forward_host_credentials, false);
  });

  test("refuses an unknown key and suggests the field meant", () => {
    const m = example();
    m.bottles.dev.egres = {};
    const { problem } = problemAt(m, "bottles.dev.egres");
    assert.match(problem.message, /not a field here/);
    assert.match(problem.message, /did you mean "egress"/);
  });

  test("refuses an unknown key at the top level and inside a route", () => {
    const m = example();
    m.version = 2;
    m.bottles.dev.egress.routes[0].token = "x";
    problemAt(m, "version");
    problemAt(m, "bottles.dev.egress.routes[0].token");
  });

  test("refuses an agent that names a missing bottle, listing the bottles there are", () => {
    const m = example();
    m.agents.coder.bottle = "prod";
    const { problem } = problemAt(m, "agents.coder.bottle");
    assert.match(problem.message, /not under "bottles"/);
    assert.match(problem.message, /"dev"/);
  });

  test("reports a missing bottle even when other fields are wrong too", () => {
    const m = example();
    m.agents.coder.bottle = "prod";
    m.bottles.dev.supervise = "yes";
    const err = problemsOf(m);
    const paths = err.problems.map((p) => formatPath(p.path));
    assert.ok(paths.includes("agents.coder.bottle"), err.message);
    assert.ok(paths.includes("bottles.dev.supervise"), err.message);
  });

  test("refuses duplicate git names in one bottle", () => {
    const m = example();
    m.bottles.dev.git = [gitEntry("app"), gitEntry("lib"), gitEntry("app")];
    const { problem } = problemAt(m, "bottles.dev.git[2].name");
    assert.match(problem.message, /repeats the name of git\[0\]/);
  });

  test("refuses two git entries mapping one host to different addresses, naming both", () => {
    const m = example();
    m.bottles.dev.git = [
      gitEntry("app", { extra_hosts: { "git.corp.example": "10.0.0.5" } }),
      gitEntry("lib", { extra_hosts: { "GIT.corp.example.": "10.0.0.6" } }),
    ];
    const { problem } = problemAt(m, 'bottles.dev.git[1].extra_hosts["GIT.corp.example."]');
    assert.match(problem.message, /git\[0\]/);
    assert.match(problem.message, /git\[1\]/);
  });

  test("accepts two git entries mapping one host to the same address", () => {
    const m = example();
    m.bottles.dev.git = [
      gitEntry("app", { extra_hosts: { "git.corp.example": "10.0.0.5" } }),
      gitEntry("lib", { extra_hosts: { "git.corp.example": "10.0.0.5" } }),
    ];
    assert.doesNotThrow(() => load(m));
  });

  for (const host of ["*.com", "*", "*.uk", "*."]) {
    test(`refuses the over-broad wildcard ${JSON.stringify(host)}`, () => {
      const { problem } = problemAt(withRoute({ host }), "bottles.dev.egress.routes[0].host");
      assert.match(problem.message, /wildcard|not a valid/);
    });
  }

  test("accepts a wildcard over a name of two labels", () => {
    assert.doesNotThrow(() => load(withRoute({ host: "*.githubusercontent.com" })));
  });

  for (const [host, why] of [
    ["https://api.example.com", /scheme/],
    ["api.example.com/v1", /path/],
    ["api.example.com:8443", /port/],
    ["api.*.example.com", /only as the whole first label/],
    ["exa mple.com", /white space/],
    ["bad_host-.com-", /not a valid DNS host name/],
  ] as const) {
    test(`refuses the route host ${JSON.stringify(host)} with a reason`, () => {
      const { problem } = problemAt(withRoute({ host }), "bottles.dev.egress.routes[0].host");
      assert.match(problem.message, why);
    });
  }

  for (const host of ["10.1.2.3", "::1", "[2001:db8::1]"]) {
    test(`refuses the IP literal ${host} unless the route allows it`, () => {
      const { problem } = problemAt(withRoute({ host }), "bottles.dev.egress.routes[0].host");
      assert.match(problem.message, /allow_ip_literal/);
      assert.doesNotThrow(() => load(withRoute({ host, allow_ip_literal: true })));
    });
  }

  test("accepts an internationalised host name", () => {
    assert.doesNotThrow(() => load(withRoute({ host: "bücher.example" })));
  });

  test("refuses a path prefix that does not start with /", () => {
    problemAt(
      withRoute({ host: "a.example.com", paths: ["v1/"] }),
      "bottles.dev.egress.routes[0].paths[0]",
    );
  });

  test("refuses a lower-case method, listing the methods", () => {
    const { problem } = problemAt(
      withRoute({ host: "a.example.com", methods: ["get"] }),
      "bottles.dev.egress.routes[0].methods[0]",
    );
    assert.match(problem.message, /"GET"/);
  });

  test("refuses auth on a TLS passthrough route", () => {
    const route = { host: "a.example.com", tls_passthrough: true, auth: { token_env: "A_TOKEN" } };
    const { problem } = problemAt(withRoute(route), "bottles.dev.egress.routes[0].auth");
    assert.match(problem.message, /tls_passthrough/);
  });

  for (const bad of [
    "1TOKEN",
    "MY-TOKEN",
    "my token",
    "",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "sk-ant-api03-abc",
  ]) {
    test(`refuses token_env ${JSON.stringify(bad)}, which is not a variable name`, () => {
      const { problem, err } = problemAt(
        withRoute({ host: "a.example.com", auth: { token_env: bad } }),
        "bottles.dev.egress.routes[0].auth.token_env",
      );
      assert.match(problem.message, /name of an environment variable/);
      if (bad.length > 3) assert.ok(!err.message.includes(bad), "the value must not be echoed");
    });
  }

  test("refuses a gitea provisioner_token_env that is not a variable name", () => {
    const m = example();
    m.bottles.dev.git = [
      gitEntry("app", {
        key: {
          provider: "gitea",
          api_url: "https://gitea.example.com",
          repo: "team/app",
          provisioner_token_env: "gitea token",
        },
      }),
    ];
    const { problem } = problemAt(m, "bottles.dev.git[0].key.provisioner_token_env");
    assert.match(problem.message, /name of an environment variable/);
  });

  test("accepts a gitea key, and refuses an unknown key provider with the choices", () => {
    const m = example();
    m.bottles.dev.git = [
      gitEntry("app", {
        key: {
          provider: "gitea",
          api_url: "https://gitea.example.com",
          repo: "team/app",
          provisioner_token_env: "GITEA_TOKEN",
        },
      }),
    ];
    assert.doesNotThrow(() => load(m));
    m.bottles.dev.git[0].key = { provider: "vault", path: "x" };
    const { problem } = problemAt(m, "bottles.dev.git[0].key.provider");
    assert.match(problem.message, /"static", "gitea"/);
  });

  test("refuses an unknown template and suggests the closest built-in", () => {
    const m = example();
    m.agents.coder.template = "claud";
    const { problem } = problemAt(m, "agents.coder.template");
    assert.match(problem.message, /not a known template/);
    assert.match(problem.message, /did you mean "claude"/);
  });

  test("accepts a template that names an installed plugin", () => {
    const m = example();
    m.agents.coder.template = "aider";
    assert.throws(() => load(m));
    assert.doesNotThrow(() => load(m, { ...NO_PLUGINS, plugins: ["aider"] }));
  });

  test("refuses agent and bottle names that cannot become container names, without printing them", () => {
    const m = example();
    m.agents["Bad Name!"] = m.agents.probe;
    const err = problemsOf(JSON.stringify(m, null, 2));
    const problem = err.problems.find((p) => formatPath(p.path) === "agents.<key>");
    assert.ok(problem, err.message);
    assert.match(problem.message, /lower-case/);
    assert.ok(!err.message.includes("Bad Name!"));
    const text = JSON.stringify(m, null, 2);
    assert.equal(problem.line, text.split("\n").findIndex((l) => l.includes('"Bad Name!"')) + 1);
  });

  test("refuses plain http upstreams and malformed host keys", () => {
    const m = example();
    m.bottles.dev.git = [
      gitEntry("app", { upstream: "http://github.com/example/app.git" }),
      gitEntry("lib", {
        known_host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoq",
      }),
      gitEntry("cli", { known_host_key: "-----BEGIN OPENSSH PRIVATE KEY-----" }),
    ];
    assert.match(problemAt(m, "bottles.dev.git[0].upstream").problem.message, /plain http:\/\//);
    assert.match(problemAt(m, "bottles.dev.git[1].known_host_key").problem.message, /truncated/);
    const priv = problemAt(m, "bottles.dev.git[2].known_host_key");
    assert.match(priv.problem.message, /private key/);
    assert.ok(!priv.err.message.includes("BEGIN OPENSSH"));
  });

  test("names a missing required field and says what it is for", () => {
    const m = example();
    delete m.agents.coder.template;
    const { problem } = problemAt(m, "agents.coder.template");
    assert.match(problem.message, /^is missing — What runs in the bottle/);
  });

  test("names a wrong type and the type wanted", () => {
    const m = example();
    m.bottles.dev.supervise = "yes";
    assert.match(problemAt(m, "bottles.dev.supervise").problem.message, /must be true or false/);
  });

  test("refuses duplicate keys, which JSON would silently collapse", () => {
    const text =
      '{ "agents": {}, "bottles": { "dev": { "supervise": true, "supervise": false } } }';
    const { problems } = problemsOf(text);
    assert.equal(formatPath(problems[0]?.path ?? []), "bottles.dev.supervise");
    assert.match(problems[0]?.message ?? "", /appears twice/);
  });

  test("points at the line and column of a syntax error", () => {
    const text =
      '{\n  "agents": {},\n  "bottles": { "dev": { "supervise": true } }\n  "extra": 1\n}';
    const { problems, message } = problemsOf(text);
    assert.equal(problems[0]?.line, 4);
    assert.match(message, /expects "," between two fields/);
  });

  test("points each problem at its line in the file", () => {
    const m = example();
    m.bottles.dev.supervise = "yes";
    const text = JSON.stringify(m, null, 2);
    const line = text.split("\n").findIndex((l) => l.includes('"supervise"')) + 1;
    const { problems } = problemsOf(text);
    assert.equal(problems[0]?.line, line);
  });

  test("shows at most five problems and counts the rest", () => {
    const m = example();
    m.bottles.dev.egress.routes = Array.from({ length: 8 }, () => ({ host: "*" }));
    const err = problemsOf(m);
    assert.equal(err.problems.length, 8);
    assert.equal(err.message.split("\n").filter((l) => l.includes("routes[")).length, 5);
    assert.match(err.message, /…and 3 more/);
  });

  test("does not spell out an unknown key that looks like a pasted token", () => {
    const m = example();
    m.bottles.dev.egress["ghp_0123456789abcdefghijABCDEFGHIJ012345"] = true;
    const err = problemsOf(m);
    assert.match(err.message, /bottles\.dev\.egress\.<key> is not a field here/);
    assert.ok(!err.message.includes("ghp_0123"));
  });

  test("never echoes a value from the file in any message", () => {
    const secret = "sk-ant-api03-SECRETSECRETSECRET";
    const m = example();
    m.agents.coder.template = secret;
    m.agents.coder.bottle = secret;
    m.bottles.dev.egress.routes = [
      { host: secret, auth: { token_env: secret, header: secret, scheme: `Bearer ${secret}` } },
    ];
    m.bottles.dev.egress.extra_hosts = { "a.example.com": secret };
    m.bottles.dev.git = [
      gitEntry("app", {
        upstream: secret,
        known_host_key: secret,
        key: { provider: "gitea", api_url: secret, repo: secret, provisioner_token_env: secret },
      }),
    ];
    const err = problemsOf(m);
    assert.ok(err.problems.length >= 8, err.message);
    assert.ok(!err.message.includes("SECRETSECRET"), err.message);
  });
});
