/**
 * What the egress proxy enforces: written by the host into the bottle's state dir (from the plan,
 * or by `bot-bottle egress apply`), read by src/sidecars/egress inside the bundle. Plain data;
 * the logic that enforces it lives in the sidecar. Never a secret value: only variable names.
 */

export interface RouteAuthRule {
  /** Lower-case header name the proxy sets. */
  header: string;
  scheme?: string;
  /** The bundle's environment variable holding the real token. */
  tokenEnv: string;
}

export interface RouteRule {
  /** Normalised DNS name, "*." plus a normalised name, or an IP literal (allowIpLiteral). */
  host: string;
  /** The one port allowed; when absent, 443 for TLS (CONNECT) and 80 for plain HTTP. */
  port?: number;
  paths?: string[];
  methods?: string[];
  tlsPassthrough: boolean;
  allowIpLiteral: boolean;
  auth?: RouteAuthRule;
}

export interface EgressConfig {
  slug: string;
  /** Counts the route sets written for this bottle: 1 at start, +1 per `egress apply`. */
  generation: number;
  /** Names of the bundle's variables that hold secrets (route tokens), scanned for on the way out. */
  secretEnv: string[];
  routes: RouteRule[];
  /** Normalised host name -> IP address the proxy dials for it (private addresses allowed). */
  extraHosts: Record<string, string>;
  /** Extra CA certificates (PEM) trusted for upstream TLS, as a path inside the bundle. */
  trustCaFile?: string;
}

/** Files and variables the egress daemon reads inside the bundle. */
export const EGRESS_CONFIG_PATH = "/etc/bot-bottle/egress.json";
export const CA_CERT_PATH = "/etc/bot-bottle/ca.crt";
export const TRUST_CA_PATH = "/etc/bot-bottle/trust-ca.pem";
export const AUDIT_DIR = "/var/log/bot-bottle";
export const AUDIT_FILE = "egress.jsonl";
/** The bundle's variable holding the bottle CA's private key (PEM). */
export const CA_KEY_ENV = "BOT_BOTTLE_CA_KEY";

/** One line of the audit log: one decision of the egress proxy. */
export interface AuditRecord {
  time: string;
  /** "http" (absolute-form), "https" (decrypted), "tunnel" (passthrough), "connect", "websocket". */
  kind: "http" | "https" | "tunnel" | "connect" | "websocket";
  method: string;
  host: string;
  port: number;
  /** The path with query values removed ("/v1/x?key=&page="). */
  path: string;
  decision: "allow" | "refuse";
  /** A machine tag: "allowed", "not-in-routes", "secret-detected", … */
  tag: string;
  reason?: string;
  /** The matched route's host, when one matched. */
  route?: string;
  status?: number;
  bytesOut: number;
  bytesIn: number;
  ms: number;
}
