/**
 * What a backend gives the rest of bot-bottle. A backend turns a BottlePlan into running parts
 * (the agent and its sidecar bundle) and back, finds them again by their labels, and hands out a
 * Bottle: the only way provisioning and the commands touch a running bottle. cli/, lifecycle/
 * and provision/ see these interfaces only; each backend's own folder is the only code that knows
 * docker or smolvm.
 */
import type { RunResult } from "../exec/run.js";
import type { Check } from "../shared/checks.js";
import type { InitStatus } from "../shared/init-config.js";
import type { Role } from "../shared/labels.js";
import type { LogLine } from "../shared/logs.js";
import type { Progress } from "../shared/progress.js";
import type { BackendName, BottlePlan } from "./plan.js";

export type { BackendName, Check };

export interface ExecOptions {
  /** Who runs the command: "node" (the agent's user, the default) or "root". */
  user?: string;
  workdir?: string;
  env?: Record<string, string>;
  /** Written to the command's standard input. */
  input?: string;
  timeoutMs?: number;
}

export interface AttachOptions extends ExecOptions {
  /** Give the command a terminal. */
  tty: boolean;
  /** Pass this process's standard input through. */
  stdin: boolean;
}

export interface LogOptions {
  follow?: boolean;
  /** Called with each line as it arrives (with `follow`, until `signal` aborts). */
  onLine?: (line: LogLine) => void;
  signal?: AbortSignal;
}

/**
 * Where the agent reaches its bundle, as the agent dials it: what the cage self-test probes.
 * Docker: the bundle's aliases on the internal network; smolmachines: smolvm's gateway name and
 * the bundle's published ports.
 */
export interface AgentReach {
  /** Each agent-facing daemon of the bundle: host and port as the agent dials them. */
  daemons: Record<string, { host: string; port: number }>;
  /** The bundle's address answers the listed ports only: this one is probed and must be closed. */
  unlisted?: {
    host: string;
    port: number;
    /** The errors that show it closed, when not ECONNREFUSED alone. */
    refused?: readonly string[];
    /** Keep an opened connection this long: a relay may accept it and only then refuse it. */
    holdMs?: number;
  };
  /** More addresses the agent must not reach (no answer at all), by probe name. */
  unreachable?: readonly { name: string; host: string; port: number }[];
  /** The first address of the agent's subnet must not reach the host (Docker). */
  gatewayClosed: boolean;
}

export interface Bottle {
  readonly slug: string;
  /** Where the agent reaches the bundle. */
  reach(): Promise<AgentReach>;
  /** Runs a command in the agent and returns its output; fails on a non-zero status. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<RunResult>;
  /** Runs a command in the agent with this terminal attached; resolves to its exit status. */
  attach(argv: readonly string[], options: AttachOptions): Promise<number>;
  /** Copies a host file or folder into the agent. */
  cpIn(source: string, destination: string): Promise<void>;
  /** The agent's and the bundle's log lines, in time order (followed with `follow`). */
  logs(options?: LogOptions): Promise<LogLine[]>;
  /** Stops the bottle: its logs captured into the state dir, then every part of it removed. */
  stop(): Promise<void>;
}

/** The engine's verdict on a bundle's health check (init's GET /health, run in the bundle). */
export type HealthStatus = "healthy" | "unhealthy" | "starting";

/** What the last health check of a bundle said. */
export interface BundleHealth {
  status: HealthStatus;
  /** init's report on its daemons, when the check got one. */
  report?: InitStatus;
  /** The check's output when it was no report (init itself did not answer), as one line. */
  output?: string;
  /** When the last check ran (RFC 3339). */
  checked?: string;
}

/** One thing a backend created for a bottle (a container, a network, a VM), found by labels. */
export interface Resource {
  kind: "container" | "network" | "machine";
  name: string;
  slug: string;
  role: Role | "";
  stateDir: string;
  /** Containers and machines: running, exited, created, stopped, … ("-" for networks). */
  state: string;
  agent: string;
  bottle: string;
  created: string;
  /** The backend that made it. */
  backend: BackendName;
  /** The bundle only: its agent-facing ports, by daemon. */
  ports?: Record<string, number>;
  /** The agent only: the folder its commands start in. */
  workdir?: string;
  /** A smolmachines agent only: how its flows reach the bundle ("gateway" or "interceptor"). */
  route?: string;
  /** The bundle only, when the engine runs a health check on it: the check's verdict. */
  health?: HealthStatus;
}

export interface LaunchOptions {
  progress: Progress;
  /** Values of the bundle's secret variables (plan.bundle.secretEnv and fileSecretEnv). */
  bundleSecrets: Record<string, string>;
  /** Values of the agent's placeholder variables (plan.agentContainer.placeholderEnv). */
  placeholders: Record<string, string>;
  /** Work that needs only the running agent, started as soon as it runs, alongside the wait
   * for the bundle's readiness; launch fails (and rolls back) when it fails. */
  whileBundleStarts?: (bottle: Bottle) => Promise<void>;
}

/** A typed event of the bundle's log (see shared/init-config.ts LogEvent). */
export type BundleEvent = Record<string, unknown>;

export interface Backend {
  readonly name: BackendName;
  /** Builds (or reuses, when unchanged) the images a plan runs. */
  ensureImages(plan: BottlePlan, progress: Progress): Promise<void>;
  /**
   * Creates and starts everything the plan names, and waits for the bundle to be ready. On a
   * failure it removes what it created and rethrows the first error.
   */
  launch(plan: BottlePlan, options: LaunchOptions): Promise<Bottle>;
  /** Everything carrying bot-bottle's labels that this backend made, optionally of one bottle. */
  resources(slug?: string): Promise<Resource[]>;
  /** A handle on a bottle from its resources; undefined when its agent or bundle is gone. */
  handle(slug: string, resources: readonly Resource[]): Promise<Bottle | undefined>;
  /** Stops what runs, captures its logs into `<stateDir>/logs`, and removes every resource. */
  teardown(resources: readonly Resource[], stateDir: string): Promise<void>;
  /** Log lines of these resources, in time order (followed with `follow`). */
  logs(resources: readonly Resource[], options?: LogOptions): Promise<LogLine[]>;
  /**
   * What the last health check of the bottle's bundle said, with init's report on its daemons;
   * undefined when the bundle is gone or has no health check. One engine call per bottle: asked
   * only of bundles the listing shows unhealthy.
   */
  bundleHealth(resources: readonly Resource[]): Promise<BundleHealth | undefined>;
  /** Sends a signal to the bottle's bundle (SIGHUP: reload its configuration). */
  signalBundle(resources: readonly Resource[], signal: "HUP"): Promise<void>;
  /**
   * Writes a credential to `path` on the running bundle's private tmpfs, as the bundle's user,
   * mode 0600, through the engine: it never lands in a host file and never reaches the agent.
   */
  writeBundleSecret(resources: readonly Resource[], path: string, value: string): Promise<void>;
  /**
   * Waits, up to a deadline, for the bundle to log an event that matches (from `since`, an RFC
   * 3339 time). Fails with a message naming `what` and the last line the bundle wrote.
   */
  bundleEvent(
    resources: readonly Resource[],
    match: (event: BundleEvent) => boolean,
    options: { deadlineMs: number; what: string; since?: string },
  ): Promise<BundleEvent>;
  /** Can this machine run this backend's bottles? One line per check. */
  checks(): Promise<Check[]>;
  /**
   * Calls `onChange` when the engine's view of this backend's bottles changes: one of their
   * containers starts, dies, is removed, or its health check's verdict changes. Never for a
   * command run in one. A burst of changes gives one call (within about 100 ms); after the
   * engine went away and came back, one call too. No call comes after `close()`.
   */
  watch(onChange: () => void): { close(): void };
}
