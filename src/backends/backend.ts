/**
 * What a backend gives the rest of bot-bottle: launching a planned bottle, and a handle that is
 * the only way provisioning touches a running one. Provisioners never call docker themselves.
 */
import type { RunResult } from "../exec/run.js";

export interface ExecOptions {
  user?: string;
  workdir?: string;
  env?: Record<string, string>;
  input?: string;
  timeoutMs?: number;
}

export interface Bottle {
  readonly slug: string;
  /** Runs a command in the agent and returns its output; fails on a non-zero status. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<RunResult>;
  /** Copies a host file or folder into the agent container. */
  cpIn(source: string, destination: string): Promise<void>;
}
