import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  allowFlags,
  dialAddress,
  GATEWAY_CIDR,
  reachOf,
  type VmRoute,
} from "../../../../src/backends/smolmachines/route.js";

const gateway: VmRoute = { kind: "gateway", published: new Map([[9099, 41234]]) };
const interceptor: VmRoute = { kind: "interceptor" };

describe("how a VM's flows reach its bundle", () => {
  test("through the interceptor the agent dials the bundle's own ports at its reserved address", () => {
    assert.equal(dialAddress(interceptor, 9099), "192.0.2.1:9099");
    assert.deepEqual(allowFlags(interceptor).slice(0, 2), ["--allow-cidr", "192.0.2.1/32"]);
    assert.ok(!allowFlags(interceptor).includes(GATEWAY_CIDR), "smolvm's gateway is not admitted");
  });

  test("through smolvm's gateway the agent dials the published port by the gateway's name", () => {
    assert.equal(dialAddress(gateway, 9099), "host.smolvm.internal:41234");
    assert.deepEqual(allowFlags(gateway).slice(0, 2), ["--allow-cidr", "100.96.0.1/32"]);
  });

  test("both filter the VM's DNS with an allow-host list", () => {
    for (const route of [gateway, interceptor])
      assert.deepEqual(allowFlags(route).slice(2), ["--allow-host", "host.smolvm.internal"]);
  });

  test("the cage self-test probes each route's own claims", () => {
    const viaGateway = reachOf(gateway, { egress: 9099 }, 9000);
    assert.deepEqual(viaGateway.daemons, { egress: { host: "host.smolvm.internal", port: 41234 } });
    assert.equal(viaGateway.unlisted, undefined, "the gateway re-dials any port: no closed port");
    assert.equal(viaGateway.gatewayClosed, false);

    const viaInterceptor = reachOf(interceptor, { egress: 9099 }, 9000);
    assert.deepEqual(viaInterceptor.daemons, { egress: { host: "192.0.2.1", port: 9099 } });
    assert.equal(viaInterceptor.unlisted?.port, 9000);
    assert.ok(viaInterceptor.unlisted?.holdMs, "an accepted-then-cut flow is told from a service");
    assert.deepEqual(viaInterceptor.unreachable, [
      { name: "smolvm-gateway", host: "100.96.0.1", port: 22 },
    ]);
    assert.equal(viaInterceptor.gatewayClosed, true);
  });
});
