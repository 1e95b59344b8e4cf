/**
 * What the bundle's egress interceptor admits: written by the host into the bottle's state dir,
 * read by src/sidecars/intercept inside the bundle. smolvm (≥ 1.14, `machine start
 * --egress-interceptor`) hands every guest TCP flow its allow-list admits to that daemon behind a
 * preamble naming the flow's destination; the daemon relays a flow only when a `flows` entry
 * names that destination, to the bundle-local port the entry gives (the egress proxy, say).
 * Described once, as a zod schema with a sentence on every field; the types are derived from it,
 * and both sides parse with it. Plain data, never a secret value: only the token's variable name.
 */
import { z } from "zod";
import { parseConfigText } from "./config-file.js";

const port = z.number().int().min(1).max(65535);

export const InterceptFlowSchema = z
  .strictObject({
    address: z
      .ipv4({ message: "must be an IPv4 address (four numbers 0-255 joined by dots)" })
      .describe("The IPv4 address the guest dials (BUNDLE_VM_ADDRESS for the bundle)."),
    port: port.describe("The TCP port the guest dials at that address."),
    to: port.describe("The port on 127.0.0.1 inside the bundle the flow is relayed to."),
  })
  .describe("One destination the guest may reach, and the bundle-local port that serves it.");

export const InterceptConfigSchema = z
  .strictObject({
    slug: z.string().min(1).describe("The bottle's slug, carried on every log event."),
    tokenEnv: z
      .string()
      .regex(
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        "must be an environment variable name (letters, digits and _)",
      )
      .describe(
        "Name of the bundle's environment variable that holds the interceptor token (64 hex digits, as smolvm's SMOLVM_INTERCEPTOR_TOKEN); never the value.",
      ),
    port: port.describe("The TCP port the interceptor listens on inside the bundle."),
    flows: z
      .array(InterceptFlowSchema)
      .describe("The destinations admitted; a flow to any other is refused with ECONNREFUSED."),
  })
  .describe("What the bundle's egress interceptor admits for one bottle.");

export type InterceptFlow = z.infer<typeof InterceptFlowSchema>;
export type InterceptConfig = z.infer<typeof InterceptConfigSchema>;

/** The interceptor config in `text` (the contents of `file`); throws ConfigFileError if invalid. */
export function parseInterceptConfig(text: string, file: string): InterceptConfig {
  return parseConfigText(InterceptConfigSchema, "interceptor config", file, text);
}

export const INTERCEPT_CONFIG_PATH = "/etc/bot-bottle/intercept.json";
/** The bundle's variable holding the interceptor token (the 64 hex digits smolvm is given). */
export const INTERCEPT_TOKEN_ENV = "BOT_BOTTLE_INTERCEPTOR_TOKEN";
/** The port the interceptor listens on inside the bundle. */
export const INTERCEPT_PORT = 9097;
/**
 * The address a VM dials its bundle at when the interceptor is in force: TEST-NET-1 (RFC 5737),
 * never a real host, so a flow to it can only be the bundle's.
 */
export const BUNDLE_VM_ADDRESS = "192.0.2.1";
