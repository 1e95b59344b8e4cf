/**
 * Supervise, described once for both sides: the config the bundle's MCP server runs with, the
 * records it appends to the bottle's `audit/supervise.jsonl` (the agent's requests and what became
 * of them — the host folds them into the queue `bot-bottle requests` shows), and the decision file
 * the host writes into the bundle's read-only config folder (`decisions/<id>.json`), the only way
 * a decision reaches the bundle. Nothing the agent can reach can write either file.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const port = z.number().int().min(1).max(65535);
const iso = z.iso.datetime();

/** A request's id: "r-" and ten lower-case letters or digits, made by the bundle. */
export const REQUEST_ID = /^r-[a-z0-9]{10}$/;
const requestId = z.string().regex(REQUEST_ID, 'must be a request id such as "r-7k2m9x4p0q"');

export const SuperviseConfigSchema = z
  .strictObject({
    slug: z
      .string()
      .min(1)
      .describe("The bottle's slug: a decision for another bottle is refused."),
    port: port.describe("The port the MCP server listens on (9100), path /mcp."),
    waitSeconds: z
      .number()
      .int()
      .min(0)
      .describe(
        "How long a tool call waits for a decision before it answers `pending` with the id.",
      ),
    timeoutSeconds: z
      .number()
      .int()
      .min(1)
      .describe("Operator silence for this long ends a request `denied (timeout)`."),
    ratePerMinute: z
      .number()
      .int()
      .min(1)
      .describe("Requests a minute the agent may make; the rest are refused at once."),
    reservedHosts: z
      .array(z.string().min(1))
      .describe("Names the agent may never ask for: the bundle's own, localhost, the host's."),
    routes: z
      .array(z.string())
      .describe(
        'The routes the bottle has now ("host" or "host:port"), so a request for one says it is already allowed.',
      ),
    gitUpstreams: z
      .array(z.string())
      .describe("Upstreams the bottle's git entries already declare."),
  })
  .describe("What the supervise MCP server runs with for one bottle.");

export type SuperviseConfig = z.infer<typeof SuperviseConfigSchema>;

export function parseSuperviseConfig(text: string, file: string): SuperviseConfig {
  return parseConfigText(SuperviseConfigSchema, "supervise config", file, text);
}

/** What the agent asked for, as validated (hosts normalised). */
export const RequestBodySchema = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("egress-route"),
    host: z.string().min(1).describe("Normalised host name, or *. plus one."),
    port: port.optional(),
    paths: z.array(z.string().startsWith("/")).min(1).optional(),
    methods: z
      .array(z.string().regex(/^[A-Z]+$/))
      .min(1)
      .optional(),
    reason: z.string().describe("The agent's reason, stored as given (shown escaped)."),
  }),
  z.strictObject({
    kind: z.literal("git-repo"),
    upstream: z.string().min(1),
    reason: z.string(),
  }),
  z.strictObject({
    kind: z.literal("question"),
    question: z.string().min(1).describe("The agent's question, stored as given (shown escaped)."),
  }),
]);

export type RequestBody = z.infer<typeof RequestBodySchema>;

/** One line of audit/supervise.jsonl. */
export const SuperviseRecordSchema = z.discriminatedUnion("event", [
  z.strictObject({
    time: iso,
    event: z.literal("request"),
    id: requestId,
    request: RequestBodySchema,
    deadline: iso.describe("When operator silence denies it."),
    flags: z
      .array(z.string())
      .describe('Warnings for the operator, e.g. "mixed-script host name".'),
  }),
  z.strictObject({
    time: iso,
    event: z.literal("refused"),
    kind: z.string().describe("The tool the agent called."),
    reason: z.string().describe("Why it was refused at once (validation, rate limit)."),
    input: z.string().describe("What the agent sent, as JSON (shown escaped)."),
  }),
  z.strictObject({
    time: iso,
    event: z.literal("decided"),
    id: requestId,
    outcome: z.enum(["approved", "denied", "answered"]),
    by: z.enum(["operator", "timeout", "restart"]),
    until: iso.optional().describe("An approval's lease: when the grant is removed."),
    reason: z.string().optional().describe("A denial's reason."),
    answer: z.string().optional().describe("The operator's answer to a question."),
    applied: z.string().optional().describe('What the approval added, e.g. "api.example.com GET".'),
  }),
  z.strictObject({
    time: iso,
    event: z.literal("expired"),
    id: requestId,
    applied: z.string().optional(),
  }),
]);

export type SuperviseRecord = z.infer<typeof SuperviseRecordSchema>;

export function parseSuperviseRecord(text: string, file: string): SuperviseRecord {
  return parseConfigText(SuperviseRecordSchema, "supervise record", file, text);
}

/** The operator's decision on one request, written by the host, read (once) by the bundle. */
export const DecisionSchema = z
  .strictObject({
    slug: z.string().min(1).describe("The bottle it is for; any other bottle ignores it."),
    id: requestId,
    decision: z.enum(["approve", "deny", "answer"]),
    time: iso,
    until: iso.optional().describe("approve --for: when the grant ends."),
    reason: z.string().optional(),
    answer: z.string().optional(),
    applied: z.string().optional().describe("What the host added to the running bottle."),
  })
  .describe("One decision, in decisions/<id>.json of the bundle's config folder.");

export type Decision = z.infer<typeof DecisionSchema>;

export function parseDecision(text: string, file: string): Decision {
  return parseConfigText(DecisionSchema, "supervise decision", file, text);
}

export const SUPERVISE_PORT = 9100;
/** The path supervise answers 200 on while it works: init probes it (GET, loopback). */
export const SUPERVISE_HEALTH_PATH = "/health";
export const SUPERVISE_CONFIG_PATH = "/etc/bot-bottle/supervise.json";
/** The folder (in the bundle's read-only config) the host writes decisions into. */
export const DECISIONS_DIR = "/etc/bot-bottle/decisions";
export const SUPERVISE_AUDIT_FILE = "supervise.jsonl";

export const DEFAULT_SUPERVISE = {
  waitSeconds: 120,
  timeoutSeconds: 3600,
  ratePerMinute: 10,
} as const;
