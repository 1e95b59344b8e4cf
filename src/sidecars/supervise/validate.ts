/**
 * What the agent may ask the operator for, decided before anyone sees it: each tool's input
 * (the JSON Schema the model is shown comes from the same zod schemas), hosts normalised as the
 * manifest's route hosts are, and everything over-broad or pointed inward refused with a reason
 * the agent can act on. Pure: no files, no clock.
 */
import { domainToUnicode } from "node:url";
import { z } from "zod";
import { configProblems, formatJsonPath } from "../../shared/config-file.js";
import { isIpLiteral, normaliseDnsName } from "../../shared/hosts.js";
import {
  checkPathPrefix,
  checkRouteHost,
  HTTP_METHODS,
  parseGitUpstream,
  type GitUpstreamAddress,
} from "../../shared/route-checks.js";
import { REQUEST_ID, type RequestBody, type SuperviseConfig } from "../../shared/supervise.js";

/** The longest reason or question the operator is asked to read. */
export const MAX_TEXT = 2000;
const MAX_PATHS = 16;
const MAX_PATH = 256;

const reason = z
  .string()
  .min(1)
  .max(MAX_TEXT)
  .describe(`Why the work needs it, for the operator (at most ${MAX_TEXT} characters).`);

/** Each tool's input, as the model is shown it and as it is checked (no other field is taken). */
export const TOOL_INPUTS = {
  request_egress_route: z.strictObject({
    host: z
      .string()
      .min(1)
      .max(253)
      .describe(
        'The host to reach, e.g. "api.example.com", or "*." and a domain for its subdomains, e.g. "*.example.com".',
      ),
    paths: z
      .array(z.string().min(1).max(MAX_PATH))
      .min(1)
      .max(MAX_PATHS)
      .optional()
      .describe('Path prefixes to allow, each starting with "/", e.g. ["/v1/"]; omit for all.'),
    methods: z
      .array(z.enum(HTTP_METHODS))
      .min(1)
      .max(HTTP_METHODS.length)
      .optional()
      .describe('HTTP methods to allow, e.g. ["GET"]; omit for all.'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("The port, only when it is not 443 (HTTPS) or 80 (HTTP)."),
    reason,
  }),
  request_git_repo: z.strictObject({
    upstream: z
      .string()
      .min(1)
      .max(MAX_TEXT)
      .describe(
        'The repository URL, without credentials: "git@host:owner/repo.git", "ssh://git@host:2222/owner/repo.git" or "https://host/owner/repo.git".',
      ),
    reason,
  }),
  ask_operator: z.strictObject({
    question: z
      .string()
      .min(1)
      .max(MAX_TEXT)
      .describe(`The question, in plain words (at most ${MAX_TEXT} characters).`),
  }),
  request_status: z.strictObject({
    id: z
      .string()
      .regex(REQUEST_ID, 'must be a request id such as "r-7k2m9x4p0q"')
      .describe('The id a pending result gave, e.g. "r-7k2m9x4p0q".'),
  }),
} as const;

export type ToolName = keyof typeof TOOL_INPUTS;

/** What the checks need from the config: what is reserved, and what the bottle has already. */
export type CheckContext = Pick<SuperviseConfig, "reservedHosts" | "routes" | "gitUpstreams">;

export type Checked =
  { ok: true; body: RequestBody; flags: string[] } | { ok: false; reason: string };

const refused = (reason: string): Checked => ({ ok: false, reason });

/** A field name that could carry a credential: such a request is refused, never passed on. */
const CREDENTIAL_FIELD = /auth|token|secret|passw|credential|cookie|header|bearer|session|keys?$/i;

/**
 * The input as the tool's schema reads it, or why it cannot be taken. Fields the tool does not
 * take are refused first, with a reason of their own when one looks like a credential.
 */
export function checkInput<T extends ToolName>(
  tool: T,
  input: unknown,
): { ok: true; value: z.output<(typeof TOOL_INPUTS)[T]> } | { ok: false; reason: string } {
  const schema = TOOL_INPUTS[tool];
  if (input !== null && typeof input === "object" && !Array.isArray(input)) {
    const known = Object.keys(schema.shape);
    const extra = Object.keys(input).filter((k) => !known.includes(k));
    const shown = (key: string) => formatJsonPath([key.length > 64 ? key.slice(0, 64) : key]);
    const credential = extra.find((k) => CREDENTIAL_FIELD.test(k));
    if (credential !== undefined)
      return {
        ok: false,
        reason: `a request never carries a credential (field ${shown(credential)}): ask for the access alone; the operator adds any credential when approving`,
      };
    if (extra.length > 0)
      return {
        ok: false,
        reason: `${shown(extra[0] as string)} is not a field of ${tool}: it takes ${known.join(", ")}`,
      };
  }
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return { ok: true, value: parsed.data as z.output<(typeof TOOL_INPUTS)[T]> };
  const first = configProblems(parsed.error.issues, input)[0];
  return {
    ok: false,
    reason: first ? `${first.path} ${first.message}` : `the input does not match ${tool}'s schema`,
  };
}

/**
 * Suffixes under which names belong to the host's networks, its loopback or a cloud's metadata
 * service, never to the internet: a name equal to one or below one is refused.
 */
const INTERNAL_SUFFIXES = [
  "localhost",
  "local",
  "internal",
  "localdomain",
  "lan",
  "home",
  "corp",
  "intranet",
  "private",
  "home.arpa",
  "arpa",
];

/**
 * Public suffixes besides the top-level domains (every one-label name counts as one): the
 * second levels under which registries sell names (co.uk, com.au, …) and hosting platforms whose
 * subdomains belong to different customers (github.io, …). A wildcard over one of them would
 * grant every site under it. A small list of the common ones, not the whole Public Suffix List.
 */
const PUBLIC_SUFFIXES = new Set([
  ...["co", "org", "me", "ltd", "plc", "net", "ac", "gov", "sch", "nhs", "police"].map(
    (s) => `${s}.uk`,
  ),
  ...["com", "net", "org", "edu", "gov", "asn", "id"].map((s) => `${s}.au`),
  ...["co", "net", "org", "govt", "ac"].map((s) => `${s}.nz`),
  ...["co", "ne", "or", "ac", "go", "ad", "ed", "gr", "lg"].map((s) => `${s}.jp`),
  ...["co", "or", "ne", "go", "ac"].map((s) => `${s}.kr`),
  ...["com", "net", "org", "gov", "edu", "ac"].map((s) => `${s}.cn`),
  ...["com", "org", "net", "edu", "gov"].flatMap((s) => [`${s}.hk`, `${s}.tw`, `${s}.sg`]),
  ...["co", "net", "org", "firm", "gen", "ind", "ac", "edu", "gov"].map((s) => `${s}.in`),
  ...["co", "or", "ac", "go"].flatMap((s) => [`${s}.id`, `${s}.th`]),
  ...["co", "org", "net", "gov", "ac"].flatMap((s) => [`${s}.za`, `${s}.il`]),
  ...["com", "org", "net"].flatMap((s) =>
    ["my", "ph", "vn", "tr", "br", "ar", "mx", "co", "pe", "ua", "ru", "pl", "es", "pt"].map(
      (cc) => `${s}.${cc}`,
    ),
  ),
  ...["gov.br", "edu.br", "gob.ar", "gob.mx", "co.at", "or.at", "com.gr", "co.ke", "or.ke"],
  ...["com.ng", "com.eg", "com.sa", "com.pk", "com.bd", "co.ve", "com.ve", "eu.org"],
  // Hosting platforms: each subdomain is another customer's.
  ...["github.io", "githubusercontent.com", "gitlab.io", "pages.dev", "workers.dev", "r2.dev"],
  ...["netlify.app", "vercel.app", "now.sh", "herokuapp.com", "appspot.com", "web.app"],
  ...["firebaseapp.com", "run.app", "cloudfunctions.net", "azurewebsites.net", "cloudapp.net"],
  ...["azurestaticapps.net", "blob.core.windows.net", "cloudfront.net", "amazonaws.com"],
  ...["s3.amazonaws.com", "elasticbeanstalk.com", "blogspot.com", "fly.dev", "onrender.com"],
  ...["ngrok.io", "ngrok.app", "ngrok-free.app", "trycloudflare.com", "surge.sh", "glitch.me"],
  ...["repl.co", "replit.dev", "deno.dev", "duckdns.org", "nip.io", "sslip.io", "readthedocs.io"],
  ...["webflow.io", "wixsite.com", "myshopify.com", "codesandbox.io", "pythonanywhere.com"],
]);

export function isPublicSuffix(name: string): boolean {
  return !name.includes(".") || PUBLIC_SUFFIXES.has(name);
}

function internalProblem(suffix: string): { problem: string } {
  return {
    problem: `host is a local or internal name (.${suffix}): the bottle never reaches the host's network, its loopback or a metadata service`,
  };
}

function publicSuffixProblem(suffix: string): { problem: string } {
  return {
    problem: `host is a wildcard over a public suffix (${suffix}): every site under it belongs to someone else — ask for your own domain, e.g. *.example.${suffix}`,
  };
}

const within = (name: string, suffix: string) => name === suffix || name.endsWith(`.${suffix}`);

/** A requested host (a name, or "*." and a name), normalised, or why it is refused. */
export function checkRequestHost(
  raw: string,
  reservedHosts: readonly string[],
  wildcardAllowed = true,
): { host: string; flags: string[] } | { problem: string } {
  const ipProblem = {
    problem:
      "host is an IP address: ask for the host by its DNS name (IP addresses are never granted)",
  };
  if (isIpLiteral(raw)) return ipProblem;
  if (/^[^:[\]]+:[0-9]*$/.test(raw))
    return { problem: 'host includes a port: write the name alone and the port in "port"' };
  // "*.com", "*.internal": named for what they are, before the syntax check's general sentence.
  const tld = raw.startsWith("*.") ? normaliseDnsName(raw.slice(2)) : undefined;
  if (tld !== undefined && !tld.includes("."))
    return INTERNAL_SUFFIXES.includes(tld) ? internalProblem(tld) : publicSuffixProblem(tld);
  const problem = checkRouteHost(raw, false);
  if (problem !== undefined) return { problem: `host ${problem}` };
  const wildcard = raw.startsWith("*.");
  if (wildcard && !wildcardAllowed)
    return { problem: "host is a wildcard: name one host, e.g. git.example.com" };
  const name = normaliseDnsName(wildcard ? raw.slice(2) : raw);
  if (name === undefined) return { problem: "host is not a valid DNS host name" };
  // Spellings the URL parser reads as an address ("0x7f.1", "127.1") never reach the checks below.
  if (isIpLiteral(name)) return ipProblem;
  const host = wildcard ? `*.${name}` : name;
  const internal = INTERNAL_SUFFIXES.find((s) => within(name, s));
  if (internal !== undefined) return internalProblem(internal);
  const reserved = reservedHosts
    .map((r) => normaliseDnsName(r))
    .some((r) => r !== undefined && (within(name, r) || (wildcard && r.endsWith(`.${name}`))));
  if (reserved)
    return {
      problem:
        "host is one of the bundle's own names or the host machine's: these are never granted",
    };
  if (wildcard && isPublicSuffix(name)) return publicSuffixProblem(name);
  if (!name.includes("."))
    return {
      problem: "host is a single-label name: ask for a fully qualified name, e.g. api.example.com",
    };
  if (isPublicSuffix(name))
    return { problem: `host is a public suffix (${name}), not a site: name the host under it` };
  return { host, flags: mixedScript(name) ? ["mixed-script host name"] : [] };
}

/** A route of the config ("host" or "host:port"), split. */
function parseRoute(route: string): { host: string; port: number | undefined } {
  const m = /^([^:]+):([0-9]{1,5})$/.exec(route);
  const host = m?.[1] ?? route;
  const wildcard = host.startsWith("*.");
  const name = normaliseDnsName(wildcard ? host.slice(2) : host) ?? host.toLowerCase();
  return { host: wildcard ? `*.${name}` : name, port: m?.[2] ? Number(m[2]) : undefined };
}

/** Does a route's host pattern cover every host `host` (a name or a wildcard) stands for? */
function covers(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith("*.")) return false;
  const base = pattern.slice(2);
  const name = host.startsWith("*.") ? host.slice(2) : host;
  return name.endsWith(`.${base}`) || (host.startsWith("*.") && name === base);
}

/** A route without a port takes 443 (TLS) and 80 (plain HTTP); a request without one means those. */
function portCovered(routePort: number | undefined, port: number | undefined): boolean {
  if (routePort === undefined) return port === undefined || port === 443 || port === 80;
  return routePort === port || (port === undefined && routePort === 443);
}

/** The route the bottle already has for this host and port, if any. */
export function existingRoute(
  routes: readonly string[],
  host: string,
  port: number | undefined,
): string | undefined {
  return routes.find((r) => {
    const route = parseRoute(r);
    return covers(route.host, host) && portCovered(route.port, port);
  });
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

export function checkEgressRoute(input: unknown, ctx: CheckContext): Checked {
  const read = checkInput("request_egress_route", input);
  if (!read.ok) return refused(read.reason);
  const { host: raw, paths, methods, port } = read.value;
  const checked = checkRequestHost(raw, ctx.reservedHosts);
  if ("problem" in checked) return refused(checked.problem);
  for (const [i, path] of (paths ?? []).entries()) {
    const problem = checkPathPrefix(path);
    if (problem !== undefined) return refused(`paths[${i}] ${problem}`);
  }
  const text = checkText("reason", read.value.reason);
  if (text !== undefined) return refused(text);
  const existing = existingRoute(ctx.routes, checked.host, port);
  if (existing !== undefined)
    return refused(
      `already allowed: this bottle has the route ${parseRoute(existing).host}${port !== undefined ? ` for port ${port}` : ""} — use it through the proxy`,
    );
  return {
    ok: true,
    body: {
      kind: "egress-route",
      host: checked.host,
      ...(port !== undefined ? { port } : {}),
      ...(paths ? { paths: unique(paths) } : {}),
      ...(methods ? { methods: unique(methods) } : {}),
      reason: read.value.reason,
    },
    flags: checked.flags,
  };
}

/** A repository path compared loosely: no leading "/" or "~/", no trailing "/" or ".git". */
function repoPath(path: string): string {
  return path
    .replace(/^\/?(~\/)?/, "")
    .replace(/\/+$/, "")
    .replace(/\.git$/, "");
}

function sameRepo(a: GitUpstreamAddress, b: GitUpstreamAddress): boolean {
  return a.host === b.host && repoPath(a.path) === repoPath(b.path);
}

export function checkGitRepo(input: unknown, ctx: CheckContext): Checked {
  const read = checkInput("request_git_repo", input);
  if (!read.ok) return refused(read.reason);
  const { upstream } = read.value;
  const parsed = parseGitUpstream(upstream);
  if ("problem" in parsed) return refused(`upstream ${parsed.problem}`);
  const checked = checkRequestHost(parsed.host, ctx.reservedHosts, false);
  if ("problem" in checked) return refused(`upstream ${checked.problem}`);
  const text = checkText("reason", read.value.reason);
  if (text !== undefined) return refused(text);
  const declared = ctx.gitUpstreams.some((u) => {
    const other = parseGitUpstream(u);
    return !("problem" in other) && sameRepo(parsed, other);
  });
  if (declared)
    return refused(
      "already allowed: this bottle's git gate already serves that repository — use its git://git-gate/ remote",
    );
  return {
    ok: true,
    body: { kind: "git-repo", upstream, reason: read.value.reason },
    flags: checked.flags,
  };
}

export function checkQuestion(input: unknown): Checked {
  const read = checkInput("ask_operator", input);
  if (!read.ok) return refused(read.reason);
  const text = checkText("question", read.value.question);
  if (text !== undefined) return refused(text);
  return { ok: true, body: { kind: "question", question: read.value.question }, flags: [] };
}

/** Text for the operator: something to read, and not more than they will read. */
function checkText(field: string, text: string): string | undefined {
  if (text.trim() === "") return `${field} is empty: say it in words`;
  if (text.length > MAX_TEXT) return `${field} is longer than ${MAX_TEXT} characters`;
  return undefined;
}

/** Scripts a host name's letters are told apart by (anything else counts as "other"). */
const SCRIPTS = [
  "Latin",
  "Cyrillic",
  "Greek",
  "Armenian",
  "Georgian",
  "Hebrew",
  "Arabic",
  "Han",
  "Hiragana",
  "Katakana",
  "Hangul",
  "Bopomofo",
  "Thai",
  "Devanagari",
  "Cherokee",
].map((name) => [name, new RegExp(`\\p{Script=${name}}`, "u")] as const);

/** Scripts that are written together (UTS #39's "highly restrictive" combinations). */
const TOGETHER = [
  ["Latin", "Han", "Hiragana", "Katakana"],
  ["Latin", "Han", "Bopomofo"],
  ["Latin", "Han", "Hangul"],
];

/**
 * True when a name's letters (read as Unicode: punycode decoded) come from scripts not normally
 * written together, e.g. Latin and Cyrillic: the shape of a look-alike name. Flagged for the
 * operator, not refused.
 */
export function mixedScript(host: string): boolean {
  const unicode = domainToUnicode(host) || host;
  const scripts = new Set<string>();
  for (const char of unicode) {
    if (!/\p{L}/u.test(char)) continue;
    scripts.add(SCRIPTS.find(([, re]) => re.test(char))?.[0] ?? "other");
  }
  if (scripts.size <= 1) return false;
  return !TOGETHER.some((set) => [...scripts].every((s) => set.includes(s)));
}
