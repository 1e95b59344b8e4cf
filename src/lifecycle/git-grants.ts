/**
 * An approved git repository request, applied: the repository is added to the running bottle's
 * git gate without a restart. The operator supplies what the agent cannot ask for — the pinned
 * host key and the key file of an SSH upstream, the host variable holding an HTTPS token — and
 * the entry is checked by the manifest's own rules for `git[]`. The credential goes to the gate's
 * private home through the engine (never a host file, never the agent); the gate's config gains
 * the repository (marked with the request's id, and its lease's end when `--for` gave one); the
 * bundle's init starts the gate if it was not running; the agent's git is led to it. `--persist`
 * also writes the entry into the manifest, keeping the file's comments and layout.
 */
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { homedir } from "node:os";
import type { Backend, Resource } from "../backends/backend.js";
import { RefusedError, UsageError } from "../errors.js";
import { GitUpstreamSchema, type GitUpstream } from "../manifest/schema.js";
import { gateUrl, grantedRepo, upstreamSpellings } from "../plan/git.js";
import { AGENT_HOME, AGENT_USER, GIT_GATE_DAEMON } from "../plan/plan.js";
import { provisionAgent } from "../provision/agent.js";
import { gitGrantPath } from "../shared/bundle-paths.js";
import {
  GIT_REPO_NAME,
  parseGitGateConfig,
  type GitGateConfig,
} from "../shared/git-gate-config.js";
import { parseInitConfig } from "../shared/init-config.js";
import { parseGitUpstream } from "../shared/route-checks.js";
import type { RequestBody } from "../shared/supervise.js";
import { writeJsonAtomic } from "../state/files.js";
import { findBottle, NoSuchBottleError } from "./bottles.js";
import { appendToBottle } from "./persist.js";
import { reloadBundle } from "./reload.js";

type GitRepoRequest = Extract<RequestBody, { kind: "git-repo" }>;

/** What the operator adds to a git repository request when approving it. */
export interface GitGrantOptions {
  /** SSH: the upstream's host key ("type base64", or a known_hosts line). */
  hostKey?: string;
  /** SSH: the private key file the gate signs in with. */
  keyFile?: string;
  /** HTTPS: the host variable holding the token the gate authenticates with. */
  tokenEnv?: string;
  /** The repository's name inside the bottle (git://git-gate/<name>.git). */
  name?: string;
}

const GATE_DEADLINE_MS = 20_000;

/** The flag of `approve` each field of a git entry comes from, for error messages. */
const FLAG: Record<string, string> = {
  name: "--name",
  known_host_key: "--host-key",
  key: "--key-file",
  token_env: "--token-env",
  upstream: "the request's upstream",
};

/** "app" for ".../org/app.git": the name a repository gets unless `--name` says otherwise. */
export function defaultRepoName(upstream: string): string {
  const parsed = parseGitUpstream(upstream);
  const path = "problem" in parsed ? upstream : parsed.path;
  const name = basename(path.replace(/\/+$/, ""))
    .replace(/\.git$/, "")
    .replace(/[^A-Za-z0-9._-]/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "");
  return GIT_REPO_NAME.test(name) ? name : "repo";
}

/** "~/x" and relative paths, as the operator's shell would read them. */
function hostPath(path: string): string {
  return resolve(path.startsWith("~/") ? join(homedir(), path.slice(2)) : path);
}

/**
 * The manifest entry the approval makes, checked by the manifest's rules; the errors name the
 * flag to fix. Pure but for nothing: the key file is not read here.
 */
export function grantEntry(request: GitRepoRequest, options: GitGrantOptions): GitUpstream {
  const entry = {
    name: options.name ?? defaultRepoName(request.upstream),
    upstream: request.upstream,
    ...(options.hostKey !== undefined ? { known_host_key: options.hostKey } : {}),
    ...(options.keyFile !== undefined
      ? { key: { provider: "static", path: hostPath(options.keyFile) } }
      : {}),
    ...(options.tokenEnv !== undefined ? { token_env: options.tokenEnv } : {}),
  };
  const parsed = GitUpstreamSchema.safeParse(entry);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const field = String(first?.path[0] ?? "upstream");
    // The manifest's words for its fields, as approve's flags.
    const message = Object.entries(FLAG).reduce(
      (text, [name, flag]) => text.replaceAll(`\`${name}\``, flag),
      `${FLAG[field] ?? field} ${first?.message ?? "is not valid"}`,
    );
    throw new UsageError(
      message,
      'an SSH upstream needs --host-key "ssh-ed25519 AAAA…" (from `ssh-keyscan -t ed25519 HOST`, checked against its published fingerprint) and --key-file PATH; an HTTPS one takes --token-env NAME for a private repository',
    );
  }
  return parsed.data;
}

/** The credential the gate signs in with, read on the host now; a clear error when unusable. */
async function credentialOf(
  entry: GitUpstream,
  env: NodeJS.ProcessEnv,
): Promise<{ kind: "key" | "token"; value: string } | undefined> {
  if (entry.key?.provider === "static") {
    const text = await readFile(entry.key.path, "utf8").catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(
        `--key-file ${entry.key?.provider === "static" ? entry.key.path : ""} cannot be read (${err.code ?? err.message})`,
        "give the path of the SSH private key the gate signs in with",
      );
    });
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))
      throw new UsageError(
        `--key-file ${entry.key.path} does not hold a private key`,
        "give the private half (e.g. ~/.ssh/deploy_key, not deploy_key.pub)",
      );
    return { kind: "key", value: text };
  }
  if (entry.token_env) {
    const value = env[entry.token_env];
    if (!value)
      throw new UsageError(
        `--token-env ${entry.token_env} is unset in this shell`,
        `export ${entry.token_env}=… (the token for ${entry.upstream}) and approve again`,
      );
    return { kind: "token", value };
  }
  return undefined;
}

/** The running bottle's gate config (written by the plan, empty for a bottle with no git entry). */
async function gateConfigOf(stateDir: string, slug: string): Promise<GitGateConfig> {
  const file = join(stateDir, "bundle", "git-gate.json");
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined)
    throw new RefusedError(
      `${slug} has no git gate to add a repository to (it was started with supervise off, or by an older bot-bottle)`,
      "add the entry to the bottle's `git` in the manifest and start a new bottle",
    );
  return parseGitGateConfig(text, file);
}

export async function grantGitRepo(options: {
  slug: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  backends: readonly Backend[];
  request: GitRepoRequest;
  id: string;
  until?: string;
  persist: boolean;
  git: GitGrantOptions;
}): Promise<string> {
  const { slug, stateDir, request, id } = options;
  const entry = grantEntry(request, options.git);
  const credential = await credentialOf(entry, options.env);
  const current = await gateConfigOf(stateDir, slug);
  const clash = current.repos.find((r) => r.name === entry.name);
  if (clash && clash.grant === undefined)
    throw new UsageError(
      `${slug} already serves a repository named ${entry.name} (${clash.display})`,
      "pick another name with --name",
    );
  const { backend, resources } = await findBottle(options.backends, slug);
  if (!resources.some((r) => r.role === "bundle" && r.state === "running"))
    throw new NoSuchBottleError(
      slug,
      "its bundle is not running: the request can no longer be granted",
    );

  if (credential)
    await backend.writeBundleSecret(
      resources,
      gitGrantPath(entry.name, credential.kind),
      credential.value,
    );
  const generation = (current.generation ?? 0) + 1;
  const next: GitGateConfig = {
    ...current,
    generation,
    // A repeated grant of the same name replaces the earlier one (a new lease, a new key).
    repos: [
      ...current.repos.filter((r) => r.name !== entry.name),
      grantedRepo(entry, slug, id, options.until),
    ],
  };
  await loadGate(backend, resources, slug, join(stateDir, "bundle"), next);
  await leadAgent(backend, resources, slug, entry);
  if (options.persist) await persistEntry(stateDir, slug, entry);
  return `${entry.upstream} as ${gateUrl(entry.name)} (push: ${entry.push.refs.join(" ") || "none"})`;
}

/**
 * Writes the gate's new config, adds the gate to init's daemons when it is not among them, and
 * signals the bundle: init starts a new gate, or the running one reloads. Resolves when the gate
 * says it serves this generation; fails with the gate's own reason.
 */
async function loadGate(
  backend: Backend,
  resources: readonly Resource[],
  slug: string,
  configDir: string,
  next: GitGateConfig,
): Promise<void> {
  await reloadBundle(backend, resources, slug, {
    write: async () => {
      await writeJsonAtomic(join(configDir, "git-gate.json"), next);
      const initFile = join(configDir, "init.json");
      const init = parseInitConfig(await readFile(initFile, "utf8"), initFile);
      if (!init.daemons.some((d) => d.name === GIT_GATE_DAEMON.name))
        await writeJsonAtomic(initFile, { ...init, daemons: [...init.daemons, GIT_GATE_DAEMON] });
    },
    component: "git-gate",
    what: `the git gate of ${slug}`,
    took: (e) =>
      (e["event"] === "listen" || e["event"] === "reload") && e["generation"] === next.generation,
    failed: (e) => ["reload-failed", "start-failed", "config-invalid"].includes(String(e["event"])),
    refused: (message) => `the git gate of ${slug} did not take the repository: ${message}`,
    deadlineMs: GATE_DEADLINE_MS,
  });
}

/** The agent's git meets the new upstream however it is spelled and reaches the gate for it. */
async function leadAgent(
  backend: Backend,
  resources: readonly Resource[],
  slug: string,
  entry: GitUpstream,
): Promise<void> {
  const bottle = await backend.handle(slug, resources);
  if (!bottle) throw new NoSuchBottleError(slug, "its agent is gone");
  await provisionAgent(
    bottle,
    {
      files: [],
      skills: [],
      gitUrls: [{ url: gateUrl(entry.name), insteadOf: upstreamSpellings(entry.upstream) }],
    },
    { user: AGENT_USER, home: AGENT_HOME, placeholders: {} },
  );
}

/** Adds the entry to the bottle's `git` in the manifest the bottle started from. */
function persistEntry(stateDir: string, slug: string, entry: GitUpstream): Promise<void> {
  return appendToBottle(stateDir, slug, ["git"], {
    name: entry.name,
    upstream: entry.upstream,
    ...(entry.known_host_key !== undefined ? { known_host_key: entry.known_host_key } : {}),
    ...(entry.key ? { key: entry.key } : {}),
    ...(entry.token_env ? { token_env: entry.token_env } : {}),
  });
}
