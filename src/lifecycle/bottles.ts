/**
 * Bottles as the backends and the state dir know them: listing, stopping (logs captured first,
 * state kept), and cleaning up what a killed start left behind. Every backend is asked: a slug
 * names one bottle whichever backend runs it.
 */
import { join } from "node:path";
import { BotBottleError, EXIT } from "../errors.js";
import type { Backend, BackendName, BundleHealth, Resource } from "../backends/backend.js";
import {
  listStateDirs,
  readMetadata,
  updateMetadata,
  type BottleMetadata,
} from "../state/bottle-state.js";
import { stateRoot } from "../state/paths.js";
import { returnLogin } from "./login.js";
import { removeDeployKeys } from "./deploy-keys.js";

export class NoSuchBottleError extends BotBottleError {
  constructor(slug: string, hint = "`bot-bottle ls` lists the bottles") {
    super("usage", `there is no running bottle "${slug}"`, { exitCode: EXIT.usage, hint });
    this.name = "NoSuchBottleError";
  }
}

export type BottleState = "running" | "starting" | "broken";

export interface BottleSummary {
  slug: string;
  agent: string;
  bottle: string;
  state: BottleState;
  backend: BackendName;
  stateDir: string;
  workspace: string | undefined;
  template: string | undefined;
  created: string | undefined;
  containers: { name: string; role: string; state: string }[];
  networks: string[];
  /**
   * The engine's health check of the bundle, when it runs one: its verdict, and for an unhealthy
   * bundle what init last reported (which daemon does not answer).
   */
  health?: BundleHealth;
  /** After a stop: what became of a forwarded login the bottle refreshed. */
  login?: string;
  /** After a stop: deploy keys the host had to delete, or could not. */
  deployKeys?: string;
}

export function groupBySlug(resources: readonly Resource[]): Map<string, Resource[]> {
  const groups = new Map<string, Resource[]>();
  for (const r of resources) groups.set(r.slug, [...(groups.get(r.slug) ?? []), r]);
  return groups;
}

function isRunning(resources: readonly Resource[]): boolean {
  const up = (role: string) =>
    resources.some((r) => r.kind !== "network" && r.role === role && r.state === "running");
  return up("agent") && up("bundle");
}

export function pidAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** A start still in progress (its CLI process is alive): neither listed as broken nor cleaned. */
function startInProgress(meta: BottleMetadata | undefined): boolean {
  return meta?.status === "starting" && pidAlive(meta.startPid);
}

async function summarise(
  slug: string,
  resources: Resource[],
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary> {
  const first = resources[0];
  const bundle = resources.find((r) => r.kind === "container" && r.role === "bundle");
  const stateDir = first?.stateDir || join(stateRoot(env), slug);
  const meta = await readMetadata(stateDir);
  return {
    slug,
    agent: first?.agent ?? meta?.agent ?? "",
    bottle: first?.bottle ?? meta?.bottle ?? "",
    state: isRunning(resources) ? "running" : startInProgress(meta) ? "starting" : "broken",
    backend: first?.backend ?? "docker",
    stateDir,
    workspace: meta?.workspace,
    template: meta?.template,
    created: meta?.created,
    containers: resources
      .filter((r) => r.kind !== "network")
      .map((r) => ({ name: r.name, role: r.role, state: r.state })),
    networks: resources.filter((r) => r.kind === "network").map((r) => r.name),
    ...(bundle?.health ? { health: { status: bundle.health } } : {}),
  };
}

/**
 * The bottle's summary with, when its bundle is unhealthy, what the last health check said. The
 * listing gives every bundle's verdict at once; only an unhealthy one is asked for more.
 */
async function withHealth(
  backend: Backend,
  summary: BottleSummary,
  resources: Resource[],
): Promise<BottleSummary> {
  if (summary.health?.status !== "unhealthy") return summary;
  const health = await backend.bundleHealth(resources).catch(() => undefined);
  return health ? { ...summary, health } : summary;
}

/** Each backend with its bottles' resources, grouped by slug. */
async function everyBottle(
  backends: readonly Backend[],
): Promise<{ backend: Backend; slug: string; resources: Resource[] }[]> {
  const found = await Promise.all(
    backends.map(async (backend) =>
      [...groupBySlug(await backend.resources())].map(([slug, resources]) => ({
        backend,
        slug,
        resources,
      })),
    ),
  );
  return found.flat();
}

/** The backend running a bottle, and its resources; undefined when no backend knows the slug. */
export async function bottleIfAny(
  backends: readonly Backend[],
  slug: string,
): Promise<{ backend: Backend; resources: Resource[] } | undefined> {
  for (const backend of backends) {
    const resources = await backend.resources(slug);
    if (resources.length > 0) return { backend, resources };
  }
  return undefined;
}

/** The backend running a bottle, and its resources; throws when no backend knows the slug. */
export async function findBottle(
  backends: readonly Backend[],
  slug: string,
): Promise<{ backend: Backend; resources: Resource[] }> {
  const found = await bottleIfAny(backends, slug);
  if (!found) throw new NoSuchBottleError(slug);
  return found;
}

export async function listBottles(
  backends: readonly Backend[],
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary[]> {
  const list = await Promise.all(
    (await everyBottle(backends)).map(async (b) =>
      withHealth(b.backend, await summarise(b.slug, b.resources, env), b.resources),
    ),
  );
  return list.sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
}

/** Stops a bottle: its logs captured, its resources removed, its state dir kept. */
export async function stopBottle(
  backends: readonly Backend[],
  slug: string,
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary> {
  const summary = await takeDown(await findBottle(backends, slug), slug, env);
  return { ...summary, ...(await afterTeardown(summary.stateDir, env)) };
}

async function takeDown(
  found: { backend: Backend; resources: Resource[] },
  slug: string,
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary> {
  const summary = await summarise(slug, found.resources, env);
  await found.backend.teardown(found.resources, summary.stateDir);
  await updateMetadata(summary.stateDir, { status: "stopped", stopped: new Date().toISOString() });
  return summary;
}

/** How many bottles `stopBottles` takes down at once: each is a handful of engine calls. */
const STOP_PARALLEL = 8;

export type Stopped = { slug: string } & (
  { ok: true; summary: BottleSummary } | { ok: false; error: unknown }
);

/**
 * Stops several bottles (`"all"`: every one on this machine) side by side, at most
 * STOP_PARALLEL at once; `onStopped` hears of each as it ends. A bottle that cannot be stopped
 * does not hold up the others. What goes back to the host after a teardown (a forwarded login,
 * deploy keys) is done one bottle at a time, so two bottles never write the same login file at
 * once.
 */
export async function stopBottles(
  backends: readonly Backend[],
  which: readonly string[] | "all",
  env: NodeJS.ProcessEnv,
  onStopped: (s: Stopped) => void = () => undefined,
): Promise<Stopped[]> {
  const all = which === "all" ? await everyBottle(backends) : undefined;
  const slugs = all ? all.map((b) => b.slug) : [...new Set(which)];
  const results: Stopped[] = [];
  let handBack = Promise.resolve();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < slugs.length) {
      const slug = slugs[next++] as string;
      let outcome: Stopped;
      try {
        const found = all?.find((b) => b.slug === slug) ?? (await findBottle(backends, slug));
        const summary = await takeDown(found, slug, env);
        const after = handBack.then(() => afterTeardown(summary.stateDir, env));
        handBack = after.then(
          () => undefined,
          () => undefined,
        );
        outcome = { slug, ok: true, summary: { ...summary, ...(await after) } };
      } catch (error) {
        outcome = { slug, ok: false, error };
      }
      results.push(outcome);
      onStopped(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(STOP_PARALLEL, slugs.length) }, worker));
  return results;
}

/** What is handed back once a bottle's containers are gone: its login, its deploy keys. */
async function afterTeardown(
  stateDir: string,
  env: NodeJS.ProcessEnv,
): Promise<Pick<BottleSummary, "login" | "deployKeys">> {
  const login = await returnLogin(stateDir, env);
  const deployKeys = await removeDeployKeys(stateDir, env);
  return { ...(login ? { login } : {}), ...(deployKeys ? { deployKeys } : {}) };
}

/** Removes the resources of every bottle that is not running and not being started right now. */
export async function cleanup(
  backends: readonly Backend[],
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary[]> {
  const removed: BottleSummary[] = [];
  for (const { backend, slug, resources } of await everyBottle(backends)) {
    const summary = await summarise(slug, resources, env);
    if (summary.state !== "broken") continue;
    await backend.teardown(resources, summary.stateDir);
    const meta = await readMetadata(summary.stateDir);
    if (meta && meta.status !== "stopped")
      await updateMetadata(summary.stateDir, {
        status: "failed",
        error: meta.error ?? "left behind; removed by cleanup",
      });
    removed.push({ ...summary, ...(await afterTeardown(summary.stateDir, env)) });
  }
  // Bottles already gone whose deploy keys could not be deleted then (a killed start, no token).
  const live = new Set((await everyBottle(backends)).map((b) => b.slug));
  for (const dir of await listStateDirs(stateRoot(env))) {
    const meta = await readMetadata(dir);
    if (!meta?.deployKeys || meta.deployKeysRemoved || live.has(meta.slug)) continue;
    if (startInProgress(meta)) continue;
    const deployKeys = await removeDeployKeys(dir, env);
    if (deployKeys) removed.push({ ...(await summarise(meta.slug, [], env)), deployKeys });
  }
  return removed;
}
