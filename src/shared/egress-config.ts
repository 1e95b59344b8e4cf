/**
 * What the egress proxy enforces: written by the host into the bottle's state dir (from the plan,
 * or by `bot-bottle egress apply`), read by src/sidecars/egress inside the bundle; and the audit
 * line the proxy writes per decision, read back by the host. Each is described once, as a zod
 * schema with a sentence on every field; the types are derived from it, and both sides parse
 * with it. Plain data; the logic that enforces it lives in the sidecar. Never a secret value:
 * only variable names.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = (what: string) =>
  z
    .string()
    .regex(ENV_NAME, "must be an environment variable name (letters, digits and _)")
    .describe(`Name of the bundle's environment variable that holds ${what}; never the value.`);

const port = z.number().int().min(1).max(65535);

export const RouteAuthRuleSchema = z
  .strictObject({
    header: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9a-z-]+$/, "must be a lower-case HTTP header name")
      .describe("Lower-case header name the proxy sets to the real credential."),
    scheme: z
      .string()
      .min(1)
      .optional()
      .describe('Written before the token in the header ("Bearer"); absent: the token alone.'),
    tokenEnv: envName("the real token"),
  })
  .describe("Credential injection: the agent sends a placeholder, the proxy sets the real token.");

export const TokenExchangeSchema = z
  .strictObject({
    refreshEnv: envName("the refresh token the agent sends as a placeholder"),
    rotates: z
      .record(z.string().regex(/^[A-Za-z0-9_]+$/), envName("a token the reply rotates"))
      .describe(
        "Field of the reply's JSON object -> the bundle variable whose token it replaces (access_token -> the API route's tokenEnv).",
      ),
  })
  .describe(
    "An OAuth token endpoint (a forwarded host login's refresh): the placeholder of the refresh token in the request body is replaced by the real one, and the tokens of a successful JSON reply become the bundle's new values (the agent receives their placeholders).",
  );

export const RouteRuleSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .describe(
        'Normalised DNS name, "*." plus a normalised name, or an IP literal (allowIpLiteral).',
      ),
    port: port
      .optional()
      .describe("The one port allowed; when absent, 443 for TLS (CONNECT) and 80 for plain HTTP."),
    paths: z
      .array(z.string().startsWith("/", 'must start with "/"'))
      .min(1)
      .optional()
      .describe('Path prefixes allowed, matched at "/" boundaries; absent: every path.'),
    methods: z
      .array(z.string().regex(/^[A-Z]+$/, "must be an upper-case HTTP method"))
      .min(1)
      .optional()
      .describe("HTTP methods allowed, in upper case; absent: every method."),
    tlsPassthrough: z
      .boolean()
      .describe("Tunnel TLS to the host without decrypting it (no path, auth or body checks)."),
    allowIpLiteral: z.boolean().describe("The host may be an IP address instead of a DNS name."),
    auth: RouteAuthRuleSchema.optional(),
    exchange: TokenExchangeSchema.optional(),
    grant: z
      .string()
      .optional()
      .describe("The supervise request an operator approved to add this route (absent: declared)."),
    expires: z.iso
      .datetime()
      .optional()
      .describe("A granted route's lease: from this time it matches nothing (approve --for)."),
  })
  .describe("One declared way out: a request that matches it is allowed.");

export const EgressConfigSchema = z
  .strictObject({
    slug: z.string().min(1).describe("The bottle's slug, carried on every log event."),
    generation: z
      .number()
      .int()
      .min(1)
      .describe(
        "Counts the route sets written for this bottle: 1 at start, +1 per `egress apply`.",
      ),
    secretEnv: z
      .array(envName("a secret"))
      .describe(
        "Names of the bundle's variables that hold secrets (route tokens), scanned for on the way out.",
      ),
    routes: z
      .array(RouteRuleSchema)
      .describe("Every declared route; a request no route matches is refused."),
    extraHosts: z
      .record(z.string().min(1), z.string().min(1))
      .describe(
        "Normalised host name -> IP address the proxy dials for it (private addresses allowed).",
      ),
    trustCaFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Extra CA certificates (PEM) trusted for upstream TLS, as a path inside the bundle.",
      ),
    jwtEnv: z
      .array(envName("a JSON Web Token"))
      .optional()
      .describe(
        "Token variables holding JSON Web Tokens of a forwarded login whose CLI reads their claims (the expiry): their placeholders keep header and claims and replace the signature.",
      ),
    agentKeyEnv: envName("the agent's proxy key")
      .optional()
      .describe(
        "The bundle's variable holding the key the agent must present (Proxy-Authorization) on every request, where the proxy's port can be reached by more than the agent (published on the host's loopback). Absent: the agent's network alone reaches the proxy.",
      ),
  })
  .describe("What the egress proxy enforces for one bottle.");

export type RouteAuthRule = z.infer<typeof RouteAuthRuleSchema>;
export type RouteRule = z.infer<typeof RouteRuleSchema>;
export type TokenExchange = z.infer<typeof TokenExchangeSchema>;
export type EgressConfig = z.infer<typeof EgressConfigSchema>;

/** The egress config in `text` (the contents of `file`); throws ConfigFileError if invalid. */
export function parseEgressConfig(text: string, file: string): EgressConfig {
  return parseConfigText(EgressConfigSchema, "egress config", file, text);
}

/**
 * The tokens a forwarded login's refresh gave the bundle, written by the egress daemon beside its
 * audit log (mode 0600) at every refresh: a restarted daemon goes on with them, and `stop` hands
 * them back to the operator's login file, whose refresh token the refresh used up.
 */
export const RotatedTokensSchema = z
  .strictObject({
    time: z.string().describe("When the last refresh answered (RFC 3339)."),
    values: z
      .record(z.string().regex(ENV_NAME), z.string().min(1))
      .describe("Each rotated token's variable -> its current value (real: never shown)."),
    expiresIn: z
      .number()
      .optional()
      .describe("The last refresh's `expires_in`, in seconds, when it said."),
  })
  .describe("A forwarded login's tokens as the bundle's refreshes left them.");

export type RotatedTokens = z.infer<typeof RotatedTokensSchema>;
export const ROTATED_TOKENS_FILE = "tokens.json";

export function parseRotatedTokens(text: string, file: string): RotatedTokens {
  return parseConfigText(RotatedTokensSchema, "rotated tokens", file, text);
}

/** Files and variables the egress daemon reads inside the bundle. */
export const EGRESS_CONFIG_PATH = "/etc/bot-bottle/egress.json";
export const CA_CERT_PATH = "/etc/bot-bottle/ca.crt";
export const TRUST_CA_PATH = "/etc/bot-bottle/trust-ca.pem";
export { AUDIT_DIR } from "./bundle-paths.js";
export const AUDIT_FILE = "egress.jsonl";
/** The bundle's variable holding the bottle CA's private key (PEM). */
export const CA_KEY_ENV = "BOT_BOTTLE_CA_KEY";
/** The bundle's variable holding the agent's proxy key, made afresh at every start. */
export const AGENT_KEY_ENV = "BOT_BOTTLE_AGENT_KEY";
/** The user name the agent presents with its proxy key (any name is accepted; the key decides). */
export const AGENT_KEY_USER = "agent";

const count = z.number().int().min(0);

/** One line of the audit log: one decision of the egress proxy. */
export const AuditRecordSchema = z
  .strictObject({
    time: z.iso.datetime().describe("When the decision was recorded (ISO 8601, UTC)."),
    kind: z
      .enum(["http", "https", "tunnel", "connect", "websocket"])
      .describe(
        '"http" (absolute-form), "https" (decrypted), "tunnel" (passthrough), "connect", "websocket".',
      ),
    method: z.string().describe("The request method, or CONNECT; withheld if it carries a secret."),
    host: z
      .string()
      .describe("The target host as requested; empty when none was understood, or withheld."),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .describe("The target port; 0 when none was understood."),
    path: z.string().describe('The path with query values removed ("/v1/x?key=&page=").'),
    decision: z.enum(["allow", "refuse"]).describe("Whether the request was let out."),
    tag: z
      .string()
      .min(1)
      .describe('A machine tag: "allowed", "not-in-routes", "secret-detected", …'),
    reason: z.string().optional().describe("For a refusal, the sentence the agent was shown."),
    route: z.string().optional().describe("The matched route's host, when one matched."),
    rotated: z
      .array(z.string())
      .optional()
      .describe("Bundle variables whose tokens this reply rotated (a token endpoint's refresh)."),
    status: z
      .number()
      .int()
      .min(0)
      .max(999)
      .optional()
      .describe("The HTTP status answered (upstream's, or the proxy's own refusal)."),
    bytesOut: count.describe("Bytes the agent sent upstream."),
    bytesIn: count.describe("Bytes sent back to the agent."),
    ms: z
      .number()
      .min(0)
      .describe("Milliseconds from the request's arrival to the decision's end."),
  })
  .describe("One decision of the egress proxy, one JSON line in audit/egress.jsonl.");

export type AuditRecord = z.infer<typeof AuditRecordSchema>;

/** One audit line (`text`, from `file`); throws ConfigFileError if it is not a record. */
export function parseAuditRecord(text: string, file: string): AuditRecord {
  return parseConfigText(AuditRecordSchema, "egress audit record", file, text);
}
