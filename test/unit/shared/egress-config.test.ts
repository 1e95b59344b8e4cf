import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigFileError, formatJsonPath } from "../../../src/shared/config-file.js";
import {
  parseAuditRecord,
  parseEgressConfig,
  type AuditRecord,
  type EgressConfig,
} from "../../../src/shared/egress-config.js";

const FILE = "/state/dev-1/bundle/egress.json";
/** Looks like a token; must never appear in an error message. */
const SECRET = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

const valid: EgressConfig = {
  slug: "dev-7k2m9x",
  generation: 2,
  secretEnv: ["ANTHROPIC_API_KEY"],
  routes: [
    {
      host: "api.anthropic.com",
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "x-api-key", tokenEnv: "ANTHROPIC_API_KEY" },
    },
    {
      host: "*.example.com",
      port: 8443,
      paths: ["/v1/"],
      methods: ["GET", "HEAD"],
      tlsPassthrough: false,
      allowIpLiteral: false,
      auth: { header: "authorization", scheme: "Bearer", tokenEnv: "ANTHROPIC_API_KEY" },
    },
    { host: "203.0.113.7", tlsPassthrough: true, allowIpLiteral: true },
  ],
  extraHosts: { "build.internal": "10.0.0.7" },
  trustCaFile: "/etc/bot-bottle/trust-ca.pem",
};

/** The error parsing `data` as egress.json throws. */
function refusal(data: unknown): ConfigFileError {
  try {
    parseEgressConfig(typeof data === "string" ? data : JSON.stringify(data), FILE);
  } catch (err) {
    assert.ok(err instanceof ConfigFileError, `expected a ConfigFileError, got ${String(err)}`);
    assert.ok(!err.message.includes(SECRET), `the message echoes a value: ${err.message}`);
    assert.ok(err.message.startsWith(`${FILE} is not a valid egress config: `), err.message);
    return err;
  }
  throw new Error("expected the config to be refused, but it parsed");
}

const paths = (err: ConfigFileError) => err.problems.map((p) => p.path);

function without(value: object, key: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...value };
  delete copy[key];
  return copy;
}

describe("the egress config, parsed on both sides of the bundle", () => {
  test("a config with every field parses to the same value", () => {
    assert.deepEqual(parseEgressConfig(JSON.stringify(valid), FILE), valid);
  });

  test("refuses an unknown key, naming its path and not its value", () => {
    const err = refusal({
      ...valid,
      routes: [{ ...valid.routes[0], token: SECRET }],
    });
    assert.deepEqual(paths(err), ["routes[0].token"]);
    assert.match(err.message, /routes\[0\]\.token is not a known field/);
  });

  test("refuses a wrong type, naming its path and not its value", () => {
    const err = refusal({ ...valid, extraHosts: { "build.internal": 7 }, generation: SECRET });
    assert.deepEqual(paths(err), ["generation", 'extraHosts["build.internal"]']);
    assert.match(err.message, /generation must be a number/);
    assert.match(err.message, /extraHosts\["build\.internal"\] must be a string/);
  });

  test("refuses a missing field, naming its path", () => {
    const err = refusal({
      ...without(valid, "routes"),
      secretEnv: ["A", SECRET.replace("ghp_", "ghp-")],
    });
    assert.deepEqual(paths(err), ["secretEnv[1]", "routes"]);
    assert.match(err.message, /routes is missing/);
  });

  test("refuses values the proxy could not enforce: a bad port, method or header", () => {
    const err = refusal({
      ...valid,
      routes: [
        {
          ...valid.routes[1],
          port: 70000,
          paths: ["v1/"],
          methods: ["get"],
          auth: { header: "X Api", tokenEnv: `TOKEN=${SECRET}` },
        },
      ],
    });
    assert.deepEqual(paths(err), [
      "routes[0].port",
      "routes[0].paths[0]",
      "routes[0].methods[0]",
      "routes[0].auth.header",
      "routes[0].auth.tokenEnv",
    ]);
  });

  test("refuses text that is not JSON without quoting it", () => {
    const err = refusal(`{"slug": ${SECRET}}`);
    assert.deepEqual(paths(err), ["(top level)"]);
    assert.match(err.message, /is not JSON/);
  });

  test("shows the first five problems and counts the rest", () => {
    const err = refusal({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7 });
    assert.ok(err.problems.length > 5);
    assert.match(err.message, new RegExp(`…and ${err.problems.length - 5} more$`));
  });

  test("never spells out a key that looks like a credential", () => {
    assert.equal(formatJsonPath(["extraHosts", SECRET]), "extraHosts[<key>]");
    const err = refusal({ ...valid, [SECRET]: true });
    assert.deepEqual(paths(err), ["[<key>]"]);
  });
});

describe("the egress audit record", () => {
  const record: AuditRecord = {
    time: "2026-11-25T04:47:31.516Z",
    kind: "connect",
    method: "CONNECT",
    host: "",
    port: 0,
    path: "",
    decision: "refuse",
    tag: "tls-handshake-failed",
    reason: "bot-bottle: the TLS handshake with the agent failed",
    status: 403,
    bytesOut: 0,
    bytesIn: 0,
    ms: 0.4,
  };

  test("a record as the proxy writes it parses, an unrecognised target included", () => {
    assert.deepEqual(parseAuditRecord(JSON.stringify(record), "egress.jsonl"), record);
  });

  test("refuses an unknown key, a wrong type and a missing field, with their paths", () => {
    try {
      parseAuditRecord(
        JSON.stringify({ ...without(record, "tag"), kind: "ftp", bytesIn: SECRET, secret: SECRET }),
        "egress.jsonl",
      );
      assert.fail("expected the record to be refused");
    } catch (err) {
      assert.ok(err instanceof ConfigFileError);
      assert.ok(!err.message.includes(SECRET), err.message);
      assert.deepEqual(
        err.problems.map((p) => p.path),
        ["kind", "tag", "bytesIn", "secret"],
      );
    }
  });
});
