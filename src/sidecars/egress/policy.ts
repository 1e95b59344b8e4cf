/**
 * The egress rules: which route, if any, allows a request. Pure functions over plain data, so
 * every decision can be explained and tested without a socket. A refusal carries a machine tag
 * and a one-line reason the agent can show its user.
 */
import { isIP } from "node:net";
import type { RouteRule } from "../../shared/egress-config.js";
import { normaliseDnsName, unbracket } from "../../shared/hosts.js";

export interface Refusal {
  allow: false;
  tag: string;
  reason: string;
  route?: RouteRule;
}
export interface Allowed {
  allow: true;
  route: RouteRule;
}
export type Decision = Allowed | Refusal;

export function refuse(tag: string, reason: string, route?: RouteRule): Refusal {
  return { allow: false, tag, reason: `bot-bottle: ${reason}`, ...(route ? { route } : {}) };
}

export type Target = { host: string; port: number; ip: boolean };

/**
 * The one spelling of a request's host: lower case, no trailing dot, IDNA, IP literals in their
 * canonical form (the URL parser turns "0x7f.1" into "127.0.0.1"). Undefined when it is neither a
 * DNS name nor an IP address.
 */
export function parseAuthority(authority: string, defaultPort: number): Target | undefined {
  if (!authority || /[\s/\\?#@]/.test(authority)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${authority}`);
  } catch {
    return undefined;
  }
  const port = url.port ? Number(url.port) : defaultPort;
  // The URL parser drops an explicit ":80": recover it from the authority itself.
  const explicit = /:(\d+)$/.exec(authority)?.[1];
  const realPort = explicit !== undefined ? Number(explicit) : port;
  const host = unbracket(url.hostname);
  if (isIP(host)) return { host, port: realPort, ip: true };
  const name = normaliseDnsName(host);
  return name === undefined ? undefined : { host: name, port: realPort, ip: false };
}

function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith("*."))
    return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return pattern === host;
}

/** Routes naming `host`: exact names first, then the longest wildcard. */
export function routesFor(routes: readonly RouteRule[], host: string): RouteRule[] {
  const exact = routes.filter((r) => r.host === host);
  if (exact.length) return exact;
  return routes
    .filter((r) => r.host.startsWith("*.") && hostMatches(r.host, host))
    .sort((a, b) => b.host.length - a.host.length);
}

function portAllowed(route: RouteRule, port: number, tls: boolean): boolean {
  return port === (route.port ?? (tls ? 443 : 80));
}

/** May the agent open a tunnel (CONNECT) to this target? Paths and methods are checked later. */
export function decideConnect(routes: readonly RouteRule[], target: Target): Decision {
  return decideHost(routes, target, true);
}

function decideHost(routes: readonly RouteRule[], target: Target, tls: boolean): Decision {
  const candidates = routesFor(routes, target.host);
  if (candidates.length === 0)
    return refuse(
      target.ip ? "ip-literal" : "not-in-routes",
      target.ip
        ? `the IP address ${target.host} is not in this bottle's routes — name hosts by their DNS names, or ask the operator for a route with "allow_ip_literal"`
        : `host "${target.host}" is not in this bottle's routes — ask the operator to add it`,
    );
  if (target.ip && !candidates.some((r) => r.allowIpLiteral))
    return refuse("ip-literal", `the IP address ${target.host} may not be used directly`);
  const onPort = candidates.filter((r) => portAllowed(r, target.port, tls));
  const first = onPort[0];
  if (!first)
    return refuse(
      "port-not-allowed",
      `port ${target.port} of "${target.host}" is not allowed — routes allow ${tls ? "443" : "80"} unless they name a port`,
      candidates[0],
    );
  return { allow: true, route: first };
}

/** May this request (method, path) go to this target? `tls`: it came through a CONNECT tunnel. */
export function decideRequest(
  routes: readonly RouteRule[],
  target: Target,
  method: string,
  path: string,
  tls: boolean,
): Decision {
  const host = decideHost(routes, target, tls);
  if (!host.allow) return host;
  const candidates = routesFor(routes, target.host).filter((r) => portAllowed(r, target.port, tls));
  if (candidates.every((r) => r.tlsPassthrough))
    return refuse("passthrough-only", `"${target.host}" is only reachable as a TLS tunnel`);
  const pathOnly = decodeSafePath(path);
  if (pathOnly === undefined) return refuse("bad-path", `the path is not a valid origin-form path`);
  const byPath = candidates.filter(
    (r) => !r.tlsPassthrough && (!r.paths || r.paths.some((p) => pathOnly.startsWith(p))),
  );
  if (byPath.length === 0)
    return refuse(
      "path-not-allowed",
      `path ${pathOnly} on "${target.host}" is not in this bottle's routes — ask the operator to add it`,
      candidates[0],
    );
  const route = byPath.find((r) => !r.methods || r.methods.includes(method));
  if (!route)
    return refuse(
      "method-not-allowed",
      `method ${method} on "${target.host}${pathOnly}" is not in this bottle's routes`,
      byPath[0],
    );
  return { allow: true, route };
}

/**
 * The path a prefix is compared with: the query dropped, percent-escapes of unreserved characters
 * decoded, and no dot segments (which would let "/v1/../admin" pass a "/v1/" prefix).
 */
export function decodeSafePath(path: string): string | undefined {
  if (!path.startsWith("/")) return undefined;
  const bare = path.split("?")[0] ?? "";
  let decoded: string;
  try {
    decoded = bare.replace(/%([0-9A-Fa-f]{2})/g, (m, hex: string) => {
      const c = String.fromCharCode(parseInt(hex, 16));
      return /[A-Za-z0-9._~-]/.test(c) ? c : m.toUpperCase();
    });
  } catch {
    return undefined;
  }
  if (decoded.split("/").some((seg) => seg === "." || seg === "..")) return undefined;
  if (decoded.includes("\\")) return undefined;
  return decoded;
}

/** The path for the audit log: query names kept, values removed. */
export function auditPath(path: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path.slice(0, 512);
  const names = path
    .slice(q + 1)
    .split("&")
    .map((kv) => (kv.split("=")[0] ?? "").slice(0, 64) + "=");
  return `${path.slice(0, Math.min(q, 512))}?${names.join("&")}`;
}
