/**
 * A bottle's egress, planned: the routes file the proxy enforces (from the manifest, at start and
 * on `bot-bottle egress apply`) and the environment that points the agent's clients at the proxy
 * and at the bottle CA. Pure; no secret value — only the names of the variables that hold them.
 */
import type { Bottle } from "../manifest/schema.js";
import { normaliseDnsName } from "../manifest/rules.js";
import {
  TRUST_CA_PATH,
  type EgressConfig,
  type RouteRule,
  type TokenExchange,
} from "../shared/egress-config.js";

/** Where the bottle CA's certificate lands in the agent, and the system bundle it joins. */
export const AGENT_CA_CERT = "/usr/local/share/ca-certificates/bot-bottle.crt";
export const AGENT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/** A route as planned: the manifest's, or a template's with a token endpoint's exchange. */
type PlannedRoute = Bottle["egress"]["routes"][number] & { exchange?: TokenExchange };

/** Names of the token variables the routes inject, in route order. */
export function tokenEnvNames(bottle: Bottle): string[] {
  return [...new Set(bottle.egress.routes.flatMap((r) => (r.auth ? [r.auth.token_env] : [])))];
}

/** Every token variable the bundle holds for the routes: injected ones and exchanged ones. */
export function routeSecretNames(bottle: Bottle): string[] {
  return [
    ...new Set(
      (bottle.egress.routes as PlannedRoute[]).flatMap((r) => [
        ...(r.auth ? [r.auth.token_env] : []),
        ...(r.exchange ? [r.exchange.refreshEnv, ...Object.values(r.exchange.rotates)] : []),
      ]),
    ),
  ];
}

export function egressConfigFor(bottle: Bottle, slug: string, generation: number): EgressConfig {
  const routes = (bottle.egress.routes as PlannedRoute[]).map((r): RouteRule => ({
    // The schema already refused hosts that do not normalise; IP literals stay as written.
    host: r.host.startsWith("*.")
      ? `*.${normaliseDnsName(r.host.slice(2)) ?? r.host.slice(2)}`
      : (normaliseDnsName(r.host) ?? r.host),
    ...(r.port !== undefined ? { port: r.port } : {}),
    ...(r.paths ? { paths: r.paths } : {}),
    ...(r.methods ? { methods: r.methods } : {}),
    tlsPassthrough: r.tls_passthrough,
    allowIpLiteral: r.allow_ip_literal,
    ...(r.auth
      ? {
          auth: {
            header: r.auth.header.toLowerCase(),
            ...(r.auth.scheme ? { scheme: r.auth.scheme } : {}),
            tokenEnv: r.auth.token_env,
          },
        }
      : {}),
    ...(r.exchange ? { exchange: r.exchange } : {}),
  }));
  const extraHosts: Record<string, string> = {};
  for (const [host, ip] of Object.entries(bottle.egress.extra_hosts))
    extraHosts[normaliseDnsName(host) ?? host] = ip;
  return {
    slug,
    generation,
    secretEnv: routeSecretNames(bottle),
    routes,
    extraHosts,
    ...(bottle.egress.trust_ca ? { trustCaFile: TRUST_CA_PATH } : {}),
  };
}

/** The agent's proxy and CA variables, for every client we know of (curl, git, node, python…). */
export function agentEgressEnv(
  proxyUrl: string,
  noProxy: readonly string[],
): Record<string, string> {
  const bypass = noProxy.join(",");
  return {
    HTTPS_PROXY: proxyUrl,
    HTTP_PROXY: proxyUrl,
    https_proxy: proxyUrl,
    http_proxy: proxyUrl,
    NO_PROXY: bypass,
    no_proxy: bypass,
    NODE_EXTRA_CA_CERTS: AGENT_CA_CERT,
    SSL_CERT_FILE: AGENT_CA_BUNDLE,
    REQUESTS_CA_BUNDLE: AGENT_CA_BUNDLE,
    CURL_CA_BUNDLE: AGENT_CA_BUNDLE,
    GIT_SSL_CAINFO: AGENT_CA_BUNDLE,
    CODEX_CA_CERTIFICATE: AGENT_CA_BUNDLE,
  };
}
