/**
 * What a new egress config lets out that the running one does not: the list `egress apply` shows
 * and asks about before it loads wider routes. Pure. It follows the proxy's matching (exact host
 * routes before wildcards; among a host's routes, any one may allow a request): a route of the new
 * config widens unless one route of the old config that applies to the same host allows all it
 * allows, with the same credential. Narrowing (a route removed, a path dropped) is not listed.
 */
import type { EgressConfig, RouteRule } from "../shared/egress-config.js";
import { describeRoute } from "./summary.js";

export type WideningKind =
  | "host"
  | "port"
  | "passthrough"
  | "ip-literal"
  | "paths"
  | "methods"
  | "auth"
  | "extra-host"
  | "trust-ca";

export interface Widening {
  kind: WideningKind;
  /** The host pattern (or mapped name) it concerns; "" for the trust CA. */
  host: string;
  text: string;
}

const isWildcard = (host: string) => host.startsWith("*.");

/** Does wildcard route `pattern` apply to `host` (a name, or a narrower or equal wildcard)? */
function wildcardCovers(pattern: string, host: string): boolean {
  const suffix = pattern.slice(1); // ".example.com"
  if (isWildcard(host)) return host === pattern || host.slice(1).endsWith(suffix);
  return host.endsWith(suffix) && host.length > suffix.length;
}

/** The routes the proxy would consider for `host`, as routesFor does in the sidecar. */
function routesFor(routes: readonly RouteRule[], host: string): RouteRule[] {
  if (!isWildcard(host)) {
    const exact = routes.filter((r) => r.host === host);
    if (exact.length) return exact;
  }
  return routes.filter((r) => isWildcard(r.host) && wildcardCovers(r.host, host));
}

const sameAuth = (a: RouteRule["auth"], b: RouteRule["auth"]) =>
  a?.header === b?.header && a?.scheme === b?.scheme && a?.tokenEnv === b?.tokenEnv;

/** What `r` allows beyond `o`, one entry per aspect; empty when `o` allows all of it. */
function beyond(o: RouteRule, r: RouteRule): WideningKind[] {
  const out: WideningKind[] = [];
  if (o.port !== r.port) out.push("port");
  if (o.tlsPassthrough !== r.tlsPassthrough) out.push("passthrough");
  if (r.allowIpLiteral && !o.allowIpLiteral) out.push("ip-literal");
  if (o.paths && !r.paths?.every((p) => o.paths?.some((q) => p.startsWith(q)))) out.push("paths");
  if (o.methods && !r.methods?.every((m) => o.methods?.includes(m))) out.push("methods");
  if (r.auth && !sameAuth(o.auth, r.auth)) out.push("auth");
  return out;
}

const hostPort = (r: RouteRule) => (r.port !== undefined ? `${r.host}:${r.port}` : r.host);
const list = (xs: readonly string[] | undefined, all: string) => (xs ? xs.join(" ") : all);
const authText = (a: RouteRule["auth"]) =>
  a ? `${a.header}: ${a.scheme ? a.scheme + " " : ""}$${a.tokenEnv}` : "no credential";

function explain(kind: WideningKind, o: RouteRule, r: RouteRule, host: string): string {
  const h = host === r.host ? hostPort(r) : `${host} (through ${hostPort(r)})`;
  switch (kind) {
    case "port":
      return `${h}: port ${r.port ?? "443/80"} (was ${o.port ?? "443/80"})`;
    case "passthrough":
      return r.tlsPassthrough
        ? `${h}: TLS passthrough — no longer decrypted, path-checked or scanned`
        : `${h}: decrypted and open to plain HTTP (was a TLS passthrough tunnel only)`;
    case "ip-literal":
      return `${h}: the IP address may be used directly`;
    case "paths":
      return `${h}: paths ${list(r.paths, "every path")} (was ${list(o.paths, "every path")})`;
    case "methods":
      return `${h}: methods ${list(r.methods, "every method")} (was ${list(o.methods, "every method")})`;
    case "auth":
      return `${h}: the proxy now sends the real credential ${authText(r.auth)} (was ${authText(o.auth)})`;
    case "host":
    case "extra-host":
    case "trust-ca":
      return `${h}: ${kind}`;
  }
}

export function egressWidening(
  current: EgressConfig,
  next: EgressConfig,
  trustCa: { before: string | undefined; after: string | undefined },
): Widening[] {
  const out: Widening[] = [];
  const seen = new Set<string>();
  const add = (w: Widening) => {
    if (seen.has(w.text)) return;
    seen.add(w.text);
    out.push(w);
  };
  // Every host the new routes name, and every exact host of the old routes that a new wildcard
  // reaches (dropping or loosening an exact route hands its host to the wildcard).
  const probes = new Set(next.routes.map((r) => r.host));
  for (const o of current.routes)
    if (
      !isWildcard(o.host) &&
      next.routes.some((r) => isWildcard(r.host) && wildcardCovers(r.host, o.host))
    )
      probes.add(o.host);
  for (const host of probes) {
    const before = routesFor(current.routes, host);
    for (const r of routesFor(next.routes, host)) {
      if (before.length === 0) {
        add({
          kind: r.auth ? "auth" : "host",
          host,
          text: `new host ${host === r.host ? "" : `${host} (through ${r.host}) `}${describeRoute(r)}${r.auth ? ` — the proxy sends it the real $${r.auth.tokenEnv}` : ""}`,
        });
        continue;
      }
      const gaps = before.map((o) => ({ o, kinds: beyond(o, r) }));
      if (gaps.some((g) => g.kinds.length === 0)) continue;
      // Explain against the old route that differs least.
      const closest = gaps.reduce((a, b) => (b.kinds.length < a.kinds.length ? b : a));
      for (const kind of closest.kinds)
        add({ kind, host, text: explain(kind, closest.o, r, host) });
    }
  }
  for (const [host, ip] of Object.entries(next.extraHosts)) {
    const was = current.extraHosts[host];
    if (was !== ip)
      add({
        kind: "extra-host",
        host,
        text: `extra_hosts ${host} -> ${ip} (${was ? `was ${was}` : "new"})`,
      });
  }
  if (trustCa.after !== undefined && trustCa.after !== trustCa.before)
    add({
      kind: "trust-ca",
      host: "",
      text: `trust_ca: ${trustCa.before === undefined ? "a new" : "a changed"} CA the proxy trusts for upstream TLS`,
    });
  return out;
}
