/**
 * What the bundle's init runs: written by the host into the bottle's state dir, read by
 * src/sidecars/init inside the bundle. Described once, as a zod schema with a sentence on every
 * field; the types are derived from it, and both sides parse with it. Plain data.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const port = z.number().int().min(1).max(65535);

export const ProbeSchema = z
  .strictObject({
    port: port.describe("The loopback port init sends the probe to."),
    path: z
      .string()
      .regex(/^\/[\x21-\x7e]*$/, 'must be a path such as "/health"')
      .describe("The path of an HTTP GET that answers 2xx while the daemon works."),
  })
  .describe(
    "An HTTP GET init sends the daemon every few seconds: a daemon that is up but does not answer makes the bundle not ready.",
  );

export const DaemonSpecSchema = z
  .strictObject({
    name: z.string().min(1).describe("The daemon's name in logs and in the health report."),
    command: z
      .array(z.string())
      .min(1)
      .describe("argv; argv[0] is looked up on PATH inside the bundle."),
    port: port
      .optional()
      .describe("A TCP port the daemon listens on; it is ready once a connection succeeds."),
    reload: z.boolean().describe("Sent SIGHUP when the bundle is asked to reload."),
    probe: ProbeSchema.optional(),
  })
  .describe("One daemon init starts, restarts when it dies, and stops at shutdown.");

export const InitConfigSchema = z
  .strictObject({
    slug: z.string().min(1).describe("The bottle's slug, carried on every log event."),
    daemons: z.array(DaemonSpecSchema).describe("The daemons to run, started in this order."),
    healthPort: port.describe("Loopback-only port of init's health endpoint (GET /health)."),
    stopGraceMs: z
      .number()
      .int()
      .min(0)
      .describe("Milliseconds a daemon gets between SIGTERM and SIGKILL at shutdown."),
  })
  .describe("What the bundle's init runs for one bottle.");

export type DaemonSpec = z.infer<typeof DaemonSpecSchema>;
export type InitConfig = z.infer<typeof InitConfigSchema>;
export type Probe = z.infer<typeof ProbeSchema>;

export const DAEMON_STATES = ["starting", "ready", "backoff", "stopped"] as const;

/**
 * What init's GET /health answers (200 when `ready`, else 503), and what the host reads back from
 * the bundle's health check. Not strict: a host reads the report of a bundle built by another
 * version of bot-bottle.
 */
export const InitStatusSchema = z
  .object({
    ready: z
      .boolean()
      .describe("Every daemon is ready and every probed daemon answered its last probe."),
    daemons: z.array(
      z.object({
        name: z.string().describe("The daemon's name, as in the init config."),
        state: z.enum(DAEMON_STATES).describe("Where the daemon is in its life."),
        pid: z.number().int().optional().describe("Its process id, while it runs."),
        restarts: z.number().int().describe("How often init started it again."),
        answering: z
          .boolean()
          .optional()
          .describe("A probed daemon: whether it answered its last probe."),
        silentSince: z.iso
          .datetime()
          .optional()
          .describe("A probed daemon that does not answer: when it first did not."),
      }),
    ),
  })
  .describe("init's report on the bundle's daemons.");

export type DaemonState = (typeof DAEMON_STATES)[number];
export type InitStatus = z.infer<typeof InitStatusSchema>;
export type DaemonStatus = InitStatus["daemons"][number];

/** The init config in `text` (the contents of `file`); throws ConfigFileError if invalid. */
export function parseInitConfig(text: string, file: string): InitConfig {
  return parseConfigText(InitConfigSchema, "init config", file, text);
}

/** init's status report in `text` (read from `source`); throws ConfigFileError if invalid. */
export function parseInitStatus(text: string, source: string): InitStatus {
  return parseConfigText(InitStatusSchema, "init status report", source, text);
}

/** One line of a sidecar's log: a typed event, JSON on stdout. */
export interface LogEvent {
  time: string;
  slug: string;
  component: string;
  event: string;
  message: string;
  [key: string]: unknown;
}

export const INIT_CONFIG_PATH = "/etc/bot-bottle/init.json";
export const BUNDLE_ROOT = "/opt/bot-bottle";
/** The port of init's health endpoint inside the bundle; never one the agent may reach. */
export const HEALTH_PORT = 9000;
