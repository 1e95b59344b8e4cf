/**
 * The egress rules: which route, if any, allows a request. Pure functions over plain data, so
 * every decision can be explained and tested without a socket. A refusal carries a machine tag
 * and a one-line reason the agent can show its user.
 */
import { isIP } from "node:net";
import type { RouteRule } from "../../shared/egress-config.js";
import { canonicalIp, isInternalAddress, normaliseDnsName, unbracket } from "../../shared/hosts.js";

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
  // No percent-escapes either: the URL parser would decode "%31%32%37.0.0.1" to 127.0.0.1.
  // eslint-disable-next-line no-control-regex
  if (!authority || /[\s\x00-\x1f\x7f/\\?#@%]/.test(authority)) return undefined;
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

/** Whether a route is in force at `now`: a granted route's lease ends at its `expires`. */
export function inForce(route: RouteRule, now = Date.now()): boolean {
  return route.expires === undefined || Date.parse(route.expires) > now;
}

/** Routes naming `host` (those in force): exact names first, then the longest wildcard. */
export function routesFor(given: readonly RouteRule[], host: string): RouteRule[] {
  const now = Date.now();
  const routes = given.filter((r) => inForce(r, now));
  const exact = routes.filter((r) => r.host === host || (r.allowIpLiteral && sameIp(r.host, host)));
  if (exact.length) return exact;
  return routes
    .filter((r) => r.host.startsWith("*.") && hostMatches(r.host, host))
    .sort((a, b) => b.host.length - a.host.length);
}

/** A route may write an IP literal as the manifest had it ("::FFFF:10.0.0.1"). */
function sameIp(routeHost: string, host: string): boolean {
  const canonical = canonicalIp(routeHost);
  return canonical !== undefined && canonical === canonicalIp(host);
}

function portAllowed(route: RouteRule, port: number, tls: boolean): boolean {
  return port === (route.port ?? (tls ? 443 : 80));
}

/** Host name -> address, as in the config's `extraHosts`: the operator's deliberate mappings. */
export type ExtraHosts = Readonly<Record<string, string>>;

/**
 * May the agent open a tunnel (CONNECT) to this target? Paths and methods are checked later.
 * `extraHosts`: the config's; an IP literal that is private, loopback, link-local or reserved is
 * allowed only when it is one of its addresses. Left out, no such literal is allowed.
 */
export function decideConnect(
  routes: readonly RouteRule[],
  target: Target,
  extraHosts: ExtraHosts = {},
): Decision {
  return decideHost(routes, target, true, extraHosts);
}

/**
 * An IP literal gets the check a resolved name gets: no private, loopback, link-local, metadata,
 * multicast or reserved address (in any of its IPv6 spellings) unless the operator mapped a name
 * to that very address in `extra_hosts`. Undefined when the target may be dialled.
 */
export function literalAllowed(target: Target, extraHosts: ExtraHosts): Refusal | undefined {
  if (!target.ip) return undefined;
  const address = canonicalIp(target.host);
  if (address === undefined)
    return refuse("bad-host", `${target.host} is not an IP address the proxy can dial`);
  if (!isInternalAddress(address)) return undefined;
  if (Object.values(extraHosts).some((mapped) => canonicalIp(mapped) === address)) return undefined;
  return refuse(
    "private-address",
    `${target.host} is a private, loopback, link-local or reserved address — the operator can allow it on purpose by mapping a name to it in egress.extra_hosts`,
  );
}

function decideHost(
  routes: readonly RouteRule[],
  target: Target,
  tls: boolean,
  extraHosts: ExtraHosts,
): Decision {
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
  const literal = literalAllowed(target, extraHosts);
  if (literal) return { ...literal, ...(candidates[0] ? { route: candidates[0] } : {}) };
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

/**
 * May this request (method, request target) go to this target? `tls`: it came through a CONNECT
 * tunnel. `path` is the request target exactly as it will be forwarded (origin form, query
 * included): the decision is about those bytes, never a decoded copy. `extraHosts` as for
 * `decideConnect`.
 */
export function decideRequest(
  routes: readonly RouteRule[],
  target: Target,
  method: string,
  path: string,
  tls: boolean,
  extraHosts: ExtraHosts = {},
): Decision {
  const host = decideHost(routes, target, tls, extraHosts);
  if (!host.allow) return host;
  const candidates = routesFor(routes, target.host).filter((r) => portAllowed(r, target.port, tls));
  if (candidates.every((r) => r.tlsPassthrough))
    return refuse("passthrough-only", `"${target.host}" is only reachable as a TLS tunnel`);
  const loose = targetProblem(path);
  if (loose) return refuse("bad-path", `the request target ${loose}`, candidates[0]);
  const strict = pathProblem(path);
  const pathOnly = pathPart(path);
  const open = candidates.filter((r) => !r.tlsPassthrough);
  const byPath = open.filter(
    (r) => !r.paths || (strict === undefined && r.paths.some((p) => pathMatches(p, pathOnly))),
  );
  if (byPath.length === 0) {
    if (strict !== undefined)
      return refuse(
        "bad-path",
        `path refused on "${target.host}", whose routes allow only some paths and so only their plain spelling: it ${strict}`,
        open[0],
      );
    return refuse(
      "path-not-allowed",
      `path ${shown(pathOnly)} on "${target.host}" is not in this bottle's routes — ask the operator to add it`,
      open[0],
    );
  }
  const route = byPath.find((r) => !r.methods || r.methods.includes(method));
  if (!route)
    return refuse(
      "method-not-allowed",
      `method ${method} on "${target.host}${shown(pathOnly)}" is not in this bottle's routes`,
      byPath[0],
    );
  return { allow: true, route };
}

/** A path for a reason line: short (it is printable ASCII once `targetProblem` passed it). */
function shown(path: string): string {
  return path.length > 200 ? `${path.slice(0, 200)}...` : path;
}

/** The request target up to its query. */
export function pathPart(target: string): string {
  const q = target.indexOf("?");
  return q < 0 ? target : target.slice(0, q);
}

/**
 * Does a route's path prefix cover this path (the request target up to its query, raw)? At
 * segment boundaries: "/v1" covers "/v1" and "/v1/…" but not "/v10"; "/v1/" covers what is
 * under "/v1/".
 */
export function pathMatches(prefix: string, path: string): boolean {
  if (prefix.endsWith("/")) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * What makes a request target invalid for any route: an origin-form target is "/" and then
 * printable ASCII, with no fragment. Undefined when it is one. (Routes without `paths` take any
 * spelling beyond that: every path is theirs anyway.)
 */
export function targetProblem(target: string): string | undefined {
  if (!target.startsWith("/"))
    return target === "*" || /^[a-z][a-z0-9+.-]*:/i.test(target)
      ? `must be a path starting with "/" (origin form), not an absolute URL or "*"`
      : `must start with "/"`;
  if (/[^\x21-\x7e]/.test(target))
    return "contains a space, a control character or a non-ASCII byte — percent-encode it";
  if (target.includes("#")) return 'contains "#" — a fragment is never sent to a server';
  return undefined;
}

/** Code points a server could fold into "/", "\\" or "." although Unicode does not. */
const LOOKALIKES = new Set([
  0x2024, 0x2044, 0x2215, 0x2216, 0x29f5, 0x29f8, 0x29f9, 0x3002, 0xfe68,
]);

/**
 * What makes a request target ambiguous on a route with `paths`: any spelling that a server
 * (nginx, Express, Go, Python, Tomcat, IIS) could read as a different path than the raw bytes
 * the prefix is compared with. Undefined when the path is plain: segments of letters, digits,
 * "-._~!$&'()*+,=:@" and percent-escapes of other bytes (well-formed UTF-8 included), with no
 * dot segments, empty segments, ";" parameters or backslashes. The query is only held to
 * `targetProblem`'s rules, and no backslash.
 */
export function pathProblem(target: string): string | undefined {
  const loose = targetProblem(target);
  if (loose) return loose;
  if (target.includes("\\")) return 'contains a backslash ("\\"), which some servers read as "/"';
  const path = pathPart(target);
  const odd = /[^A-Za-z0-9\-._~!$&'()*+,=:@/%]/.exec(path)?.[0];
  if (odd === ";")
    return 'contains ";" — path parameters (";jsessionid=…", "..;/") are read differently by different servers';
  if (odd !== undefined) return `contains "${odd}", which must be percent-encoded in a path`;
  const segments = path.split("/").slice(1);
  for (const [i, segment] of segments.entries()) {
    if (segment === "" && i < segments.length - 1) return 'contains an empty segment ("//")';
    if (/^\.+$/.test(segment) || /^\.\./.test(segment) || /^\.+%/.test(segment))
      return 'contains a dot segment ("." or "..", or one starting with "..") — send the path with dot segments resolved';
  }
  return escapeProblem(path);
}

/** The percent-escapes of a path: only of bytes that are not plain in a path and change nothing. */
function escapeProblem(path: string): string | undefined {
  let run: number[] = [];
  const flush = (): string | undefined => {
    if (run.length === 0) return undefined;
    const high = run;
    run = [];
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(high));
    } catch {
      return "has percent-escapes that are not well-formed UTF-8 (overlong forms like %c0%ae included)";
    }
    for (const ch of text) {
      const cp = ch.codePointAt(0) ?? 0;
      if (
        cp < 0xa0 ||
        LOOKALIKES.has(cp) ||
        ch.normalize("NFKC") !== ch ||
        /[\p{Cc}\p{Cf}\p{Zs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u.test(ch)
      )
        return `has an escaped character (U+${cp.toString(16).toUpperCase().padStart(4, "0")}) that a server could read as another, such as "/" or "."`;
    }
    return undefined;
  };
  for (let i = 0; i < path.length; i++) {
    if (path[i] !== "%") {
      const problem = flush();
      if (problem) return problem;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex))
      return `has "%" not followed by two hex digits (such as "%u002e")`;
    const byte = parseInt(hex, 16);
    i += 2;
    if (byte >= 0x80) {
      run.push(byte);
      continue;
    }
    const problem = flush();
    if (problem) return problem;
    const c = String.fromCharCode(byte);
    if (byte === 0x25) return 'has "%25" — double encoding ("%252e") is refused';
    if (byte === 0x2f || byte === 0x5c)
      return `has an encoded separator ("%${hex}") — send "/" unencoded`;
    if (byte < 0x20 || byte === 0x7f) return `has an encoded control character ("%${hex}")`;
    if (byte === 0x3b)
      return 'has an encoded ";" ("%3B"), which some servers read as a path parameter';
    if (/[A-Za-z0-9._~-]/.test(c))
      return `has an escaped "${c}" ("%${hex}") — send letters, digits, ".", "-", "_" and "~" unencoded`;
  }
  return flush();
}

/**
 * The path a prefix is compared with: the request target up to its query, exactly as sent, when
 * `pathProblem` finds nothing ambiguous in it; undefined otherwise.
 */
export function decodeSafePath(path: string): string | undefined {
  return pathProblem(path) === undefined ? pathPart(path) : undefined;
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
