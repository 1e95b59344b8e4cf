/**
 * A bottle's supervise server, planned: what the MCP server in its bundle runs with — how long a
 * tool call waits, when silence denies, the rate limit — and what the agent may never ask for:
 * the bundle's own names, this machine's, and what the bottle already has.
 */
import type { Bottle } from "../manifest/schema.js";
import type { EgressConfig } from "../shared/egress-config.js";
import { DEFAULT_SUPERVISE, SUPERVISE_PORT, type SuperviseConfig } from "../shared/supervise.js";

/** The names the bundle answers to on the agent's network, and the host's. */
export const RESERVED_HOSTS = [
  "egress",
  "git-gate",
  "supervise",
  "bundle",
  "localhost",
  "host.docker.internal",
  "gateway.docker.internal",
];

export function superviseConfigFor(
  bottle: Bottle,
  slug: string,
  egress: Pick<EgressConfig, "routes">,
): SuperviseConfig {
  const settings = bottle.supervise === false ? undefined : bottle.supervise;
  return {
    slug,
    port: SUPERVISE_PORT,
    waitSeconds: settings?.wait_seconds ?? DEFAULT_SUPERVISE.waitSeconds,
    timeoutSeconds: settings?.timeout_seconds ?? DEFAULT_SUPERVISE.timeoutSeconds,
    ratePerMinute: settings?.rate_per_minute ?? DEFAULT_SUPERVISE.ratePerMinute,
    reservedHosts: RESERVED_HOSTS,
    routes: egress.routes.map((r) => (r.port !== undefined ? `${r.host}:${r.port}` : r.host)),
    gitUpstreams: bottle.git.map((g) => g.upstream),
  };
}
