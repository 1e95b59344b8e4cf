/**
 * The one hole `--internal` leaves on Docker: the host answers on the bridge's own address, so a
 * container on an internal network reaches anything the host serves on 0.0.0.0 (those packets go
 * to the host's INPUT path and never cross the forwarding rules). bot-bottle creates the agent's
 * bridge without a host address (bridge option inhibit_ipv4) and then checks that it holds none.
 */
import { existsSync } from "node:fs";
import { networkInterfaces } from "node:os";

export type BridgeIsolation =
  | { verdict: "closed" }
  | { verdict: "open"; address: string }
  | { verdict: "unverifiable"; why: string };

export function checkBridgeIsolation(bridge: string, sysfs = "/sys/class/net"): BridgeIsolation {
  const addresses = networkInterfaces()[bridge] ?? [];
  const v4 = addresses.find((a) => a.family === "IPv4");
  if (v4) return { verdict: "open", address: v4.address };
  if (existsSync(`${sysfs}/${bridge}`)) return { verdict: "closed" };
  return {
    verdict: "unverifiable",
    why: `bridge ${bridge} is not visible from this host (a remote engine, or Docker Desktop's VM)`,
  };
}

/**
 * Why a bottle may not start on this bridge, or undefined when it is cut off from the host.
 * Fail closed: a bridge this host cannot inspect is refused like one that is open.
 */
export function isolationRefusal(
  bridge: string,
  result: BridgeIsolation,
): { message: string; remedy: string } | undefined {
  switch (result.verdict) {
    case "closed":
      return undefined;
    case "open":
      return {
        message: `the agent's internal bridge ${bridge} holds the host address ${result.address}: the agent could reach services on the host`,
        remedy:
          "this engine ignores com.docker.network.bridge.inhibit_ipv4; use a newer Docker engine",
      };
    case "unverifiable":
      return {
        message: `cannot verify that the agent's internal bridge ${bridge} holds no host address: ${result.why}; bot-bottle does not start a bottle it cannot verify is cut off from the host`,
        remedy:
          "run bot-bottle on the Docker engine's own host (not through a remote DOCKER_HOST or Docker Desktop's VM), where it can inspect the bridge",
      };
  }
}
