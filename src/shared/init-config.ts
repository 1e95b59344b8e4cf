/**
 * What the bundle's init runs: written by the host into the bottle's state dir, read by
 * src/sidecars/init inside the bundle. Described once, as a zod schema with a sentence on every
 * field; the types are derived from it, and both sides parse with it. Plain data.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const port = z.number().int().min(1).max(65535);

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

/** The init config in `text` (the contents of `file`); throws ConfigFileError if invalid. */
export function parseInitConfig(text: string, file: string): InitConfig {
  return parseConfigText(InitConfigSchema, "init config", file, text);
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
