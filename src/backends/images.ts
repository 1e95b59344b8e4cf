/**
 * The images bottles run on, for `bot-bottle images` and for the layers above backends/ that
 * need to know a template (its image and the agent CLI it pins): built with the Docker engine for
 * every backend (the smolmachines backend boots the same agent image in a VM).
 */
import type { Progress } from "../shared/progress.js";
import { buildBaseImage, type BaseImageResult, type Suite } from "./docker/base-image.js";
import { ensureImages, type BuildResult } from "./docker/build.js";
import { DockerCli } from "./docker/cli.js";
import { AGENT_VERSION_LABEL, agentPackageSpec, imageCatalog } from "./docker/images.js";
import type { AgentPackage } from "./docker/images.js";
import { imageFor, inspectImages } from "./docker/inspect.js";

export { DEFAULT_MIRROR, SUITES, type Suite } from "./docker/base-image.js";
export { DEFAULT_SUITE, type AgentPackage } from "./docker/images.js";
export { formatSize } from "./docker/inspect.js";
export type { BuildResult } from "./docker/build.js";

/** Names of the images built from images/ (the base is imported, not built). */
export function buildableImages(): string[] {
  return imageCatalog()
    .filter((i) => i.dockerfileDir)
    .map((i) => i.name);
}

/**
 * An agent template's image and the agent CLI it pins ("shell" pins none); undefined for a name
 * that is not a template.
 */
export function templateImage(
  name: string,
): { ref: string; agentPackage?: AgentPackage } | undefined {
  const entry = imageCatalog().find((i) => i.template && i.name === name);
  if (!entry) return undefined;
  return { ref: entry.ref, ...(entry.agentPackage ? { agentPackage: entry.agentPackage } : {}) };
}

export function buildBase(options: {
  suite: Suite;
  mirror: string;
  force: boolean;
  progress: Progress;
  env: NodeJS.ProcessEnv;
}): Promise<BaseImageResult> {
  return buildBaseImage({ ...options, docker: new DockerCli(options.env) });
}

export function buildImages(
  names: readonly string[],
  options: { force: boolean; progress: Progress; env: NodeJS.ProcessEnv; baseImage?: string },
): Promise<BuildResult[]> {
  const { env, ...rest } = options;
  return ensureImages(names, { ...rest, docker: new DockerCli(env) });
}

/** One image of the catalog as the engine has it. */
export interface ImageListing {
  name: string;
  ref: string;
  purpose: string;
  present: boolean;
  id?: string;
  /** Bytes on disk. */
  size?: number;
  created?: string;
  /** The agent CLI the catalog pins (`name@version`), for a template that installs one. */
  pinned?: string;
  /** The agent CLI the local image was built with (its label). */
  built?: string;
  /** It need not exist before a start (start builds it). */
  builtOnStart: boolean;
  remedy: string;
}

/** Every image of the catalog, present or not, in one `docker image inspect`. */
export async function listImages(env: NodeJS.ProcessEnv): Promise<ImageListing[]> {
  const catalog = imageCatalog();
  const found = await inspectImages(
    new DockerCli(env),
    catalog.map((i) => i.ref),
  );
  return catalog.map((entry) => {
    const image = imageFor(found, entry.ref);
    const built = image?.labels[AGENT_VERSION_LABEL];
    return {
      name: entry.name,
      ref: entry.ref,
      purpose: entry.purpose,
      present: image !== undefined,
      ...(image ? { id: image.id, size: image.size, created: image.created } : {}),
      ...(entry.agentPackage ? { pinned: agentPackageSpec(entry.agentPackage) } : {}),
      ...(built ? { built } : {}),
      builtOnStart: entry.builtOnStart === true,
      remedy: entry.remedy,
    };
  });
}
