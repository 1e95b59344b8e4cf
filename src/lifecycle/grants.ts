/**
 * An approved request, applied: the route the agent asked for is added to its running bottle's
 * proxy without a restart — marked with the request's id, and with its lease's end when the
 * operator gave one (`approve --for`), after which the proxy matches it no more. `--persist` also
 * writes it into the bottle's routes in the manifest, keeping the file's comments and layout. A
 * git repository is added to the bottle's git gate instead (git-grants.ts).
 */
import type { Backend } from "../backends/backend.js";
import { UsageError } from "../errors.js";
import type { RouteRule } from "../shared/egress-config.js";
import { checkPathPrefix, checkRouteHost, HTTP_METHODS } from "../shared/route-checks.js";
import type { RequestBody } from "../shared/supervise.js";
import { findBottle, NoSuchBottleError } from "./bottles.js";
import { leaseHolds, loadRoutes, readRunningRoutes } from "./egress.js";
import { appendToBottle } from "./persist.js";
import { grantGitRepo, type GitGrantOptions } from "./git-grants.js";
import { join } from "node:path";

type RouteRequest = Extract<RequestBody, { kind: "egress-route" }>;

/** "api.example.com GET,HEAD /v1/ /v2/": what an approval adds, in one line. */
export function describeGrant(
  r: Pick<RouteRequest, "host" | "port" | "paths" | "methods">,
): string {
  return [
    `${r.host}${r.port !== undefined ? `:${r.port}` : ""}`,
    r.methods ? r.methods.join(",") : "any method",
    ...(r.paths ?? ["any path"]),
  ].join(" ");
}

/** Why a route request may not become a route (the manifest's own rules), or undefined. */
export function grantProblem(r: RouteRequest): string | undefined {
  const host = checkRouteHost(r.host, false);
  if (host) return `its host ${host}`;
  for (const path of r.paths ?? []) {
    const bad = checkPathPrefix(path);
    if (bad) return `its path ${bad}`;
  }
  const methods: readonly string[] = HTTP_METHODS;
  const method = r.methods?.find((m) => !methods.includes(m));
  if (method !== undefined) return `its method is not one of ${HTTP_METHODS.join(", ")}`;
  return undefined;
}

/** The proxy's rule for an approved request: no credential, ever; its lease when given. */
export function grantRule(id: string, request: RouteRequest, until?: string): RouteRule {
  return {
    host: request.host,
    ...(request.port !== undefined ? { port: request.port } : {}),
    ...(request.paths ? { paths: [...request.paths] } : {}),
    ...(request.methods ? { methods: [...request.methods] } : {}),
    tlsPassthrough: false,
    allowIpLiteral: false,
    grant: id,
    ...(until ? { expires: until } : {}),
  };
}

export async function grantRequest(options: {
  slug: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  backends: readonly Backend[];
  request: RequestBody;
  id: string;
  until?: string;
  persist: boolean;
  /** For a git repository request: what the operator supplies with the approval. */
  git?: GitGrantOptions;
}): Promise<string> {
  const { slug, stateDir, request, id } = options;
  if (request.kind === "git-repo")
    return grantGitRepo({ ...options, request, git: options.git ?? {} });
  if (request.kind !== "egress-route")
    throw new UsageError(
      `request ${id} is not for a route`,
      "approve adds routes and git repositories; answer questions with `bot-bottle answer ID TEXT`",
    );
  const extra = Object.keys(options.git ?? {});
  if (extra.length > 0)
    throw new UsageError(
      `request ${id} is for a route: --host-key, --key-file, --token-env and --name are for a git repository request`,
      `approve it without them: bot-bottle approve ${id}`,
    );
  // The bundle checked the request when the agent made it; what the host applies it checks again.
  const problem = grantProblem(request);
  if (problem)
    throw new UsageError(
      `request ${id} cannot be granted: ${problem}`,
      `deny it: bot-bottle deny ${id} --reason "…"`,
    );
  const { backend, resources } = await findBottle(options.backends, slug);
  if (!resources.some((r) => r.role === "bundle" && r.state === "running"))
    throw new NoSuchBottleError(
      slug,
      "its bundle is not running: the request can no longer be granted",
    );
  const current = await readRunningRoutes(stateDir, slug);
  const rule = grantRule(id, request, options.until);
  const next = {
    ...current,
    generation: current.generation + 1,
    // Ended leases are dropped as the new set is written; the new grant goes last.
    routes: [
      ...current.routes.filter((r) => r.grant === undefined || (r.grant !== id && leaseHolds(r))),
      rule,
    ],
  };
  await loadRoutes(backend, resources, slug, join(stateDir, "bundle"), next);
  if (options.persist) await persistRoute(stateDir, slug, request);
  return describeGrant(request);
}

/** Adds the route to the bottle's routes in the manifest the bottle started from. */
function persistRoute(stateDir: string, slug: string, request: RouteRequest): Promise<void> {
  return appendToBottle(stateDir, slug, ["egress", "routes"], {
    host: request.host,
    ...(request.port !== undefined ? { port: request.port } : {}),
    ...(request.paths ? { paths: request.paths } : {}),
    ...(request.methods ? { methods: request.methods } : {}),
  });
}
