/**
 * `bot-bottle egress apply`: the bottle's routes, re-read from the (edited) manifest, written
 * atomically to the bundle and reloaded without a restart. Everything that can be checked is
 * checked before anything changes: the manifest and the files it names must lie outside every
 * running bottle's workspace, and whatever the new routes let out that the running ones do not is
 * shown and must be approved. The bundle confirms the new generation or the apply fails.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Backend, Resource } from "../backends/backend.js";
import { BotBottleError, EXIT, UsageError } from "../errors.js";
import type { ManifestIndex } from "../manifest/index.js";
import { egressConfigFor } from "../plan/egress.js";
import { applyTemplate } from "../plan/template.js";
import { loadProvider } from "../providers/templates.js";
import { egressWidening, type Widening } from "../plan/egress-diff.js";
import { trustedFiles } from "../plan/plan.js";
import { describeRoutes } from "../plan/summary.js";
import { ConfigFileError } from "../shared/config-file.js";
import { parseEgressConfig, type EgressConfig } from "../shared/egress-config.js";
import { writeFileAtomic, writeJsonAtomic } from "../state/files.js";
import { readMetadata } from "../state/bottle-state.js";
import { findBottle, NoSuchBottleError } from "./bottles.js";
import { reloadBundle } from "./reload.js";
import { findExposures, liveBottles, liveWorkspace, refuseExposures } from "./trust.js";

const RELOAD_DEADLINE_MS = 10_000;

export interface ApplyResult {
  /** The manifest the routes were read from. */
  file: string;
  generation: number;
  /** What the new routes let out that the old ones did not (approved before loading). */
  widening: Widening[];
  added: string[];
  removed: string[];
  lines: string[];
}

const routeKey = (r: EgressConfig["routes"][number]) => JSON.stringify(r);

/** The routes the bottle runs now, as its state dir holds them. */
async function runningRoutes(file: string, slug: string): Promise<EgressConfig> {
  try {
    return parseEgressConfig(await readFile(file, "utf8"), file);
  } catch (err) {
    if (!(err instanceof ConfigFileError)) throw err;
    throw new BotBottleError("command_failed", err.message, {
      exitCode: EXIT.internal,
      hint: `the state dir of ${slug} was changed outside bot-bottle: stop the bottle and start a new one`,
      cause: err,
    });
  }
}

/** Whether a granted route's lease still holds (a declared route has none). */
export function leaseHolds(route: EgressConfig["routes"][number], now = Date.now()): boolean {
  return route.expires === undefined || Date.parse(route.expires) > now;
}

/**
 * Writes `next` as the bottle's routes and has its running proxy load them: resolves once the
 * proxy reports that generation, fails when it keeps its previous routes or does not answer.
 */
export async function loadRoutes(
  backend: Backend,
  resources: readonly Resource[],
  slug: string,
  configDir: string,
  next: EgressConfig,
): Promise<void> {
  await reloadBundle(backend, resources, slug, {
    write: () => writeJsonAtomic(join(configDir, "egress.json"), next),
    component: "egress",
    what: `the egress proxy of ${slug}`,
    took: (e) => e["event"] === "reload" && e["generation"] === next.generation,
    failed: (e) => e["event"] === "reload-failed",
    refused: (message) => `the egress proxy of ${slug} kept its previous routes: ${message}`,
    deadlineMs: RELOAD_DEADLINE_MS,
  });
}

/** The routes the bottle runs now (its state dir's copy of what the proxy loaded). */
export function readRunningRoutes(stateDir: string, slug: string): Promise<EgressConfig> {
  return runningRoutes(join(stateDir, "bundle", "egress.json"), slug);
}

export async function applyEgress(options: {
  slug: string;
  /** The manifest the operator named (-f, BOT_BOTTLE_MANIFEST); else the one the bottle started from. */
  file: string | undefined;
  load: (file: string) => Promise<ManifestIndex>;
  /** Every backend: the bottle is found on whichever runs it; trust looks at all of them. */
  backends: readonly Backend[];
  stateDir: string;
  /** The operator's environment (where user plugins are found). */
  env: NodeJS.ProcessEnv;
  /** Called when the new routes widen what the bottle may reach; throws to apply nothing. */
  approve: (widening: readonly Widening[]) => Promise<void>;
}): Promise<ApplyResult> {
  const { slug, backends, stateDir } = options;
  const { backend, resources } = await findBottle(backends, slug);
  if (!resources.some((r) => r.role === "bundle" && r.state === "running"))
    throw new NoSuchBottleError(slug);
  const meta = await readMetadata(stateDir);
  if (!meta) throw new NoSuchBottleError(slug, `its state dir ${stateDir} has no metadata.json`);
  // Files an agent can write are not the operator's word: not this bottle's, nor any other's.
  // A file directly in a workspace that its bottle binds read-only (the manifest beside the
  // project) is out of that agent's reach; anything else in a workspace is not the operator's.
  const live = await liveBottles(backends);
  const workspaces = [
    ...(live.some((b) => b.slug === slug) ? [] : [{ path: meta.workspace, owner: "this bottle" }]),
    ...live.map((b) => ({
      ...liveWorkspace(b),
      ...(b.slug === slug ? { owner: "this bottle" } : {}),
    })),
  ];
  const file = options.file ?? meta.manifest.file;
  refuseExposures(await findExposures([{ what: "the manifest", path: file }], workspaces));
  const index = await options.load(file);
  if (!Object.hasOwn(index.data.agents, meta.agent))
    throw new UsageError(
      `the manifest ${index.file} has no agent "${meta.agent}" (the agent of ${slug})`,
      `apply from the manifest the bottle was started from (-f ${meta.manifest.file})`,
    );
  // The template's routes (the model API) stay: they are the bottle's as much as its own.
  const selected = index.select(meta.agent);
  const provider = await loadProvider(selected.agent.template, options.env);
  const manifest = applyTemplate(selected, provider).manifest;
  if (manifest.bottle.name !== meta.bottle)
    throw new UsageError(
      `agents.${meta.agent}.bottle is now "${manifest.bottle.name}", but ${slug} runs bottle "${meta.bottle}"`,
      "routes apply to the running bottle only: edit bottles." +
        meta.bottle +
        ".egress, or start a new bottle",
    );

  refuseExposures(
    await findExposures([...trustedFiles(manifest), ...(provider.trusted ?? [])], workspaces),
  );

  const configDir = join(stateDir, "bundle");
  const current = await runningRoutes(join(configDir, "egress.json"), slug);
  const next = egressConfigFor(manifest.bottle, slug, current.generation + 1);
  // Tokens reach the bundle only at start: a route may not name one the bundle does not hold.
  const held = new Set(current.secretEnv);
  next.routes.forEach((r, i) => {
    if (r.auth && !held.has(r.auth.tokenEnv))
      throw new UsageError(
        `bottles.${meta.bottle}.egress.routes[${i}].auth.token_env names ${r.auth.tokenEnv}, which this bottle did not receive at start`,
        "a new credential needs a new bottle: stop it and start again with the variable set",
      );
  });
  next.secretEnv = current.secretEnv;
  if (current.agentKeyEnv) next.agentKeyEnv = current.agentKeyEnv;
  if (current.jwtEnv) next.jwtEnv = current.jwtEnv;
  // Routes the operator granted on the agent's request stay until their lease ends.
  next.routes.push(...current.routes.filter((r) => r.grant !== undefined && leaseHolds(r)));

  const trustCa = manifest.bottle.egress.trust_ca
    ? await readFile(manifest.bottle.egress.trust_ca)
    : undefined;
  const runningCa = current.trustCaFile
    ? await readFile(join(configDir, "trust-ca.pem")).catch(() => undefined)
    : undefined;
  const widening = egressWidening(current, next, {
    before: runningCa?.toString("utf8"),
    after: trustCa?.toString("utf8"),
  });
  if (widening.length > 0) await options.approve(widening);

  if (trustCa) await writeFileAtomic(join(configDir, "trust-ca.pem"), trustCa);
  await loadRoutes(backend, resources, slug, configDir, next);
  const before = new Set(current.routes.map(routeKey));
  const after = new Set(next.routes.map(routeKey));
  return {
    file: index.file,
    generation: next.generation,
    widening,
    added: next.routes.filter((r) => !before.has(routeKey(r))).map((r) => r.host),
    removed: current.routes.filter((r) => !after.has(routeKey(r))).map((r) => r.host),
    lines: describeRoutes(next),
  };
}
