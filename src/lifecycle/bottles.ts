/**
 * Bottles as the engine and the state dir know them: listing, stopping (logs captured first,
 * state kept), and cleaning up what a killed start left behind.
 */
import { join } from "node:path";
import { BotBottleError, EXIT } from "../errors.js";
import type { DockerBackend, Resource } from "../backends/docker/backend.js";
import { readMetadata, updateMetadata, type BottleMetadata } from "../state/bottle-state.js";
import { stateRoot } from "../state/paths.js";

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
  stateDir: string;
  workspace: string | undefined;
  template: string | undefined;
  created: string | undefined;
  containers: { name: string; role: string; state: string }[];
  networks: string[];
}

export function groupBySlug(resources: readonly Resource[]): Map<string, Resource[]> {
  const groups = new Map<string, Resource[]>();
  for (const r of resources) groups.set(r.slug, [...(groups.get(r.slug) ?? []), r]);
  return groups;
}

function isRunning(resources: readonly Resource[]): boolean {
  const up = (role: string) =>
    resources.some((r) => r.kind === "container" && r.role === role && r.state === "running");
  return up("agent") && up("bundle");
}

function pidAlive(pid: number | undefined): boolean {
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
  const stateDir = first?.stateDir || join(stateRoot(env), slug);
  const meta = await readMetadata(stateDir);
  return {
    slug,
    agent: first?.agent ?? meta?.agent ?? "",
    bottle: first?.bottle ?? meta?.bottle ?? "",
    state: isRunning(resources) ? "running" : startInProgress(meta) ? "starting" : "broken",
    stateDir,
    workspace: meta?.workspace,
    template: meta?.template,
    created: meta?.created,
    containers: resources
      .filter((r) => r.kind === "container")
      .map((r) => ({ name: r.name, role: r.role, state: r.state })),
    networks: resources.filter((r) => r.kind === "network").map((r) => r.name),
  };
}

export async function listBottles(
  backend: DockerBackend,
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary[]> {
  const groups = groupBySlug(await backend.resources());
  const list = await Promise.all([...groups].map(([slug, rs]) => summarise(slug, rs, env)));
  return list.sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
}

/** Stops a bottle: containers asked to stop, their logs captured, then containers and networks removed. */
export async function stopBottle(
  backend: DockerBackend,
  slug: string,
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary> {
  const resources = await backend.resources(slug);
  if (resources.length === 0) throw new NoSuchBottleError(slug);
  const summary = await summarise(slug, resources, env);
  await teardown(backend, resources, summary.stateDir);
  await updateMetadata(summary.stateDir, { status: "stopped", stopped: new Date().toISOString() });
  return summary;
}

async function teardown(
  backend: DockerBackend,
  resources: readonly Resource[],
  stateDir: string,
): Promise<void> {
  const containers = resources.filter((r) => r.kind === "container");
  await backend.stopContainers(containers.filter((c) => c.state === "running").map((c) => c.name));
  await backend.captureLogs(containers, stateDir);
  await backend.remove(
    containers.map((c) => c.name),
    resources.filter((r) => r.kind === "network").map((r) => r.name),
  );
}

/** Removes the resources of every bottle that is not running and not being started right now. */
export async function cleanup(
  backend: DockerBackend,
  env: NodeJS.ProcessEnv,
): Promise<BottleSummary[]> {
  const removed: BottleSummary[] = [];
  for (const [slug, resources] of groupBySlug(await backend.resources())) {
    const summary = await summarise(slug, resources, env);
    if (summary.state !== "broken") continue;
    await teardown(backend, resources, summary.stateDir);
    const meta = await readMetadata(summary.stateDir);
    if (meta && meta.status !== "stopped")
      await updateMetadata(summary.stateDir, {
        status: "failed",
        error: meta.error ?? "left behind; removed by cleanup",
      });
    removed.push(summary);
  }
  return removed;
}
