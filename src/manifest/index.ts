/**
 * ManifestIndex: every agent and bottle in one validated file. Selecting an agent yields a
 * Manifest — exactly that agent and its effective bottle, with overlays applied: the agent's git
 * identity moves onto the bottle, and every path is made absolute against the manifest's folder.
 */
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import type { Agent, Bottle, GitKey, GitUser, ManifestFile } from "./schema.js";

export interface EffectiveAgent extends Agent {
  name: string;
}

export interface EffectiveBottle extends Bottle {
  name: string;
  /** The identity commits carry in this bottle: the agent's `git_user`, when it sets one. */
  git_user: GitUser | undefined;
}

/** Exactly one agent and the bottle it runs in, ready for planning. */
export interface Manifest {
  file: string;
  /** SHA-256 of the file's text as it was loaded. */
  sha256: string;
  agent: EffectiveAgent;
  bottle: EffectiveBottle;
}

export function resolveUserPath(base: string, path: string): string {
  if (path === "~") return homedir();
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(base, path);
}

export class ManifestIndex {
  readonly file: string;
  readonly data: ManifestFile;
  readonly sha256: string;

  constructor(file: string, data: ManifestFile, sha256: string) {
    this.file = file;
    this.data = data;
    this.sha256 = sha256;
  }

  get agentNames(): string[] {
    return Object.keys(this.data.agents);
  }

  get bottleNames(): string[] {
    return Object.keys(this.data.bottles);
  }

  select(agentName: string): Manifest {
    const agent = Object.hasOwn(this.data.agents, agentName)
      ? this.data.agents[agentName]
      : undefined;
    if (!agent) {
      const names = this.agentNames;
      throw new UsageError(
        `there is no agent "${agentName}" in ${this.file}`,
        names.length
          ? `agents in this file: ${names.join(", ")}`
          : "this file declares no agents yet",
      );
    }
    const bottle = this.data.bottles[agent.bottle];
    if (!bottle) throw new Error(`validated manifest lost bottle for agent ${agentName}`);
    const base = dirname(this.file);
    const path = (p: string) => resolveUserPath(base, p);
    const key = (k: GitKey): GitKey => (k.provider === "static" ? { ...k, path: path(k.path) } : k);
    return {
      file: this.file,
      sha256: this.sha256,
      agent: {
        ...agent,
        name: agentName,
        ...(agent.skills ? { skills: agent.skills.map(path) } : {}),
        ...(agent.dockerfile ? { dockerfile: path(agent.dockerfile) } : {}),
      },
      bottle: {
        ...bottle,
        name: agent.bottle,
        git_user: agent.git_user,
        ...(bottle.dockerfile ? { dockerfile: path(bottle.dockerfile) } : {}),
        egress: {
          ...bottle.egress,
          ...(bottle.egress.trust_ca ? { trust_ca: path(bottle.egress.trust_ca) } : {}),
        },
        git: bottle.git.map((g) => (g.key ? { ...g, key: key(g.key) } : g)),
      },
    };
  }
}
