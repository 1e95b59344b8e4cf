/**
 * What the bundle's init runs: written by the host into the bottle's state dir, read by
 * src/sidecars/init inside the bundle. Plain data, shared by both sides.
 */
export interface DaemonSpec {
  name: string;
  /** argv; argv[0] is looked up on PATH inside the bundle. */
  command: string[];
  /** A TCP port the daemon listens on; it is ready once a connection succeeds. */
  port?: number;
  /** Sent SIGHUP when the bundle is asked to reload. */
  reload: boolean;
}

export interface InitConfig {
  slug: string;
  daemons: DaemonSpec[];
  /** Loopback-only port of init's health endpoint (GET /health). */
  healthPort: number;
  /** Milliseconds a daemon gets between SIGTERM and SIGKILL at shutdown. */
  stopGraceMs: number;
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
