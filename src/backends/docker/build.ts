/**
 * Building the images under images/ with `docker build`. BASE_IMAGE is, for an image built `from`
 * another of the catalog (the agent templates on shell), that image, built first when needed;
 * otherwise the offline base when it exists on this engine (so nothing is pulled), else the
 * Dockerfile's public default. A recipe label (a hash of the build context, the build args and the
 * base image's id) lets an unchanged image be reused; checking costs one `docker image inspect`.
 * An image that installs an agent CLI with npm gets the host's CAs and npm registry
 * (npm-host.ts): both count in its recipe.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Progress } from "../../shared/progress.js";
import { PrerequisiteError, UsageError } from "../../errors.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import type { DockerCli } from "./cli.js";
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import { addFolder, assembleContext, hashContext, type BuildContext } from "./context.js";
import { dockerBuild, ImageBuildError } from "./docker-build.js";
import {
  agentPackageSpec,
  baseImageRef,
  DEFAULT_SUITE,
  imageCatalog,
  type AgentPackage,
  type ImageEntry,
} from "./images.js";
import { imageFor, inspectImages, type InspectedImage } from "./inspect.js";
import { BUILD_CA_FILE, npmBuildInputs, type NpmBuildInputs } from "./npm-host.js";

export const RECIPE_LABEL = `${LABEL_PREFIX}.recipe`;

export interface BuildOptions {
  docker: DockerCli;
  progress: Progress;
  /** BASE_IMAGE of images built from no other; default: the offline base when present, else the
   * Dockerfile's. */
  baseImage?: string;
  force: boolean;
}

export interface BuildResult {
  name: string;
  ref: string;
  /** The image's id after this call. */
  id: string;
  baseImage: string;
  reused: boolean;
  seconds: number;
  /** Bytes on disk. */
  size: number;
  /** The agent CLI it holds (`name@version`), for a template that installs one. */
  agentPackage?: string;
}

type Buildable = ImageEntry & { dockerfileDir: string };

export function buildableImage(name: string): Buildable {
  const entry = imageCatalog().find((i) => i.name === name);
  if (!entry?.dockerfileDir) {
    const names = imageCatalog()
      .filter((i) => i.dockerfileDir)
      .map((i) => i.name);
    throw new UsageError(`there is no buildable image "${name}"`, `images: ${names.join(", ")}`);
  }
  return entry as Buildable;
}

/**
 * The images to ensure for `names`, each after the image it is built from, each once: asking for
 * claude gives shell, claude.
 */
export function buildOrder(names: readonly string[]): Buildable[] {
  const order: Buildable[] = [];
  const visit = (name: string, chain: string[]): void => {
    if (order.some((e) => e.name === name)) return;
    if (chain.includes(name))
      throw new Error(`images: ${[...chain, name].join(" -> ")} is a cycle of "from"`);
    const entry = buildableImage(name);
    if (entry.from) visit(entry.from, [...chain, name]);
    order.push(entry);
  };
  for (const name of names) visit(name, []);
  return order;
}

/** The build args an image gets besides BASE_IMAGE (they count in its recipe). */
export function buildArgs(
  agentPackage: AgentPackage | undefined,
  npm: NpmBuildInputs | undefined,
): Record<string, string> {
  return {
    ...(agentPackage
      ? { AGENT_PACKAGE: agentPackageSpec(agentPackage), AGENT_COMMAND: agentPackage.command }
      : {}),
    ...(npm?.registry ? { NPM_REGISTRY: npm.registry } : {}),
  };
}

/** The recipe label's value: the context's digest, the base image's id, the build args. */
export function recipeOf(contextDigest: string, baseId: string, args: Record<string, string>) {
  return createHash("sha256")
    .update(contextDigest)
    .update("\0")
    .update(baseId)
    .update("\0")
    .update(JSON.stringify(Object.entries(args).sort(([a], [b]) => (a < b ? -1 : 1))))
    .digest("hex")
    .slice(0, 16);
}

/** The files of an image's build context (a template that runs npm gets the host's CAs in it). */
export async function imageContext(
  entry: Buildable,
  npm: NpmBuildInputs | undefined,
): Promise<BuildContext> {
  const context: BuildContext = new Map();
  await addFolder(context, join(PACKAGE_ROOT, "images", entry.dockerfileDir), "");
  if (entry.agentPackage) context.set(BUILD_CA_FILE, { content: npm?.caBundle ?? "" });
  if (entry.withSidecars) {
    // The sidecars as scripts/bundle.ts bundled them: one file per daemon, its packages inside
    // (with their licences beside), and nothing else of the CLI.
    const bundled = join(PACKAGE_ROOT, "dist", "bundle");
    if (!existsSync(join(bundled, "sidecars", "init", "main.js")))
      throw new Error(
        `the bundle image is built from ${bundled}, which has no sidecars: run \`npm run build\``,
      );
    await addFolder(context, bundled, "app");
  }
  return context;
}

/** Builds each named image (and those it is built from) unless an image from the same recipe
 * exists (or `force`, which rebuilds the named ones only). */
export async function ensureImages(
  names: readonly string[],
  options: BuildOptions,
): Promise<BuildResult[]> {
  const { docker, progress } = options;
  const entries = buildOrder(names);
  const npm = entries.some((e) => e.agentPackage) ? await npmBuildInputs(docker.env) : undefined;
  const offlineBase = baseImageRef(DEFAULT_SUITE);
  const [inspected, ...contexts] = await Promise.all([
    inspectImages(docker, [options.baseImage ?? offlineBase, ...entries.map((e) => e.ref)]),
    ...entries.map((e) => imageContext(e, npm)),
  ]);
  const rootBase =
    options.baseImage ?? (imageFor(inspected, offlineBase) ? offlineBase : undefined);

  const results: BuildResult[] = [];
  for (const [i, entry] of entries.entries()) {
    const context = contexts[i] as BuildContext;
    const parent = entry.from ? results.find((r) => r.name === entry.from) : undefined;
    const base = parent ? parent.ref : rootBase;
    const baseId = parent
      ? parent.id
      : base
        ? (imageFor(inspected, base)?.id ?? base)
        : "dockerfile-default";
    const baseName = base ?? "the Dockerfile's default (pulled from its registry)";
    const args = buildArgs(entry.agentPackage, entry.agentPackage ? npm : undefined);
    const recipe = recipeOf(await hashContext(context), baseId, args);
    const existing = imageFor(inspected, entry.ref);
    const result = (image: InspectedImage, reused: boolean, seconds: number): BuildResult => ({
      name: entry.name,
      ref: entry.ref,
      id: image.id,
      baseImage: baseName,
      reused,
      seconds,
      size: image.size,
      ...(entry.agentPackage ? { agentPackage: agentPackageSpec(entry.agentPackage) } : {}),
    });
    const forced = options.force && names.includes(entry.name);
    if (existing && !forced && existing.labels[RECIPE_LABEL] === recipe) {
      results.push(result(existing, true, 0));
      continue;
    }
    const started = Date.now();
    progress.step(`docker build ${entry.ref} from ${baseName}`);
    const dir = await assembleContext(context);
    try {
      await dockerBuild(
        docker,
        [
          // Forced: every step runs again (fresh packages), not only the recipe label changes.
          ...(forced ? ["--no-cache"] : []),
          ...(base ? ["--build-arg", `BASE_IMAGE=${base}`] : []),
          ...Object.entries(args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
          "--label",
          `${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
          "--label",
          `${LABEL_PREFIX}.kind=${entry.name}`,
          "--label",
          `${RECIPE_LABEL}=${recipe}`,
          "--tag",
          entry.ref,
          dir,
        ],
        {
          progress,
          onFailure: (lastLines, err) => {
            // No offline base and no registry: say how to get a base instead of docker's pull error.
            if (!base && /pull|manifest|registry|resolve|dial tcp/i.test(err.stderr))
              return new PrerequisiteError(
                `building ${entry.ref} needs its base image, which could not be pulled: ${err.stderr.trim().split("\n").pop() ?? ""}`,
                "run `sudo bot-bottle images base` to build the base from Debian's packages, then start again",
                err,
              );
            return new ImageBuildError(entry.ref, lastLines, buildHint(entry, lastLines, npm), err);
          },
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const built = imageFor(await inspectImages(docker, [entry.ref]), entry.ref);
    if (!built) throw new Error(`docker build reported success but ${entry.ref} is not there`);
    const seconds = (Date.now() - started) / 1000;
    progress.done(`built ${entry.ref} in ${seconds.toFixed(1)} s`);
    results.push(result(built, false, seconds));
  }
  if (results.every((r) => r.reused))
    progress.done(`images up to date: ${results.map((r) => r.ref).join(", ")}`);
  return results;
}

/** What to do about a failed build of one of bot-bottle's own images. */
function buildHint(entry: Buildable, lastLines: string[], npm: NpmBuildInputs | undefined): string {
  const output = lastLines.join("\n");
  if (
    entry.agentPackage &&
    /self[- ]signed certificate|unable to get local issuer|UNABLE_TO_VERIFY/i.test(output)
  )
    return (
      `npm could not verify the registry's certificate with the CAs taken from ${npm?.caSources.join(" and ") || "nowhere (none found)"}: ` +
      "set NODE_EXTRA_CA_CERTS to a file holding the CA your network's TLS inspection uses, then build again"
    );
  if (entry.agentPackage && /E404|ETARGET|ENOTFOUND|EAI_AGAIN|ECONNREFUSED/.test(output))
    return `npm could not fetch ${agentPackageSpec(entry.agentPackage)} from ${npm?.registry ?? "the npm registry"}: check the host's npm registry setting and network`;
  return `the whole output: \`bot-bottle images build ${entry.name}\` shows each step`;
}
