/**
 * The BottlePlan: everything a backend needs to launch a bottle, computed once by plan/ (pure,
 * printable as the preflight summary) and read by launch, which re-derives nothing. No secret
 * value is ever in a plan: only the names of the environment variables that hold them.
 */
import type { BackendName } from "../manifest/schema.js";
import type { AddressPool } from "./address-pool.js";
import type { EgressConfig } from "../shared/egress-config.js";
import type { DeployKeyRecord } from "../state/bottle-state.js";
import type { Supervise } from "../manifest/schema.js";

export type { BackendName };

export interface ContainerPlan {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
}

export interface NetworkPlan {
  name: string;
  /** The host-side bridge interface name (at most 15 characters). */
  bridge: string;
  internal: boolean;
  labels: Record<string, string>;
}

export interface BottlePlan {
  slug: string;
  backend: BackendName;
  agent: {
    name: string;
    template: string;
    /** Hosts of the routes the template added to the bottle's own (the model API). */
    templateHosts: string[];
    /** The agent CLI the template's image pins ("@anthropic-ai/claude-code@2.1.332"). */
    cli?: string;
  };
  bottle: { name: string };
  manifest: { file: string; sha256: string };
  stateDir: string;
  workspace: {
    host: string;
    container: string;
    /**
     * A root-owned workspace the agent could not write: launch grants the agent's uid read and
     * write on it with an ACL (the agent never runs as root).
     */
    grant?: { uid: number };
  };
  /** The agent's network (Docker only: a smolmachines agent is a VM with its own allow-list), and
   * the bundle's way out. */
  /** The bottle's networks, each given a subnet of `pool` at launch. */
  networks: { pool: AddressPool; internal?: NetworkPlan; egress: NetworkPlan };
  bundle: ContainerPlan & {
    aliases: readonly string[];
    /** Ports the agent may reach on the bundle, by daemon. */
    ports: Record<string, number>;
    /** Names of host env vars whose values the bundle receives at start (never the values). */
    secretEnv: string[];
    /**
     * Bundle variables whose values launch reads from files: the CA key (relative to the state
     * dir), the git gate's SSH keys (the operator's key files, absolute).
     */
    fileSecretEnv: Record<string, string>;
    /** Loopback port of init's health endpoint in the bundle: the engine's health check asks it. */
    healthPort: number;
    /** State-dir folder mounted read-only at /etc/bot-bottle. */
    configDir: string;
    /** State-dir folder the bundle writes its audit log to, mounted at `auditMount`. */
    auditDir: string;
    auditMount: string;
    /** State-dir folder holding the git gate's mirrors, mounted writable at `mirrorMount`. */
    mirrorDir?: string;
    mirrorMount?: string;
    /** The unprivileged user the bundle image runs as (images/bundle/Dockerfile). */
    uid: number;
    /** Existing Docker networks the bundle also joins (egress.network); never the agent. */
    extraNetworks: string[];
    /**
     * smolmachines: the intercept daemon a newer smolvm hands every admitted flow of the VM to
     * (its port in the bundle, and the variable holding the token smolvm presents).
     */
    interceptor?: { port: number; tokenEnv: string };
    /** A runaway or attacked daemon starves only its own bottle; the proxy peaks near 140 MB. */
    limits: { memory: string; pids: number; cpus: number };
  };
  agentContainer: ContainerPlan & {
    /** How the agent's image is made (before its user gets the bottle's ids, see baseImage). */
    build: AgentImagePlan;
    user: string;
    /** The ids the agent's user has in this bottle: the workspace owner's, unless that is root. */
    uid: number;
    gid: number;
    /** The template's image, when `image` is it with the user given other ids (built at launch). */
    baseImage?: string;
    home: string;
    workdir: string;
    limits: { memory: string; pids: number };
    /** PID 1's command: keeps the container up between sessions. */
    command: string[];
    /** What an interactive session runs: the agent's UI. */
    attach: string[];
    /** One headless task (`bot-bottle run`): the prompt is appended as its last argument. */
    headless: string[];
    /** What provisioning writes in the agent before it is handed over. */
    provision: AgentProvisionPlan;
    /**
     * The agent's placeholder variables: agent variable -> the host variable whose token it
     * stands for. Each token variable under its own name, and under the name the agent's CLI
     * reads (ANTHROPIC_API_KEY) when that differs.
     */
    placeholderEnv: Record<string, string>;
    /**
     * The operator's own login, forwarded (`forward_host_credentials`): read from the host at
     * launch; its tokens go to the bundle under `secretEnv`, a placeholder copy to the agent.
     */
    login?: { what: string; secretEnv: string[] };
    /**
     * Trusted files that lie directly in the workspace folder (the manifest beside the project's
     * code), bound read-only over themselves: a file there is a mount point the agent can neither
     * write, rename nor unlink, and the workspace folder itself is one it cannot move.
     */
    readOnlyFiles: { host: string; container: string }[];
  };
  /** What the egress proxy enforces (also written as bundle/egress.json). */
  egress: EgressConfig;
  /** The bottle's supervise settings, when its bundle serves supervise. */
  supervise?: Exclude<Supervise, false>;
  /** Gitea deploy keys the git gate registers for this bottle (recorded for stop and cleanup). */
  deployKeys: DeployKeyRecord[];
  /** Host files the operator's side reads and trusts; none may lie inside a workspace. */
  trusted: TrustedFile[];
  /** Files written into the state dir before launch, by path relative to it. */
  files: Record<string, string>;
  /** Files copied into the state dir before launch: path relative to it -> a host path, or a
   * path relative to the state dir (the CA certificate made at start). */
  copies: Record<string, string>;
}

/** Files, skills and the git identity provisioning puts in the agent (as its user). */
export type { DeployKeyRecord };

export interface AgentProvisionPlan {
  files: { path: string; content: string; mode: number; what: string }[];
  /** Host skill folders, each copied to its place under the agent's home. */
  skills: { host: string; container: string }[];
  gitUser?: { name: string; email: string };
  /** `url.<url>.insteadOf` for each spelling: the agent's git reaches declared upstreams at the gate. */
  gitUrls?: { url: string; insteadOf: string[] }[];
}

/**
 * The agent's image: the template's image (built from images/<template>), then each Dockerfile of
 * the cascade layered on the previous one (`ARG BASE_IMAGE`): a user plugin's, the agent's
 * `dockerfile`, the bottle's. Each layer is rebuilt only when its inputs changed.
 */
export interface AgentImagePlan {
  /** The image under images/ the cascade starts from ("shell", "claude", "codex"). */
  template: string;
  /** Dockerfiles layered on it, in order; the folder holding each is its build context. */
  layers: { what: string; dockerfile: string }[];
  /** The image the cascade ends in: the template's own when there are no layers. */
  ref: string;
}

/** A host file bot-bottle reads and acts on with the operator's authority. */
export interface TrustedFile {
  /** What it is, as the operator wrote it: "the manifest", or the field's JSON path. */
  what: string;
  path: string;
}

/**
 * In a provisioned file, stands for the placeholder of an agent variable (its last `last`
 * characters when given); provisioning writes the value, known only at launch, in its place.
 */
export function placeholderRef(agentVar: string, last?: number): string {
  return `{placeholder:${agentVar}${last !== undefined ? `:last${last}` : ""}}`;
}

/** `text` with every placeholderRef replaced from `placeholders` (agent variable -> value). */
export function withPlaceholders(
  text: string,
  placeholders: Readonly<Record<string, string>>,
): string {
  return text.replace(
    /\{placeholder:([A-Za-z_][A-Za-z0-9_]*)(?::last(\d+))?\}/g,
    (_, name: string, last?: string) => {
      const value = placeholders[name] ?? "";
      return last !== undefined ? value.slice(-Number(last)) : value;
    },
  );
}

/**
 * In a plan's agent environment, stands for the host:port at which the agent reaches a bundle
 * port when only launch can know it (smolmachines publishes the bundle's ports on random
 * loopback ports); launch writes the address in its place.
 */
export function bundleAddress(port: number): string {
  return `{bundle:${port}}`;
}

/** The agent's environment with every bundleAddress(port) replaced by `address(port)`. */
export function withBundleAddresses(
  env: Readonly<Record<string, string>>,
  address: (port: number) => string,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      v.replace(/\{bundle:(\d+)\}/g, (_, port: string) => address(Number(port))),
    ]),
  );
}

/** The agent image with its user given other ids: bot-bottle/shell:latest -> bot-bottle/shell:uid1234-gid1235. */
export function userImageRef(base: string, ids: { uid: number; gid: number }): string {
  return `${base.replace(/:[^:/]*$/, "")}:uid${ids.uid}-gid${ids.gid}`;
}
