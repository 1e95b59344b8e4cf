/**
 * Admission: every check a plain or decrypted request (or upgrade) passes before a byte of it
 * leaves — its target, framing and Host, its route, secrets in its URL and headers, credentials
 * only over TLS, the exact headers that go upstream, and the address dialled. One entry point,
 * `admit`; a rule that throws refuses.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import type { RouteRule } from "../../shared/egress-config.js";
import { errorText, findingRefusal, type Pending } from "./audit.js";
import type { ProxyContext, Rules } from "./context.js";
import type { Finding } from "../dlp.js";
import { framingHeaders, HOP_BY_HOP, requestFraming, type Framing } from "./framing.js";
import { keyRefusal, type AgentKey } from "./agent-key.js";
import {
  decideRequest,
  parseAuthority,
  refuse,
  type Decision,
  type Refusal,
  type Target,
} from "./policy.js";
import type { Address } from "./resolve.js";

export interface Admitted {
  route: RouteRule;
  headers: OutgoingHttpHeaders;
  address: Address;
  framing: Framing;
}

export type Admission = Admitted | { refusal: ReturnType<typeof refuse>; status?: number };

/** What the agent may not bring to a route that gets a credential: the proxy sets the only one. */
const AGENT_CREDENTIALS = new Set(["authorization", "cookie", "proxy-authorization"]);

export async function admit(
  ctx: ProxyContext,
  req: IncomingMessage,
  tunnel: Target | undefined,
  p: Pending,
  rules: Rules,
  tlsUrl: string,
): Promise<Admission> {
  try {
    const checked = check(ctx, req, tunnel, p, rules);
    if ("allow" in checked) return { refusal: checked };
    const { decision, framing } = checked;
    if (!decision.allow) return { refusal: decision };
    const route = decision.route;
    const finding = scanHead(req, route, rules);
    if (finding) return { refusal: findingRefusal(finding, route) };
    // A token endpoint's exchange puts the real refresh token in the body: TLS only, too.
    if ((route.auth || route.exchange) && tunnel === undefined)
      return {
        refusal: refuse(
          "credential-needs-tls",
          `"${route.host}" gets a credential, which is only sent over TLS — use ${tlsUrl}`,
          route,
        ),
      };
    const headers = outgoingHeaders(
      ctx,
      req,
      route,
      p.target as Target,
      framing,
      tunnel !== undefined,
    );
    if (!("headers" in headers)) return { refusal: headers };
    const address = await ctx.resolver.resolve(
      p.target as Target,
      rules.config.extraHosts,
      rules.scanner,
      ctx.options.secrets,
    );
    if ("allow" in address)
      return { refusal: address, status: address.tag === "dns-failed" ? 502 : 403 };
    return { route, headers: headers.headers, address, framing };
  } catch (err) {
    return {
      refusal: refuse("rule-error", `a rule failed (${errorText(err)}); refused to be safe`),
    };
  }
}

/** Target, framing, Host, body encoding, then the route. Fills in `p` as it learns. */
function check(
  ctx: ProxyContext,
  req: IncomingMessage,
  tunnel: Target | undefined,
  p: Pending,
  rules: Rules,
): { decision: Decision; framing: Framing } | ReturnType<typeof refuse> {
  let target: Target | undefined = tunnel;
  let path = req.url ?? "";
  if (!tunnel) {
    if (!/^http:\/\//i.test(path))
      return /^[a-z]+:\/\//i.test(path)
        ? refuse(
            "bad-request",
            "only http:// URLs can be sent to the proxy as requests; use CONNECT (HTTPS_PROXY) for https",
          )
        : refuse(
            "not-a-proxy-request",
            "this is the egress proxy: send requests through it (HTTP_PROXY / HTTPS_PROXY)",
          );
    const split = splitAbsoluteForm(path);
    if (!split.target) return refuse("bad-host", "the request's host is not a valid host name");
    target = split.target;
    path = split.path;
  }
  p.target = target;
  p.path = path;
  if (!target) return refuse("bad-host", "the request's host is not a valid host name");
  const framing = requestFraming(req);
  if ("allow" in framing) return framing;
  const hostHeader = req.headers.host;
  // Keep-alive requests in one tunnel repeat the same Host: parse it once per connection.
  const known = tunnel !== undefined && ctx.hostSeen.get(req.socket) === hostHeader;
  const named =
    known || hostHeader === undefined ? undefined : parseAuthority(hostHeader, target.port);
  if (!known && (!named || named.host !== target.host || named.port !== target.port))
    return refuse(
      "host-mismatch",
      `the Host header does not name the host this request is for ("${target.host}")`,
    );
  if (tunnel !== undefined && !known && hostHeader !== undefined)
    ctx.hostSeen.set(req.socket, hostHeader);
  const encoding = req.headers["content-encoding"];
  if (encoding && encoding.trim().toLowerCase() !== "identity")
    return refuse(
      "encoded-body",
      `request bodies with Content-Encoding "${encoding}" cannot be scanned — send them uncompressed`,
    );
  return {
    framing,
    decision: decideRequest(
      rules.config.routes,
      target,
      req.method ?? "GET",
      path,
      tunnel !== undefined,
      rules.config.extraHosts,
    ),
  };
}

/** An absolute-form `http://` target: its authority as a target (undefined if invalid), its path. */
export function splitAbsoluteForm(url: string): { target: Target | undefined; path: string } {
  const rest = url.slice("http://".length);
  const slash = rest.search(/[/?#]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  let path = slash < 0 ? "/" : rest.slice(slash);
  if (path.startsWith("?")) path = "/" + path;
  return { target: parseAuthority(authority, 80), path };
}

/** One set per route object (routes are replaced, never changed, on reload). */
const allowedByRoute = new WeakMap<RouteRule, ReadonlySet<string>>();

export function allowedPlaceholders(route: RouteRule): ReadonlySet<string> {
  let allowed = allowedByRoute.get(route);
  if (!allowed) {
    allowed = new Set([
      ...(route.auth ? [route.auth.tokenEnv] : []),
      // A token endpoint receives the refresh token's placeholder, swapped for the real one.
      ...(route.exchange ? [route.exchange.refreshEnv] : []),
    ]);
    allowedByRoute.set(route, allowed);
  }
  return allowed;
}

/**
 * The request target and every header line as sent (names in their own case), and all header
 * values run together — a secret split over two headers is whole there. Not the lines that never
 * leave: the one the proxy sets itself, and Proxy-Authorization (the agent's proxy key).
 */
function scanHead(req: IncomingMessage, route: RouteRule, rules: Rules): Finding | undefined {
  const inject = route.auth?.header;
  const parts: { name: string; value: string }[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] ?? "";
    const lower = name.toLowerCase();
    if (lower !== inject && lower !== "proxy-authorization")
      parts.push({ name, value: raw[i + 1] ?? "" });
  }
  return rules.scanner.scanHead(parts, allowedPlaceholders(route), req.url ?? "");
}

/**
 * The headers that go upstream: the agent's end-to-end headers, less those its Connection header
 * lists, less the credentials it brought on a route that gets one; then the route's credential,
 * the checked Host and the framing the proxy decided.
 */
function outgoingHeaders(
  ctx: ProxyContext,
  req: IncomingMessage,
  route: RouteRule,
  target: Target,
  framing: Framing,
  tls: boolean,
): { headers: OutgoingHttpHeaders } | ReturnType<typeof refuse> {
  const out: OutgoingHttpHeaders = {};
  const listed = new Set(
    String(req.headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase()),
  );
  const auth = route.auth;
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (auth && AGENT_CREDENTIALS.has(name)) continue;
    out[name] = value;
  }
  if (auth) {
    const token = ctx.options.secrets[auth.tokenEnv];
    if (!token)
      return refuse(
        "credential-missing",
        `the bundle holds no value for ${auth.tokenEnv}, the credential of "${route.host}" — the operator must set it and restart the bottle`,
        route,
      );
    out[auth.header] = auth.scheme ? `${auth.scheme} ${token}` : token;
    // Compressed replies could carry an echoed token past the redactor.
    out["accept-encoding"] = "identity";
  }
  out["host"] = authorityOf(target, tls);
  Object.assign(out, framingHeaders(framing, req.method ?? "GET"));
  return { headers: out };
}

/** The Host header the upstream gets: the checked target, its port only when not the default. */
function authorityOf(target: Target, tls: boolean): string {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return target.port === (tls ? 443 : 80) ? host : `${host}:${target.port}`;
}

/**
 * For a request entering the proxy (not one inside a tunnel): the refusal when it lacks the key,
 * with `p` told the absolute-form target it named, so the audit line says where it meant to go.
 */
export function refusedForKey(
  key: AgentKey | undefined,
  req: IncomingMessage,
  p: Pending,
): Refusal | undefined {
  const refusal = keyRefusal(key, req);
  if (refusal && req.method !== "CONNECT" && /^http:\/\//i.test(req.url ?? "")) {
    const { target, path } = splitAbsoluteForm(req.url ?? "");
    if (target) {
      p.target = target;
      p.path = path;
    }
  }
  return refusal;
}
