/**
 * The manifest, described once. The TypeScript types, the JSON Schema editors use (`bot-bottle
 * schema`), and docs/manifest.md are all derived from this file; every field has a sentence.
 * Rules that JSON Schema cannot say (cross-references, duplicates, conflicting host maps) are
 * refinements here too, so this module is the whole of what "valid" means — except template
 * names, which depend on the plugins installed on the machine (see load.ts).
 */
import { z } from "zod";
import { formatDuration, parseDuration } from "../shared/duration.js";
import { DEFAULT_SUPERVISE } from "../shared/supervise.js";
import {
  checkDuration,
  checkEnvName,
  checkExtraHostName,
  checkGitUsername,
  checkIpAddress,
  checkKnownHostKey,
  checkPathPrefix,
  checkRefPattern,
  checkRouteHost,
  GIT_NAME_PATTERN,
  HEADER_NAME_PATTERN,
  HTTP_METHODS,
  NAME_PATTERN,
  normaliseDnsName,
  parseGitUpstream,
} from "./rules.js";

/** Adds one issue per problem a pure rule reports, at the given path below the value. */
function rule<T>(check: (value: T) => string | undefined, path: (string | number)[] = []) {
  return (value: T, ctx: z.RefinementCtx) => {
    const problem = check(value);
    // A fresh array per issue: zod prefixes the issue's path in place, and a shared one would
    // grow with every problem this rule reports.
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: [...path] });
  };
}

/**
 * Cross-field checks run even when other fields already failed, so one pass reports them all.
 * They therefore see possibly malformed input and guard every step.
 */
const ALWAYS = { when: () => true };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkBottle(bottle: unknown, ctx: z.RefinementCtx): void {
  const git = isRecord(bottle) && Array.isArray(bottle["git"]) ? (bottle["git"] as unknown[]) : [];
  const seen = new Map<string, number>();
  const mapped = new Map<string, { index: number; ip: unknown }>();
  git.forEach((entry, i) => {
    if (!isRecord(entry)) return;
    const name = entry["name"];
    if (typeof name === "string") {
      const first = seen.get(name);
      if (first === undefined) seen.set(name, i);
      else
        ctx.addIssue({
          code: "custom",
          path: ["git", i, "name"],
          message: `repeats the name of git[${first}] — each git entry needs its own name`,
        });
    }
    const hosts = entry["extra_hosts"];
    if (!isRecord(hosts)) return;
    for (const [host, ip] of Object.entries(hosts)) {
      const key = normaliseDnsName(host) ?? host;
      const earlier = mapped.get(key);
      if (earlier === undefined) mapped.set(key, { index: i, ip });
      else if (earlier.index !== i && earlier.ip !== ip)
        ctx.addIssue({
          code: "custom",
          path: ["git", i, "extra_hosts", host],
          message: `maps a host that git[${earlier.index}].extra_hosts maps to a different address — one host has one address in a bottle: make git[${earlier.index}] and git[${i}] agree`,
        });
    }
  });
}

function checkAgentsNameBottles(manifest: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(manifest) || !isRecord(manifest["agents"]) || !isRecord(manifest["bottles"]))
    return;
  const bottles = manifest["bottles"];
  const names = Object.keys(bottles);
  for (const [name, agent] of Object.entries(manifest["agents"])) {
    if (!isRecord(agent) || typeof agent["bottle"] !== "string") continue;
    if (Object.hasOwn(bottles, agent["bottle"])) continue;
    const list = names.length ? names.map((b) => `"${b}"`).join(", ") : "none yet";
    ctx.addIssue({
      code: "custom",
      path: ["agents", name, "bottle"],
      message: `names a bottle that is not under "bottles" — use one of: ${list}, or add it`,
    });
  }
}

const envName = (what: string) =>
  z
    .string()
    .describe(
      `Name of the host environment variable that holds ${what}. The value is read when the bottle starts and handed only to the sidecar bundle; the manifest never holds it.`,
    )
    .superRefine(rule(checkEnvName));

const extraHosts = (purpose: string) =>
  z
    .record(
      z.string().superRefine(rule(checkExtraHostName)),
      z.string().superRefine(rule(checkIpAddress)),
    )
    .describe(
      `Host names mapped to fixed IP addresses ${purpose}, like /etc/hosts. Use it for hosts that are not in public DNS, or on purpose for private addresses (which are otherwise refused).`,
    );

export const GitUserSchema = z
  .strictObject({
    name: z.string().min(1).describe('Author and committer name, e.g. "Review Bot".'),
    email: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, 'must be an e-mail address, e.g. "bot@example.com"')
      .describe("Author and committer e-mail address."),
  })
  .describe("The identity the agent's commits carry inside the bottle.");

export const AgentSchema = z
  .strictObject({
    template: z
      .string()
      .min(1)
      .describe(
        'What runs in the bottle: a built-in provider — "claude" (Claude Code), "codex" (Codex), or "shell" (a plain Debian image with git, curl and node, for bringing your own agent) — or the name of an installed user plugin.',
      ),
    bottle: z
      .string()
      .describe("Name of the bottle, under `bottles` in this same file, that the agent runs in."),
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]*$/, 'must be a model name, e.g. "claude-sonnet-4-5"')
      .max(200)
      .optional()
      .describe(
        "The model the agent asks its API for, passed to its CLI (claude --model, codex's `model`). Leave out for the CLI's default.",
      ),
    prompt: z
      .string()
      .optional()
      .describe(
        "Instructions given to the agent when it starts: Claude Code appends them to its system prompt, Codex reads them as its AGENTS.md.",
      ),
    skills: z
      .array(z.string().min(1))
      .optional()
      .describe(
        "Paths of skill folders to install in the agent (Claude Code: ~/.claude/skills/<name>/, Codex: ~/.codex/skills/<name>/), relative to this file. Each holds a SKILL.md.",
      ),
    git_user: GitUserSchema.optional(),
    forward_host_credentials: z
      .boolean()
      .default(false)
      .describe(
        "Let the agent use the operator's own model-provider login from the host (e.g. a Claude Code sign-in). The real credential stays in the sidecar bundle; the agent sees a placeholder.",
      ),
    dockerfile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Path of a Dockerfile, relative to this file, layered on the template's image: it starts `ARG BASE_IMAGE` then `FROM ${BASE_IMAGE}`, and its folder is the build context. Rebuilt only when it or its folder changes.",
      ),
  })
  .describe("One agent: what runs, in which bottle, with which instructions.");

export const RouteAuthSchema = z
  .strictObject({
    header: z
      .string()
      .regex(
        HEADER_NAME_PATTERN,
        'must be an HTTP header name, e.g. "authorization" or "x-api-key"',
      )
      .default("authorization")
      .describe("The request header the egress proxy sets to the real credential."),
    scheme: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9._~+/-]*$/, 'must be one word, e.g. "Bearer" or "token"')
      .optional()
      .describe(
        'Written before the token in the header, e.g. "Bearer" gives "authorization: Bearer <token>". Leave out to send the token alone.',
      ),
    token_env: envName("the real token"),
  })
  .describe(
    "Credential injection: the agent sends a placeholder, and the proxy sets this header to the real token on the way out.",
  );

export const RouteSchema = z
  .strictObject({
    host: z
      .string()
      .describe(
        'The host this route allows: a DNS name ("api.anthropic.com"), or "*." plus a name of at least two labels ("*.githubusercontent.com"). No scheme, path or port.',
      ),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe(
        "The one port this route allows. Leave out for the usual ones: 443 for HTTPS, 80 for plain HTTP.",
      ),
    allow_ip_literal: z
      .boolean()
      .default(false)
      .describe(
        "Allow `host` to be an IP address instead of a DNS name. Off by default. A private, loopback, link-local or reserved address is still refused unless `extra_hosts` maps a name to that address.",
      ),
    paths: z
      .array(z.string().superRefine(rule(checkPathPrefix)))
      .min(1)
      .optional()
      .describe(
        'Path prefixes this route allows, matched at "/" boundaries against the path exactly as sent: "/v1/" allows what is under /v1/, "/v1" also allows /v1 itself but not /v10. Write them plain (no "%", ";", "\\", "." or ".." segments). On such a route the proxy refuses requests whose path could be read two ways (dot segments, escaped "/" or letters, double encoding, ";" parameters). Leave out to allow every path.',
      ),
    methods: z
      .array(z.enum(HTTP_METHODS))
      .min(1)
      .optional()
      .describe("HTTP methods this route allows, in upper case. Leave out to allow every method."),
    tls_passthrough: z
      .boolean()
      .default(false)
      .describe(
        "Tunnel TLS to this host without decrypting it, for clients that pin certificates. The host is still checked, but paths, methods, credential injection and secret scanning cannot apply.",
      ),
    auth: RouteAuthSchema.optional(),
  })
  .superRefine((route, ctx) => {
    rule(checkRouteHost.bind(null, route.host, route.allow_ip_literal), ["host"])(route.host, ctx);
    if (route.tls_passthrough) {
      for (const field of ["auth", "paths", "methods"] as const) {
        if (route[field] !== undefined)
          ctx.addIssue({
            code: "custom",
            path: [field],
            message: `cannot be used with "tls_passthrough": true (the proxy does not decrypt passthrough traffic) — remove one of the two`,
          });
      }
    }
  })
  .describe(
    "One declared way out: requests that match it are allowed; everything else is refused.",
  );

export const EgressSchema = z
  .strictObject({
    routes: z
      .array(RouteSchema)
      .default([])
      .describe("The routes the agent may use. A request that matches none is refused."),
    extra_hosts: extraHosts("for the egress proxy").default({}),
    trust_ca: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Path of a PEM file of extra certificate authorities the proxy trusts for upstream TLS (a corporate proxy, a test server), relative to this file.",
      ),
    network: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a Docker network name, e.g. "corp-services"')
      .optional()
      .describe(
        "An existing Docker network the sidecar bundle also joins, to reach services on it. The agent never joins it.",
      ),
  })
  .describe("What the agent may reach over HTTP(S), through the egress proxy.");

export const GitKeySchema = z
  .discriminatedUnion("provider", [
    z
      .strictObject({
        provider: z.literal("static").describe("Use an existing private key file."),
        path: z
          .string()
          .min(1)
          .describe("Path of the SSH private key file (relative to this file; ~ is your home)."),
      })
      .describe("An SSH private key file on the host."),
    z
      .strictObject({
        provider: z.literal("gitea").describe("Create a deploy key through the Gitea API."),
        api_url: z
          .url({
            protocol: /^https?$/,
            error: 'must be an http(s) URL, e.g. "https://gitea.example.com"',
          })
          .describe("Base URL of the Gitea server."),
        repo: z
          .string()
          .regex(/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/, 'must be "owner/name"')
          .describe('The repository on that server, as "owner/name".'),
        provisioner_token_env: envName("a Gitea token allowed to add deploy keys"),
      })
      .describe("A per-bottle deploy key created (and removed) through the Gitea API."),
  ])
  .describe(
    'SSH upstreams (required): where the git gate\'s key comes from: {"provider": "static", "path": …} or {"provider": "gitea", …}. The agent never sees it.',
  );

/**
 * What a git entry's `push` is when left out: branches only, fast-forward only, no deletions.
 * A function, so that every parse gets its own list (zod hands a default value out as is).
 */
const defaultPush = () => ({ refs: ["refs/heads/*"], force: false, delete: false });

/** The HTTP user name sent with an HTTPS upstream's token when `username` is left out. */
export const DEFAULT_GIT_USERNAME = "x-access-token";

export const GitPushSchema = z
  .strictObject({
    refs: z
      .array(z.string().superRefine(rule(checkRefPattern)))
      .default(() => defaultPush().refs)
      .describe(
        'Ref patterns a push may update, each a full ref name starting "refs/": "*" matches within one segment ("refs/heads/feature-*"), "**" as a whole segment matches across segments ("refs/heads/**"). A push that touches any other ref is refused whole. An empty list allows no push at all (fetch only).',
      ),
    force: z
      .boolean()
      .default(false)
      .describe(
        "Allow non-fast-forward updates (a force push: the new commit does not contain the ref's old one).",
      ),
    delete: z.boolean().default(false).describe("Allow a push to delete a ref."),
  })
  .describe(
    "Which ref updates the gate forwards upstream; a push asking for any other is refused whole. Leave out for branches only, fast-forward only, no deletions.",
  );

const SSH_ONLY = "is for SSH upstreams";
const HTTPS_ONLY = "is for HTTPS upstreams";

/**
 * The fields an upstream's kind requires or refuses. Runs even when other fields failed (so one
 * pass reports everything), hence the guards; an unreadable `upstream` is reported by its own
 * field and checked no further here.
 */
function checkGitEntry(entry: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(entry) || typeof entry["upstream"] !== "string") return;
  const parsed = parseGitUpstream(entry["upstream"]);
  if ("problem" in parsed) return;
  const issue = (field: string, message: string) =>
    ctx.addIssue({ code: "custom", path: [field], message });
  const given = (field: string) => entry[field] !== undefined;
  switch (parsed.kind) {
    case "ssh":
      if (!given("known_host_key"))
        issue(
          "known_host_key",
          "is missing — an SSH upstream needs its host key pinned: the gate connects only to a host presenting exactly this key. Get it with `ssh-keyscan -t ed25519 HOST` and check it against the host's published fingerprint",
        );
      if (!given("key"))
        issue(
          "key",
          'is missing — an SSH upstream needs the key the gate signs in with (the agent never sees it): {"provider": "static", "path": "…"} or {"provider": "gitea", …}',
        );
      if (given("token_env"))
        issue(
          "token_env",
          `${HTTPS_ONLY} — an SSH upstream is authenticated with \`key\`: remove \`token_env\`, or write \`upstream\` as an https:// URL`,
        );
      if (given("username"))
        issue(
          "username",
          `${HTTPS_ONLY} — an SSH upstream's user name is the part before "@" in \`upstream\`: remove \`username\``,
        );
      break;
    case "https":
      if (given("known_host_key"))
        issue(
          "known_host_key",
          `${SSH_ONLY} — an HTTPS upstream is verified by TLS (its certificate) and authenticated with \`token_env\`: remove \`known_host_key\`, or write \`upstream\` as an SSH URL`,
        );
      if (given("key"))
        issue(
          "key",
          `${SSH_ONLY} — an HTTPS upstream is verified by TLS and authenticated with a token: name the host variable holding it in \`token_env\` and remove \`key\`, or write \`upstream\` as an SSH URL`,
        );
      break;
  }
}

export const GitUpstreamSchema = z
  .strictObject({
    name: z
      .string()
      .regex(GIT_NAME_PATTERN, 'must be letters, digits, ".", "_" or "-", e.g. "app"')
      .describe("Short name of the repository inside the bottle (git://git-gate/<name>)."),
    upstream: z
      .string()
      .superRefine((value, ctx) => {
        const parsed = parseGitUpstream(value);
        if ("problem" in parsed) ctx.addIssue({ code: "custom", message: parsed.problem });
      })
      .describe(
        'The repository the gate fetches from and pushes to: over SSH, "git@github.com:owner/repo.git" or "ssh://git@host:2222/owner/repo.git" (with `known_host_key` and `key`); or over HTTPS, "https://github.com/owner/repo.git" (with `token_env`). http://, git:// and file:// are refused.',
      ),
    known_host_key: z
      .string()
      .superRefine(rule(checkKnownHostKey))
      .optional()
      .describe(
        'SSH upstreams (required): the upstream\'s OpenSSH public host key line, e.g. "ssh-ed25519 AAAA…" (from `ssh-keyscan -t ed25519 HOST`, checked against the fingerprint the host publishes). The gate connects only to a host presenting exactly this key.',
      ),
    key: GitKeySchema.optional(),
    token_env: envName(
      "the token the gate authenticates with (HTTPS upstreams only; sent as the HTTP password with `username`). Leave out to fetch anonymously",
    ).optional(),
    username: z
      .string()
      .superRefine(rule(checkGitUsername))
      .optional()
      // Filled in by the transform below; declared here so editors and the docs show it.
      .meta({
        default: DEFAULT_GIT_USERNAME,
        description:
          'HTTPS upstreams: the HTTP user name sent with the token from `token_env` (GitHub expects "x-access-token"; GitLab takes "oauth2", Bitbucket "x-token-auth").',
      }),
    push: GitPushSchema.default(defaultPush),
    extra_hosts: extraHosts("for this upstream").default({}),
  })
  .superRefine(checkGitEntry, ALWAYS)
  // The default is filled here rather than by the field, so that an SSH entry that names a
  // `username` (which it cannot use) is refused above instead of being indistinguishable from one
  // that left it out.
  .transform(({ username, ...entry }) => ({
    ...entry,
    username: username ?? DEFAULT_GIT_USERNAME,
  }))
  .describe(
    "One git upstream the agent can fetch from and push to through the git gate, as git://git-gate/<name>.git.",
  );

const WAIT_LIMITS = { min: 0, max: 3_600 };
const TIMEOUT_LIMITS = { min: 10, max: 7 * 86_400 };

export const SuperviseNotifySchema = z
  .strictObject({
    command: z
      .array(z.string().min(1))
      .min(1)
      .describe(
        'The program and its arguments, e.g. ["ntfy", "publish", "mytopic"]: run directly (never through a shell) with the request as JSON on its stdin and BOT_BOTTLE_SLUG, BOT_BOTTLE_REQUEST_ID in its environment.',
      ),
  })
  .describe("A program run on the host for each new request, to tell the operator.");

export const SuperviseOptionsSchema = z
  .strictObject({
    wait: z
      .string()
      .superRefine(rule((v: string) => checkDuration(v, WAIT_LIMITS)))
      .default(`${DEFAULT_SUPERVISE.waitSeconds}s`)
      .describe(
        'How long the agent\'s request waits for a decision before it is told "pending" with the request\'s id (it can ask again with request_status), e.g. "120s"; at most "1h".',
      ),
    timeout: z
      .string()
      .superRefine(rule((v: string) => checkDuration(v, TIMEOUT_LIMITS)))
      .default(formatDuration(DEFAULT_SUPERVISE.timeoutSeconds))
      .describe(
        'Operator silence for this long denies a request ("denied (timeout)"), e.g. "1h"; from "10s" to "7d".',
      ),
    rate_per_minute: z
      .number()
      .int()
      .min(1)
      .max(600)
      .default(DEFAULT_SUPERVISE.ratePerMinute)
      .describe("Requests a minute the agent may make; the rest are refused at once."),
    notify: SuperviseNotifySchema.optional(),
  })
  .superRefine((options, ctx) => {
    // Only two durations that are each fine are compared: one problem is reported once.
    if (checkDuration(options.wait, WAIT_LIMITS) || checkDuration(options.timeout, TIMEOUT_LIMITS))
      return;
    const wait = parseDuration(options.wait);
    const timeout = parseDuration(options.timeout);
    if (wait !== undefined && timeout !== undefined && wait > timeout)
      ctx.addIssue({
        code: "custom",
        path: ["wait"],
        message:
          'is longer than `timeout`: a request would be denied before the agent is told it is pending — make `wait` shorter, e.g. "120s"',
      });
  })
  .describe("How the supervise MCP server treats the agent's requests.");

/** Supervise as the rest of bot-bottle reads it: off, or on with numbers in seconds. */
function superviseSettings(value: boolean | z.output<typeof SuperviseOptionsSchema>) {
  if (value === false) return false as const;
  const options = value === true ? SuperviseOptionsSchema.parse({}) : value;
  return {
    // Both parse: the schema refused the manifest otherwise.
    wait_seconds: parseDuration(options.wait) ?? DEFAULT_SUPERVISE.waitSeconds,
    timeout_seconds: parseDuration(options.timeout) ?? DEFAULT_SUPERVISE.timeoutSeconds,
    rate_per_minute: options.rate_per_minute,
    ...(options.notify ? { notify: { command: options.notify.command } } : {}),
  };
}

export const SuperviseSchema = z
  .union([z.boolean(), SuperviseOptionsSchema], {
    error:
      'must be true or false, or an object such as { "wait": "120s", "timeout": "1h", "rate_per_minute": 10 }',
  })
  .default(true)
  .transform(superviseSettings)
  .describe(
    'The supervise MCP server, through which the agent asks the operator for more (a route, a git upstream, an answer): true (on, with the defaults: wait "120s", timeout "1h", 10 requests a minute), false (off), or an object to set them.',
  );

/** The backends a bottle can run on. */
export const BACKEND_NAMES = ["docker", "smolmachines"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export const BottleSchema = z
  .strictObject({
    backend: z
      .enum(BACKEND_NAMES)
      .default("docker")
      .describe(
        'What runs the agent: "docker" (a container on this machine\'s Docker engine) or "smolmachines" (a smolvm microVM: a hardware boundary instead of a shared kernel; the sidecar bundle stays a container). `start --backend` overrides it.',
      ),
    dockerfile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Path of a Dockerfile, relative to this file, layered last on the agent's image for every agent in this bottle (after the agent's own `dockerfile`). Same form: `ARG BASE_IMAGE`, `FROM ${BASE_IMAGE}`.",
      ),
    egress: EgressSchema.default({ routes: [], extra_hosts: {} }),
    // prefault, not default: a git entry transforms (fills `username`), and JSON Schema drops a
    // default that is an output value; a prefault is an input value and stays.
    git: z
      .array(GitUpstreamSchema)
      .prefault([])
      .describe("Git upstreams mirrored by the git gate."),
    supervise: SuperviseSchema,
  })
  .superRefine(checkBottle, ALWAYS)
  .describe("A sandbox: what the agent inside may reach (egress, git) and how it asks for more.");

export const ManifestSchema = z
  .strictObject({
    $schema: z
      .string()
      .optional()
      .describe("Path or URL of the JSON Schema editors use to complete and check this file."),
    agents: z
      .record(z.string().regex(NAME_PATTERN), AgentSchema)
      .describe("The agents this file can start, by name."),
    bottles: z
      .record(z.string().regex(NAME_PATTERN), BottleSchema)
      .describe("The bottles agents run in, by name."),
  })
  .superRefine(checkAgentsNameBottles, ALWAYS)
  .describe("A bot-bottle manifest: the agents you run and the bottles they run in.");

export type ManifestFile = z.output<typeof ManifestSchema>;
export type ManifestInput = z.input<typeof ManifestSchema>;
export type Agent = z.output<typeof AgentSchema>;
export type Bottle = z.output<typeof BottleSchema>;
export type Route = z.output<typeof RouteSchema>;
export type RouteAuth = z.output<typeof RouteAuthSchema>;
export type GitUpstream = z.output<typeof GitUpstreamSchema>;
export type GitKey = z.output<typeof GitKeySchema>;
export type GitPush = z.output<typeof GitPushSchema>;
export type GitUser = z.output<typeof GitUserSchema>;
export type Supervise = z.output<typeof SuperviseSchema>;
