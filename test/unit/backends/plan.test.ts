import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bundleAddress, withBundleAddresses } from "../../../src/backends/plan.js";

const at = (port: number) => `host.smolvm.internal:${port + 40000}`;

describe("bundle addresses a launch fills in", () => {
  test("a bundle address is a placeholder naming the port", () => {
    assert.equal(bundleAddress(9099), "{bundle:9099}");
  });

  test("replaces the placeholder with the address launch found for that port", () => {
    const env = withBundleAddresses({ HTTPS_PROXY: `http://${bundleAddress(9099)}` }, at);
    assert.deepEqual(env, { HTTPS_PROXY: "http://host.smolvm.internal:49099" });
  });

  test("replaces every placeholder in every value, each by its own port", () => {
    const env = withBundleAddresses(
      {
        HTTP_PROXY: "http://{bundle:9099}",
        https_proxy: "http://{bundle:9099}",
        BOTH: "{bundle:9099},{bundle:9100};{bundle:9099}",
      },
      at,
    );
    assert.deepEqual(env, {
      HTTP_PROXY: "http://host.smolvm.internal:49099",
      https_proxy: "http://host.smolvm.internal:49099",
      BOTH: "host.smolvm.internal:49099,host.smolvm.internal:49100;host.smolvm.internal:49099",
    });
  });

  test("leaves other text and other braces alone", () => {
    const env = {
      HOME: "/home/node",
      EMPTY: "",
      JSON: '{"bundle":9099}',
      NOT_A_PORT: "{bundle:egress} {bundle:} {Bundle:9099} {bundle 9099}",
      TEMPLATE: "${HOME}/{x}",
    };
    const seen: number[] = [];
    assert.deepEqual(
      withBundleAddresses(env, (p) => {
        seen.push(p);
        return "X";
      }),
      env,
    );
    assert.deepEqual(seen, [], "no address is asked for when there is no placeholder");
  });

  test("returns a new record and leaves the plan's own untouched", () => {
    const env = { HTTP_PROXY: "http://{bundle:9099}" };
    const filled = withBundleAddresses(env, at);
    assert.notEqual(filled, env);
    assert.equal(env.HTTP_PROXY, "http://{bundle:9099}");
  });
});
