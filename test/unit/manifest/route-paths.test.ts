import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatPath } from "../../../src/manifest/problems.js";
import { checkPathPrefix } from "../../../src/manifest/rules.js";
import { example, load, problemsOf } from "../../helpers/manifest.js";

function withPaths(paths: string[]) {
  const m = example();
  m.bottles.dev.egress.routes = [{ host: "api.example.com", paths }];
  return m;
}

describe("route path prefixes", () => {
  for (const ok of ["/", "/v1", "/v1/", "/repos/owner/name/", "/.well-known/", "/a-b_c~d/@x:y/"])
    test(`accepts ${JSON.stringify(ok)}`, () => {
      assert.equal(checkPathPrefix(ok), undefined);
      assert.doesNotThrow(() => load(withPaths([ok])));
    });

  for (const [bad, why] of [
    ["v1/", /starting with "\/"/],
    ["/v1/?x=1", /query/],
    ["/v1/#x", /fragment/],
    ["/v 1/", /spaces/],
    ["/v1/%2e%2e/", /percent-escapes/],
    ["/%76%31/", /percent-escapes/],
    ["/v1;x/", /";"/],
    ["/v1\\admin", /"\\"/],
    ["/v1/../admin/", /"\.\." segments/],
    ["/v1/./", /"\.\." segments/],
    ["/v1/..", /"\.\." segments/],
    ["/v1//x", /empty segment/],
    ["/café/", /only ASCII/],
    ["/v1/{id}", /only ASCII/],
  ] as const)
    test(`refuses ${JSON.stringify(bad)}, naming the field`, () => {
      assert.match(checkPathPrefix(bad) ?? "", why);
      const err = problemsOf(withPaths(["/ok/", bad]));
      const found = err.problems.find(
        (p) => formatPath(p.path) === "bottles.dev.egress.routes[0].paths[1]",
      );
      assert.ok(found, err.message);
      assert.match(found.message, why);
    });
});
