/**
 * The agent's template applied to its manifest: the provider behind the template name, and the
 * bottle's routes with the provider's added (the model API with its credential). The bottle's
 * own route for a host and port replaces the provider's, so an operator can narrow or re-key it.
 * Start, `egress apply` and the host checks all read routes through here, so they agree.
 */
import { UsageError } from "../errors.js";
import type { Manifest } from "../manifest/index.js";
import { normaliseDnsName } from "../manifest/rules.js";
import type { Route } from "../manifest/schema.js";
import type { AgentProvider } from "../providers/provider.js";
import { builtinProvider } from "../providers/templates.js";

export interface Templated {
  provider: AgentProvider;
  /** The manifest with the provider's routes added to its bottle's. */
  manifest: Manifest;
  /** The hosts of the routes the template added (for the preflight summary). */
  templateHosts: string[];
}

function routeKey(r: Route): string {
  const host = r.host.startsWith("*.")
    ? `*.${normaliseDnsName(r.host.slice(2)) ?? r.host.slice(2)}`
    : (normaliseDnsName(r.host) ?? r.host);
  return `${host}:${r.port ?? ""}`;
}

export function providerFor(template: string): AgentProvider {
  const provider = builtinProvider(template);
  if (!provider)
    throw new UsageError(
      `the "${template}" template is not built in: a user plugin is read from disk first (providers/templates.ts loadProvider)`,
      "load the plugin with loadProvider and pass it to planBottle",
    );
  return provider;
}

/** The manifest with its template applied; `provider` is the template's (a built-in's by default). */
export function applyTemplate(
  manifest: Manifest,
  provider: AgentProvider = providerFor(manifest.agent.template),
): Templated {
  const login = manifest.agent.forward_host_credentials ? provider.hostLogin : undefined;
  if (manifest.agent.forward_host_credentials && !login)
    throw new UsageError(
      `agents.${manifest.agent.name}.forward_host_credentials is true, but the "${provider.name}" template has no login to forward`,
      'remove it, or use "template": "claude" or "codex"',
    );
  const own = new Set(manifest.bottle.egress.routes.map(routeKey));
  // A forwarded login's routes replace the template's key-based ones, and a bottle's own route
  // for the API host does not replace them: the login's token is the one the agent uses.
  const added = login ? login.routes() : provider.routes().filter((r) => !own.has(routeKey(r)));
  if (login)
    for (const r of added)
      if (own.has(routeKey(r)))
        throw new UsageError(
          `bottles.${manifest.bottle.name}.egress.routes declares ${r.host}, which the forwarded ${login.what.replace(/^your /, "")} needs for itself`,
          `remove that route, or set agents.${manifest.agent.name}.forward_host_credentials to false`,
        );
  return {
    provider,
    templateHosts: added.map((r) => r.host),
    manifest: {
      ...manifest,
      bottle: {
        ...manifest.bottle,
        egress: { ...manifest.bottle.egress, routes: [...manifest.bottle.egress.routes, ...added] },
      },
    },
  };
}
