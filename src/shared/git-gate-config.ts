/**
 * What the git gate serves: written by the host into the bottle's state dir from the plan, read by
 * src/sidecars/git-gate inside the bundle; and the audit line the gate writes per fetch, push and
 * refusal, read back by the host (`bot-bottle logs SLUG --git`). Each is described once, as a zod
 * schema with a sentence on every field; both sides parse with it. Never a secret value: only the
 * names of the bundle's variables that hold them.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = (what: string) =>
  z
    .string()
    .regex(ENV_NAME, "must be an environment variable name (letters, digits and _)")
    .describe(`Name of the bundle's variable that holds ${what}; never the value.`);
const port = z.number().int().min(1).max(65535);

/** A repository's name inside the bottle: `git://git-gate/<name>.git`. */
export const GIT_REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const GitPushPolicySchema = z
  .strictObject({
    refs: z
      .array(z.string().regex(/^refs\/[^\s]*$/, 'must be a ref pattern such as "refs/heads/*"'))
      .describe(
        'Ref patterns a push may update ("*" matches within one path segment, "**" across); empty: no push at all.',
      ),
    force: z
      .boolean()
      .describe("A ref may be moved to a commit that does not contain its old one."),
    delete: z.boolean().describe("A ref may be deleted."),
  })
  .describe("Which ref updates the gate forwards; any other update refuses the whole push.");

export const GitSshUpstreamSchema = z
  .strictObject({
    kind: z.literal("ssh"),
    user: z.string().min(1).describe("The login the gate presents (git@… → git)."),
    host: z.string().min(1).describe("The host name the upstream's key is pinned for."),
    port: port.describe("The SSH port."),
    path: z
      .string()
      .min(1)
      .describe(
        'The repository path as the manifest gives it: relative to the login\'s home ("org/repo.git") or absolute.',
      ),
    knownHostKey: z
      .string()
      .min(1)
      .describe('The pinned host key, "type base64": any other key fails before authentication.'),
    key: z
      .discriminatedUnion("provider", [
        z.strictObject({
          provider: z.literal("static"),
          env: envName("the gate's SSH private key (OpenSSH or PEM text)"),
        }),
        z.strictObject({
          provider: z.literal("granted"),
        }),
        z.strictObject({
          provider: z.literal("gitea"),
          apiUrl: z.string().min(1).describe("Base URL of the Gitea server."),
          repo: z.string().min(1).describe('The repository on it, "owner/name".'),
          tokenEnv: envName("a Gitea token allowed to add deploy keys"),
          title: z
            .string()
            .min(1)
            .describe("The deploy key's title, carrying the slug: how stop and cleanup find it."),
        }),
      ])
      .describe(
        "static: a key from the operator's file, in a bundle variable; granted: a key the operator handed over when approving the repository (`bot-bottle approve --key-file`), written into the gate's private home (grants/<name>.key); gitea: a key pair the gate makes at start and registers as a deploy key (deleted at stop).",
      ),
  })
  .describe("An SSH upstream, reached with the gate's key against exactly one host key.");

export const GitHttpsUpstreamSchema = z
  .strictObject({
    kind: z.literal("https"),
    url: z.string().startsWith("https://").describe("The upstream's https URL."),
    host: z.string().min(1).describe("The upstream's host name."),
    port: port.describe("The TLS port."),
    tokenEnv: envName("the token the gate authenticates with (as the HTTP password)")
      .optional()
      .describe(
        "Absent (and no granted token): the gate fetches anonymously (and a push is the upstream's to refuse).",
      ),
    tokenGranted: z
      .literal(true)
      .optional()
      .describe(
        "The token was handed over when the repository was approved (`bot-bottle approve --token-env`): the gate reads it from its private home (grants/<name>.token).",
      ),
    username: z.string().min(1).describe("The HTTP user name sent with the token."),
  })
  .describe("An HTTPS upstream, authenticated with a token the agent never sees; TLS verified.");

export const GitGateRepoSchema = z
  .strictObject({
    name: z
      .string()
      .regex(GIT_REPO_NAME)
      .describe("The repository's name at the gate: git://git-gate/<name>.git."),
    upstream: z
      .discriminatedUnion("kind", [GitSshUpstreamSchema, GitHttpsUpstreamSchema])
      .describe("Where the gate fetches from and forwards pushes to."),
    display: z.string().min(1).describe("The upstream as the manifest spells it, for messages."),
    push: GitPushPolicySchema,
    grant: z
      .string()
      .min(1)
      .optional()
      .describe("The supervise request an operator approved to add this repository live."),
    expires: z.iso
      .datetime()
      .optional()
      .describe(
        "When the operator's grant ends (`approve --for`): from then on nothing is served.",
      ),
  })
  .describe("One declared repository the gate mirrors.");

export const GitGateLimitsSchema = z
  .strictObject({
    maxPackBytes: z
      .number()
      .int()
      .min(1)
      .describe("A push's pack larger than this is refused (receive.maxInputSize)."),
    maxObjects: z.number().int().min(1).describe("A push bringing more new objects is refused."),
    maxScanBytes: z
      .number()
      .int()
      .min(1)
      .describe("A push whose new objects come to more bytes than this, inflated, is refused."),
    scanTimeoutMs: z
      .number()
      .int()
      .min(1)
      .describe("A push whose scan takes longer is refused (never let through unscanned)."),
    upstreamTimeoutMs: z
      .number()
      .int()
      .min(1)
      .describe("A fetch from or push to the upstream that takes longer fails."),
  })
  .describe("Bounds on what one push may cost; each refuses when exceeded.");

export const GitGateConfigSchema = z
  .strictObject({
    slug: z.string().min(1).describe("The bottle's slug, carried on every log event."),
    port: port.describe("The port git daemon listens on (9418)."),
    repos: z
      .array(GitGateRepoSchema)
      .describe("Every declared repository; nothing else is served."),
    heldSecretEnv: z
      .array(envName("a secret"))
      .describe("The bundle's variables holding secrets: a push carrying any of them is refused."),
    extraHosts: z
      .record(z.string().min(1), z.string().min(1))
      .describe("Host name -> IP address the gate dials for it (the git entries' extra_hosts)."),
    trustCaFile: z
      .string()
      .min(1)
      .optional()
      .describe("Extra CA certificates (PEM) trusted for HTTPS upstreams, as a bundle path."),
    limits: GitGateLimitsSchema,
    generation: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Raised by each live change; the gate names it in its listen and reload events."),
  })
  .describe("What the git gate serves for one bottle.");

export type GitPushPolicy = z.infer<typeof GitPushPolicySchema>;
export type GitGateRepo = z.infer<typeof GitGateRepoSchema>;
export type GitGateLimits = z.infer<typeof GitGateLimitsSchema>;
export type GitGateConfig = z.infer<typeof GitGateConfigSchema>;

export function parseGitGateConfig(text: string, file: string): GitGateConfig {
  return parseConfigText(GitGateConfigSchema, "git gate config", file, text);
}

export {
  GIT_AUDIT_FILE,
  GIT_GATE_CONFIG_PATH,
  GIT_GATE_PORT,
  GIT_GATE_ROOT,
} from "./bundle-paths.js";

export const DEFAULT_GIT_LIMITS: Readonly<GitGateLimits> = {
  maxPackBytes: 512 * 1024 * 1024,
  maxObjects: 200_000,
  // The scan writes the new objects out and gitleaks reads each whole: bounded well inside the
  // bundle's memory.
  maxScanBytes: 128 * 1024 * 1024,
  scanTimeoutMs: 60_000,
  upstreamTimeoutMs: 60_000,
};

/** One ref a push asked to move. */
export const GitRefUpdateSchema = z.strictObject({
  ref: z.string().describe("The full ref name."),
  old: z.string().describe("Its old object id (all zeros: created)."),
  new: z.string().describe("Its new object id (all zeros: deleted)."),
});

/** One line of audit/git.jsonl: one fetch, push, forward or refusal of the git gate. */
export const GitAuditRecordSchema = z
  .strictObject({
    time: z.iso.datetime().describe("When the decision was recorded (ISO 8601, UTC)."),
    repo: z.string().describe("The repository's name at the gate (as asked for, when undeclared)."),
    op: z
      .enum(["fetch", "push", "connect", "grant"])
      .describe(
        '"fetch" (upload-pack), "push" (receive-pack), "connect" (refused before either), "grant" (an operator\'s grant of the repository began or ended).',
      ),
    decision: z.enum(["allow", "refuse"]).describe("Whether the operation went ahead."),
    tag: z
      .string()
      .min(1)
      .describe(
        'A machine tag: "served", "forwarded", "upstream-unreachable", "upstream-rejected", "secret-detected", "policy", "limit", "undeclared", …',
      ),
    reason: z.string().optional().describe("For a refusal, the sentence the agent was shown."),
    refs: z.array(GitRefUpdateSchema).optional().describe("For a push, the refs it asked to move."),
    finding: z
      .strictObject({
        rule: z.string().describe("The rule or held variable that matched — never the value."),
        file: z.string().describe('The file (or "commit <id> message", "tag <name>") it is in.'),
        line: z.number().int().min(0).describe("The line in that file (0: not known)."),
        commit: z.string().optional().describe("The commit that brought it, when known."),
      })
      .optional()
      .describe("For a push refused for a secret, where the scan found it."),
    upstream: z
      .string()
      .optional()
      .describe("The upstream's answer to a forward or fetch (its first line), when it failed."),
    objects: z.number().int().min(0).optional().describe("New objects a push brought."),
    ms: z.number().min(0).describe("Milliseconds the operation took."),
    steps: z
      .record(z.string(), z.number().min(0))
      .optional()
      .describe(
        'For a push, milliseconds per step: "wait" (for the mirror), "policy", "scan", "forward".',
      ),
  })
  .describe("One decision of the git gate, one JSON line in audit/git.jsonl.");

export type GitRefUpdate = z.infer<typeof GitRefUpdateSchema>;
export type GitAuditRecord = z.infer<typeof GitAuditRecordSchema>;

export function parseGitAuditRecord(text: string, file: string): GitAuditRecord {
  return parseConfigText(GitAuditRecordSchema, "git audit record", file, text);
}
