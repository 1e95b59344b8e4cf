/**
 * Starting a bottle: plan, preflight, images, state, launch — rolled back on failure, with the
 * first error reported. The CLI command around it only parses and prints.
 */
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve, sep } from "node:path";
import type { Progress } from "../shared/progress.js";
import { UsageError } from "../errors.js";
import type { Backend, BackendName, Bottle } from "../backends/backend.js";
import { hostWarnings } from "../manifest/host-check.js";
import type { Manifest } from "../manifest/index.js";
import { formatPath } from "../manifest/problems.js";
import { provisionAgent, provisionLine, type ProvisionResult } from "../provision/agent.js";
import { caInstallStep } from "../provision/ca.js";
import {
  assertCaged,
  cageLine,
  cageProbes,
  hostAddresses,
  selfTestCage,
  type CageResult,
} from "../provision/cage.js";
import { placeholderFor } from "../shared/placeholders.js";
import type { BottlePlan } from "../backends/plan.js";
import { addressPoolOf } from "../backends/address-pool.js";
import { newId, planBottle } from "../plan/plan.js";
import { loadProvider } from "../providers/templates.js";
import { createState, updateMetadata, type BottleMetadata } from "../state/bottle-state.js";
import { liveBottles, refuseOwnExposures, refuseSharedExposures } from "./trust.js";
import { removeDeployKeys } from "./deploy-keys.js";
import { startNotifyWatcher } from "./notify.js";
import { forwardedLogin, NotReadyError } from "./login.js";
import { grantWorkspace } from "./workspace.js";
import { stateRoot } from "../state/paths.js";

/** The workspace must be a folder, and not one whose exposure would hand the agent credentials. */
export async function checkWorkspace(dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const path = resolve(dir);
  const s = await stat(path).catch(() => undefined);
  if (!s?.isDirectory())
    throw new UsageError(
      `--cwd ${path} is not a folder`,
      "point --cwd at the project folder the agent should work in",
    );
  const home = resolve(env["HOME"] || homedir());
  const state = stateRoot(env);
  if (path === sep || path === home)
    throw new UsageError(
      `--cwd ${path} would show the agent your ${path === sep ? "whole file system" : "home folder (~/.ssh, tokens, …)"}`,
      "run from a project folder, or pass --cwd PROJECT_DIR",
    );
  if (state === path || state.startsWith(path + sep) || path.startsWith(state + sep))
    throw new UsageError(
      `--cwd ${path} overlaps bot-bottle's state (${state}), which holds bottle CA keys`,
      "choose a project folder",
    );
  return path;
}

export interface PrepareOptions {
  manifest: Manifest;
  workspace: string;
  env: NodeJS.ProcessEnv;
  /** `start --backend`: over the bottle's own `backend`. */
  backend?: BackendName;
}

export async function prepare(options: PrepareOptions): Promise<BottlePlan> {
  const { manifest, env } = options;
  const workspace = await checkWorkspace(options.workspace, env);
  const owner = await stat(workspace);
  const plan = planBottle(manifest, {
    provider: await loadProvider(manifest.agent.template, env),
    workspaceOwner: { uid: owner.uid, gid: owner.gid, mode: owner.mode },
    id: newId(randomBytes),
    workspace,
    stateRoot: stateRoot(env),
    images: { bundle: "bot-bottle/bundle:latest" },
    addressPool: addressPoolOf(env),
    ...(options.backend ? { backend: options.backend } : {}),
  });
  await refuseOwnExposures(plan);
  return plan;
}

/** Everything a bottle needs from this host before anything is created. */
export function refuseMissingHostParts(
  manifest: Manifest,
  plan: BottlePlan,
  env: NodeJS.ProcessEnv,
): void {
  const missing = hostWarnings(manifest, env).map((w) => `${formatPath(w.path)} ${w.message}`);
  // The template's own routes (the model API) are not in the file: name the template instead.
  const fromLogin = new Set(plan.agentContainer.login?.secretEnv ?? []);
  for (const r of plan.egress.routes)
    if (
      plan.agent.templateHosts.includes(r.host) &&
      r.auth &&
      !fromLogin.has(r.auth.tokenEnv) &&
      !env[r.auth.tokenEnv]
    )
      missing.push(
        `the "${manifest.agent.template}" template takes the key for ${r.host} from $${r.auth.tokenEnv}, which is not set in this shell — set it, or declare your own route for ${r.host} in bottles.${manifest.bottle.name}.egress.routes`,
      );
  if (missing.length === 0) return;
  throw new NotReadyError(
    `this bottle cannot start yet:\n${missing.map((m) => `  ${m}`).join("\n")}`,
    "set the variables in this shell and create the files, then start again",
  );
}

/**
 * What a start checks once the plan is shown to be wanted, before anything exists: the host's
 * variables and files, the forwarded login (missing or expired), and no exposure shared with a
 * running bottle. `start` and the dashboard's `n` both run it.
 */
export async function preflight(
  manifest: Manifest,
  plan: BottlePlan,
  env: NodeJS.ProcessEnv,
  backends: readonly Backend[],
): Promise<void> {
  refuseMissingHostParts(manifest, plan, env);
  await forwardedLogin(plan, env);
  await refuseSharedExposures(plan, await liveBottles(backends));
}

/** The metadata a new bottle starts with (status "starting"). */
export function metadataFromPlan(plan: BottlePlan, now: Date, pid: number): BottleMetadata {
  return {
    slug: plan.slug,
    agent: plan.agent.name,
    bottle: plan.bottle.name,
    template: plan.agent.template,
    backend: plan.backend,
    created: now.toISOString(),
    status: "starting",
    startPid: pid,
    workspace: plan.workspace.host,
    manifest: plan.manifest,
    labels: plan.bundle.labels,
    containers: { agent: plan.agentContainer.name, bundle: plan.bundle.name },
    session: {
      argv: plan.agentContainer.attach,
      workdir: plan.agentContainer.workdir,
      user: plan.agentContainer.user,
    },
    networks: {
      ...(plan.networks.internal ? { internal: plan.networks.internal.name } : {}),
      egress: plan.networks.egress.name,
    },
    ...(plan.deployKeys.length > 0 ? { deployKeys: plan.deployKeys } : {}),
  };
}

export async function launch(
  plan: BottlePlan,
  options: { backend: Backend; progress: Progress; env: NodeJS.ProcessEnv },
): Promise<Bottle> {
  const { backend, progress } = options;
  if (plan.workspace.grant) await grantWorkspace(plan.workspace.host, plan.workspace.grant.uid);
  await backend.ensureImages(plan, progress);
  await createState(plan, metadataFromPlan(plan, new Date(), process.pid));
  try {
    const login = await forwardedLogin(plan, options.env);
    if (login) await updateMetadata(plan.stateDir, { login: login.record });
    const bundleSecrets: Record<string, string> = {};
    for (const name of plan.bundle.secretEnv) {
      const value = login?.secrets[name] ?? options.env[name];
      if (value) bundleSecrets[name] = value;
    }
    for (const [name, file] of Object.entries(plan.bundle.fileSecretEnv))
      bundleSecrets[name] = await readFile(resolve(plan.stateDir, file), "utf8");
    // The agent's proxy key, made afresh for this start; only the bundle and the agent hold it.
    if (plan.egress.agentKeyEnv)
      bundleSecrets[plan.egress.agentKeyEnv] = randomBytes(32).toString("hex");
    const placeholders: Record<string, string> = {};
    for (const [name, tokenEnv] of Object.entries(plan.agentContainer.placeholderEnv)) {
      const value = options.env[tokenEnv];
      if (value) placeholders[name] = placeholderFor(value, tokenEnv, plan.slug);
    }
    // The login file's placeholders, by the bundle variable each stands for.
    const loginPlaceholders: Record<string, string> = {};
    for (const [name, value] of Object.entries(login?.secrets ?? {}))
      loginPlaceholders[name] = placeholderFor(value, name, plan.slug, {
        jwt: plan.egress.jwtEnv?.includes(name) === true,
      });
    const ca = await readFile(join(plan.stateDir, "ca", "ca.crt"), "utf8");
    let cage: CageResult | undefined;
    let provisioned: ProvisionResult | undefined;
    const bottle = await backend.launch(plan, {
      progress,
      bundleSecrets,
      placeholders,
      // The CA install and the cage self-test, in one exec, start as soon as the agent runs,
      // while the bundle gets ready: the install needs only the agent, and the self-test needs
      // no CA (it speaks plain HTTP to the proxy) and waits for the bundle itself. The host's
      // addresses are read now: they include the bridges of this bottle's own networks.
      // Provisioning the agent's home (as its user) needs neither and runs beside them.
      whileBundleStarts: async (agent) => {
        const a = plan.agentContainer;
        [cage, provisioned] = await Promise.all([
          (async () =>
            selfTestCage(agent, cageProbes(await agent.reach(), hostAddresses()), {
              alongside: caInstallStep(ca),
            }))(),
          provisionAgent(
            agent,
            login ? { ...a.provision, files: [...a.provision.files, login.file] } : a.provision,
            { user: a.user, home: a.home, placeholders: { ...placeholders, ...loginPlaceholders } },
          ),
        ]);
      },
    });
    try {
      if (!cage) throw new Error("the cage self-test did not run");
      await updateMetadata(plan.stateDir, { cage: cage.record });
      assertCaged(plan.slug, cage);
      progress.done(`cage: ${cageLine(cage.record)}`);
      if (provisioned) progress.done(`provisioned: ${provisionLine(provisioned)}`);
    } catch (err) {
      await bottle.stop();
      throw err;
    }
    progress.done(`${plan.slug} is ready`);
    await updateMetadata(plan.stateDir, { status: "running" });
    // The operator's notify command runs for each new request, from a watcher of its own.
    if (plan.supervise?.notify)
      await startNotifyWatcher({
        supervise: plan.supervise,
        slug: plan.slug,
        stateDir: plan.stateDir,
        env: options.env,
      }).catch((err: unknown) =>
        progress.warn?.(
          `the notify command will not run: ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
    return bottle;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await updateMetadata(plan.stateDir, {
      status: "failed",
      error: message.split("\n")[0] ?? message,
    });
    // A deploy key the gate registered before the start failed goes too (cleanup retries).
    await removeDeployKeys(plan.stateDir, options.env).catch(() => undefined);
    throw err;
  }
}
