import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AuditRecord } from "../../../src/shared/egress-config.js";
import { parseAudit, renderAudit } from "../../../src/state/audit.js";

const base: AuditRecord = {
  time: "2026-11-25T04:47:31.516Z",
  kind: "https",
  method: "POST",
  host: "api.anthropic.com",
  port: 443,
  path: "/v1/messages",
  decision: "allow",
  tag: "allowed",
  route: "api.anthropic.com",
  status: 200,
  bytesOut: 1200,
  bytesIn: 34_000,
  ms: 41.2,
};

describe("the egress audit log", () => {
  test("parses JSON lines and skips what is not a record", () => {
    const text = [
      JSON.stringify(base),
      "not json",
      "{}",
      JSON.stringify({ ...base, decision: "refuse" }),
      "",
    ].join("\n");
    assert.deepEqual(
      parseAudit(text).map((r) => r.decision),
      ["allow", "refuse"],
    );
  });

  test("renders a line per decision for people", () => {
    assert.equal(
      renderAudit(base),
      "04:47:31.516 allow  POST    api.anthropic.com/v1/messages 200 ↑1200B ↓34kB 41.2ms",
    );
    const refused = renderAudit({
      ...base,
      kind: "connect",
      method: "CONNECT",
      host: "evil.test",
      port: 8443,
      path: "",
      decision: "refuse",
      tag: "not-in-routes",
      reason: 'bot-bottle: host "evil.test" is not in this bottle\'s routes',
    });
    assert.equal(
      refused,
      '04:47:31.516 refuse CONNECT evil.test:8443  [not-in-routes] bot-bottle: host "evil.test" is not in this bottle\'s routes',
    );
  });
});
