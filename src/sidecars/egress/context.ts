/**
 * What every part of the egress proxy shares: its options, the rules a reload swaps at once, the
 * limits it enforces, and the one context object each handler is given. Types only, plus the
 * constants that bound the proxy's resources.
 */
import type { Agent as HttpAgent, Server } from "node:http";
import type { Agent as HttpsAgent } from "node:https";
import type { Duplex } from "node:stream";
import type { SecureContext } from "node:tls";
import type { AuditRecord, EgressConfig } from "../../shared/egress-config.js";
import type { Logger } from "../log.js";
import type { AgentKey } from "./agent-key.js";
import type { Recorder } from "./audit.js";
import type { CertificateAuthority } from "./certs.js";
import type { SecretScanner } from "../dlp.js";
import type { Live } from "./live.js";
import type { Target } from "./policy.js";
import type { Lookup, Resolver } from "./resolve.js";
import type { Turns } from "./turns.js";

export type { Lookup };

export interface EgressOptions {
  config: EgressConfig;
  /** Extra CA certificates (PEM) trusted upstream, besides the system store. */
  trustCa?: string;
  ca: CertificateAuthority;
  /** The bundle's secrets by variable name: route tokens, the CA key. */
  secrets: Record<string, string>;
  /**
   * The key every request entering the proxy must present (agent-key.ts), read at start from the
   * variable `config.agentKeyEnv` names; required when it names one. Not a secret the scanner
   * looks for: the agent holds it. Kept for the proxy's life, whatever a reload says.
   */
  agentKey?: string;
  audit: (record: AuditRecord) => void;
  log: Logger;
  /** Name resolution (tests pass their own); the default is the system resolver. */
  lookup?: Lookup;
  /** Told the new values after a token endpoint's reply rotated some (to keep them on disk). */
  onRotate?: (values: Readonly<Record<string, string>>, expiresIn: number | undefined) => void;
  /** Told when a granted route's lease ended, with how many connections that closed. */
  onLeaseEnd?: (closed: number) => void;
  /** Overrides of the resource limits (tests shorten the timeouts). */
  limits?: Partial<Limits>;
}

/** What one bottle's agent may hold of the proxy at once, and for how long. */
export interface Limits {
  /** Open agent connections, tunnels included; more are refused at accept. */
  maxConnections: number;
  /** From accept (or CONNECT) to a complete request head, and to a finished TLS handshake. */
  handshakeMs: number;
  /** A connection that moves no byte either way for this long is closed. */
  idleMs: number;
  /** Entries in the DNS cache; the oldest go first. */
  dnsCacheEntries: number;
  /** How long a resolved name is reused. */
  dnsTtlMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxConnections: 1024,
  handshakeMs: 10_000,
  idleMs: 300_000,
  dnsCacheEntries: 512,
  dnsTtlMs: 30_000,
};

/**
 * Bytes a body may queue toward a slower side before the faster one is paused: past a TLS
 * socket's 16 kB mark, so a transfer does not stall on every record.
 */
export const BACKLOG = 1 << 20;

/** Everything a reload swaps at once. */
export interface Rules {
  config: EgressConfig;
  https: HttpsAgent;
  /** Verifies upstream TLS against the system store plus egress.trust_ca. */
  upstreamTls: SecureContext;
  /** Token variable -> its placeholder, for the variables this bundle holds. */
  placeholders: Map<string, string>;
  scanner: SecretScanner;
  redactions: { real: Buffer; placeholder: Buffer }[];
}

/** What a handler is given: the proxy's state, never a second copy of it. */
export interface ProxyContext {
  readonly options: EgressOptions;
  /** The rules now; a handler reads them once and keeps them for its request. */
  readonly rules: Rules;
  readonly limits: Limits;
  readonly recorder: Recorder;
  readonly resolver: Resolver;
  readonly live: Live;
  /** Plain-HTTP upstream connections (TLS ones are in `rules.https`). */
  readonly http: HttpAgent;
  /** The server that reads requests out of decrypted tunnels. */
  readonly inner: Server;
  /** The CONNECT target of each decrypted tunnel. */
  readonly tunnels: WeakMap<Duplex, Target>;
  /** The Host header last accepted on each tunnel (the same one comes back on every request). */
  readonly hostSeen: WeakMap<Duplex, string>;
  /** One request at a time per connection, none after a refusal. */
  readonly turns: Turns;
  /** The key requests entering the proxy must carry; undefined when none is asked for. */
  readonly agentKey: AgentKey | undefined;
  /**
   * New values of token variables (a token endpoint's reply): later requests inject them, and
   * the tokens they replace stay secrets the scanner and the redactor know. Returns the rules
   * with them.
   */
  rotate(values: Readonly<Record<string, string>>, expiresIn?: number): Rules;
}
