/**
 * How a VM's flows reach its bundle. Two ways, by what the installed smolvm can do:
 *
 * - "interceptor" (smolvm with `start --egress-interceptor`): the VM's allow-list admits only a
 *   reserved address the bundle stands for (BUNDLE_VM_ADDRESS), and smolvm hands every admitted
 *   flow to the bundle's intercept daemon, which relays the bundle's own ports and refuses the
 *   rest. smolvm's gateway is not admitted: the host's loopback is out of the agent's reach.
 * - "gateway" (older smolvm): the allow-list admits smolvm's gateway, which re-dials a flow to the
 *   host's loopback on the same port; the agent dials the bundle's published ports there, and the
 *   rest of the host's loopback is in its reach too (README lists this).
 */
import { BUNDLE_VM_ADDRESS } from "../../shared/intercept-config.js";
import type { AgentReach } from "../backend.js";

/** The one address the gateway route admits: smolvm's gateway to the host's loopback. */
export const GATEWAY_CIDR = "100.96.0.1/32";
/** The name a VM reaches the host's loopback by, through smolvm's gateway. */
export const GATEWAY_NAME = "host.smolvm.internal";
const GATEWAY_ADDRESS = "100.96.0.1";

export type VmRoute =
  | { kind: "interceptor" }
  | {
      kind: "gateway";
      /** The host port each bundle port is published on. */
      published: ReadonlyMap<number, number>;
    };

/** Where the agent dials the bundle's `port`. */
export function dialAddress(route: VmRoute, port: number): string {
  return route.kind === "interceptor"
    ? `${BUNDLE_VM_ADDRESS}:${port}`
    : `${GATEWAY_NAME}:${route.published.get(port) ?? port}`;
}

/** The allow-list flags of `machine create`. */
export function allowFlags(route: VmRoute): string[] {
  return [
    "--allow-cidr",
    route.kind === "interceptor" ? `${BUNDLE_VM_ADDRESS}/32` : GATEWAY_CIDR,
    // An allow-host list makes smolvm filter the VM's DNS to it (unfiltered without one).
    "--allow-host",
    GATEWAY_NAME,
  ];
}

/** What the cage self-test probes: the bundle's daemons where the agent dials them, and more. */
export function reachOf(
  route: VmRoute,
  ports: Readonly<Record<string, number>>,
  unlistedPort: number,
): AgentReach {
  const daemons = Object.fromEntries(
    Object.entries(ports).map(([name, port]) => {
      const [host = "", dialled = ""] = dialAddress(route, port).split(":");
      return [name, { host, port: Number(dialled) }];
    }),
  );
  if (route.kind === "gateway") return { daemons, gatewayClosed: false };
  return {
    daemons,
    // The intercept daemon refuses a port it does not relay: smolvm holds the VM's connect and
    // gives it that errno, ECONNREFUSED; smolvm's test double accepts the connect and then cuts
    // it, which the probe sees by holding the connection open.
    unlisted: {
      host: BUNDLE_VM_ADDRESS,
      port: unlistedPort,
      refused: ["ECONNREFUSED", "ECONNRESET", "closed"],
      holdMs: 1000,
    },
    unreachable: [{ name: "smolvm-gateway", host: GATEWAY_ADDRESS, port: 22 }],
    gatewayClosed: true,
  };
}
