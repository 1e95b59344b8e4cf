/**
 * The images bottles run on, for `bot-bottle images`: built with the Docker engine for every
 * backend (the smolmachines backend boots the same agent image in a VM).
 */
import type { Progress } from "../shared/progress.js";
import { buildBaseImage, type BaseImageResult, type Suite } from "./docker/base-image.js";
import { ensureImages, type BuildResult } from "./docker/build.js";
import { DockerCli } from "./docker/cli.js";
import { imageCatalog } from "./docker/images.js";

export { DEFAULT_MIRROR, SUITES, type Suite } from "./docker/base-image.js";
export { DEFAULT_SUITE } from "./docker/images.js";

/** Names of the images built from images/ (the base is imported, not built). */
export function buildableImages(): string[] {
  return imageCatalog()
    .filter((i) => i.dockerfileDir)
    .map((i) => i.name);
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
