import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { describeGrant, grantProblem, grantRule } from "../../../src/lifecycle/grants.js";

const request = (extra: Record<string, unknown> = {}) => ({
  kind: "egress-route" as const,
  host: "docs.example.com",
  reason: "docs",
  ...extra,
});

describe("a granted route", () => {
  test("becomes a rule with no credential, marked with its request and lease", () => {
    assert.deepEqual(
      grantRule(
        "r-0123456789",
        request({ methods: ["GET"], paths: ["/v1/"] }),
        "2026-12-07T05:00:00.000Z",
      ),
      {
        host: "docs.example.com",
        paths: ["/v1/"],
        methods: ["GET"],
        tlsPassthrough: false,
        allowIpLiteral: false,
        grant: "r-0123456789",
        expires: "2026-12-07T05:00:00.000Z",
      },
    );
    assert.equal(
      describeGrant(request({ port: 8443 })),
      "docs.example.com:8443 any method any path",
    );
  });

  test("is checked again on the host: what the manifest would refuse is not granted", () => {
    assert.equal(grantProblem(request()), undefined);
    for (const bad of [
      request({ host: "10.0.0.1" }),
      request({ host: "*.com" }),
      request({ host: "docs.example.com/x" }),
      request({ paths: ["/a/../b/"] }),
      request({ methods: ["TRACE"] }),
    ])
      assert.ok(grantProblem(bad), JSON.stringify(bad));
  });
});
