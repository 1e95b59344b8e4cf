/**
 * The agent's image cascade (AgentImagePlan): the template's image, then each layer's Dockerfile
 * built FROM the previous image (`--build-arg BASE_IMAGE=<its id>`), with the Dockerfile's folder
 * as the build context (without .git and node_modules). Each layer carries a recipe label, a hash
 * of its Dockerfile, its context and the previous image's id, and is rebuilt only when that
 * changed, so a changed template or an edited Dockerfile rebuilds it and every layer above it.
 */
import { createHash } from "node:crypto";
import { readFile, rm, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { BotBottleError, EXIT } from "../../errors.js";
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import type { Progress } from "../../shared/progress.js";
import type { AgentImagePlan } from "../plan.js";
import { ensureImages, RECIPE_LABEL, type BuildResult } from "./build.js";
import type { DockerCli } from "./cli.js";
import { addFolder, assembleContext, hashContext, type BuildContext } from "./context.js";
import { dockerBuild } from "./docker-build.js";
import { imageFor, inspectImages } from "./inspect.js";

/** Folders a layer's build context leaves out: history and installed dependencies. */
export const SKIPPED_FOLDERS: readonly string[] = [".git", "node_modules"];
/** The label naming what a layer image was built for (e.g. `agents.coder.dockerfile`). */
export const LAYER_LABEL = `${LABEL_PREFIX}.layer`;

export interface LayerResult {
  what: string;
  ref: string;
  id: string;
  reused: boolean;
  seconds: number;
}

export interface AgentImageResult {
  /** The image the cascade ended in (`build.ref`) and its id. */
  ref: string;
  id: string;
  template: BuildResult;
  layers: LayerResult[];
}

/** The tag of layer `index` (0-based) of `count`: the last is the cascade's ref. */
export function layerRef(ref: string, index: number, count: number): string {
  return index === count - 1 ? ref : `${ref}-layer${index + 1}`;
}

/** A layer's recipe: its Dockerfile (name and text), its context's digest, the image below. */
export function layerRecipe(parts: {
  dockerfileName: string;
  dockerfileText: string;
  contextDigest: string;
  previousId: string;
}): string {
  return createHash("sha256")
    .update(JSON.stringify([parts.dockerfileName, parts.dockerfileText]))
    .update("\0")
    .update(parts.contextDigest)
    .update("\0")
    .update(parts.previousId)
    .digest("hex")
    .slice(0, 16);
}

/** The build context of a layer: the Dockerfile's folder without .git and node_modules. */
export async function layerContext(dockerfile: string): Promise<BuildContext> {
  const context: BuildContext = new Map();
  await addFolder(context, dirname(dockerfile), "", {
    dir: (name) => !SKIPPED_FOLDERS.includes(name),
  });
  return context;
}

/** A layer whose Dockerfile is missing or fails to build: the manifest's field is named. */
export class LayerError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("command_failed", message, { exitCode: EXIT.usage, hint, cause });
    this.name = "LayerError";
  }
}

/**
 * Makes `build.ref` the top of the cascade, from the template's image already ensured: builds
 * the layers whose recipe changed, reuses the others. With no layers, `build.ref` is tagged on
 * the template's image (when it is another name).
 */
export async function ensureLayers(
  docker: DockerCli,
  build: AgentImagePlan,
  template: BuildResult,
  progress: Progress,
): Promise<AgentImageResult> {
  const count = build.layers.length;
  const refs = build.layers.map((_, i) => layerRef(build.ref, i, count));
  const inspected = await inspectImages(docker, [build.ref, ...refs]);
  if (count === 0) {
    if (build.ref !== template.ref && imageFor(inspected, build.ref)?.id !== template.id)
      await docker.run(["tag", template.id, build.ref]);
    return { ref: build.ref, id: template.id, template, layers: [] };
  }
  let previousId = template.id;
  const layers: LayerResult[] = [];
  for (const [i, layer] of build.layers.entries()) {
    const ref = refs[i] as string;
    const dockerfile = resolve(layer.dockerfile);
    if (!(await stat(dockerfile).catch(() => undefined))?.isFile())
      throw new LayerError(
        `${layer.what}: the Dockerfile ${dockerfile} does not exist`,
        `write it, or remove ${layer.what} from the manifest`,
      );
    const context = await layerContext(dockerfile);
    const name = basename(dockerfile);
    // The Dockerfile's own bytes, even where it is a link.
    context.set(name, { file: dockerfile });
    const text = await readFile(dockerfile, "utf8");
    const recipe = layerRecipe({
      dockerfileName: name,
      dockerfileText: text,
      contextDigest: await hashContext(context),
      previousId,
    });
    const existing = imageFor(inspected, ref);
    if (existing?.labels[RECIPE_LABEL] === recipe) {
      layers.push({ what: layer.what, ref, id: existing.id, reused: true, seconds: 0 });
      previousId = existing.id;
      continue;
    }
    const started = Date.now();
    progress.step(`docker build ${ref}: ${layer.what} (${dockerfile})`);
    const dir = await assembleContext(context);
    try {
      await dockerBuild(
        docker,
        [
          "--build-arg",
          `BASE_IMAGE=${previousId}`,
          "--label",
          `${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
          "--label",
          `${LABEL_PREFIX}.kind=agent-layer`,
          "--label",
          `${LAYER_LABEL}=${layer.what}`,
          "--label",
          `${RECIPE_LABEL}=${recipe}`,
          "--file",
          `${dir}/${name}`,
          "--tag",
          ref,
          dir,
        ],
        {
          progress,
          onFailure: (lastLines, err) =>
            new LayerError(
              `${layer.what}: building ${dockerfile} failed` +
                (lastLines.length ? `; docker's last lines:\n  ${lastLines.join("\n  ")}` : ""),
              `fix ${dockerfile} (it is built FROM the image below it, passed as ARG BASE_IMAGE), then start again`,
              err,
            ),
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const built = imageFor(await inspectImages(docker, [ref]), ref);
    if (!built) throw new Error(`docker build reported success but ${ref} is not there`);
    const seconds = (Date.now() - started) / 1000;
    progress.done(`built ${ref} in ${seconds.toFixed(1)} s`);
    layers.push({ what: layer.what, ref, id: built.id, reused: false, seconds });
    previousId = built.id;
  }
  return { ref: build.ref, id: previousId, template, layers };
}

/** The whole cascade: the template's image (and what it is built from), then the layers. */
export async function ensureAgentImage(
  docker: DockerCli,
  build: AgentImagePlan,
  progress: Progress,
): Promise<AgentImageResult> {
  const results = await ensureImages([build.template], { docker, progress, force: false });
  const template = results.find((r) => r.name === build.template) as BuildResult;
  return ensureLayers(docker, build, template, progress);
}
