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
      `the "${template}" template is a user plugin, and this version of bot-bottle cannot start plugins yet`,
      'use "template": "claude", "codex" or "shell"',
    );
  return provider;
}

/** The manifest with its template applied; `provider` is the template's (a built-in's by default). */
export function applyTemplate(
  manifest: Manifest,
  provider: AgentProvider = providerFor(manifest.agent.template),
): Templated {
  const own = new Set(manifest.bottle.egress.routes.map(routeKey));
  const added = provider.routes().filter((r) => !own.has(routeKey(r)));
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
