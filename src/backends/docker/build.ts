/**
 * Building the images under images/ with `docker build`. BASE_IMAGE is the offline base when it
 * exists on this engine (so nothing is pulled), else the Dockerfile's public default. A recipe
 * label (a hash of the build context and the base image's id) lets an unchanged image be reused.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import type { Progress } from "../../cli/progress.js";
import type { DockerCli } from "./cli.js";
import { UsageError } from "../../errors.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import {
  baseImageRef,
  DEFAULT_SUITE,
  imageCatalog,
  LABEL_PREFIX,
  LABEL_SCHEMA_VERSION,
  type ImageEntry,
} from "./images.js";

export interface BuildOptions {
  docker: DockerCli;
  progress: Progress;
  /** BASE_IMAGE to build from; default: the offline base when present, else the Dockerfile's. */
  baseImage?: string;
  force: boolean;
}

export interface BuildResult {
  name: string;
  ref: string;
  baseImage: string;
  reused: boolean;
  seconds: number;
}

export function buildableImage(name: string): ImageEntry & { dockerfileDir: string } {
  const entry = imageCatalog().find((i) => i.name === name);
  if (!entry?.dockerfileDir) {
    const names = imageCatalog()
      .filter((i) => i.dockerfileDir)
      .map((i) => i.name);
    throw new UsageError(`there is no buildable image "${name}"`, `images: ${names.join(", ")}`);
  }
  return entry as ImageEntry & { dockerfileDir: string };
}

async function contextHash(dir: string): Promise<string> {
  const hash = createHash("sha256");
  const walk = async (d: string): Promise<void> => {
    for (const entry of (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else
        hash
          .update(relative(dir, path))
          .update("\0")
          .update(await readFile(path))
          .update("\0");
    }
  };
  await walk(dir);
  return hash.digest("hex");
}

async function imageId(docker: DockerCli, ref: string): Promise<string | undefined> {
  try {
    const { stdout } = await docker.run(["image", "inspect", "--format", "{{.Id}}", ref]);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

export async function buildImage(name: string, options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const entry = buildableImage(name);
  const { docker, progress } = options;
  const context = join(PACKAGE_ROOT, "images", entry.dockerfileDir);

  progress.step(`choosing the base for ${entry.ref}`);
  const offlineBase = baseImageRef(DEFAULT_SUITE);
  const base =
    options.baseImage ?? ((await imageId(docker, offlineBase)) ? offlineBase : undefined);
  const baseId = base ? ((await imageId(docker, base)) ?? base) : "dockerfile-default";
  const recipe = createHash("sha256")
    .update(await contextHash(context))
    .update(baseId)
    .digest("hex")
    .slice(0, 16);
  const baseName = base ?? "the Dockerfile's default (pulled from its registry)";
  const labels = await docker.imageLabels(entry.ref);
  if (!options.force && labels?.[`${LABEL_PREFIX}.recipe`] === recipe) {
    progress.done(`${entry.ref} is up to date (built from ${baseName}); reusing it`);
    return {
      name,
      ref: entry.ref,
      baseImage: baseName,
      reused: true,
      seconds: (Date.now() - started) / 1000,
    };
  }

  progress.step(`docker build ${entry.ref} from ${baseName}`);
  await docker.run(
    [
      "build",
      ...(base ? ["--build-arg", `BASE_IMAGE=${base}`] : []),
      "--label",
      `${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
      "--label",
      `${LABEL_PREFIX}.kind=${entry.name}`,
      "--label",
      `${LABEL_PREFIX}.recipe=${recipe}`,
      "--tag",
      entry.ref,
      context,
    ],
    {
      onStdoutLine: (line) => {
        if (line.trim()) progress.detail(line.trim());
      },
    },
  );
  const seconds = (Date.now() - started) / 1000;
  progress.done(`built ${entry.ref} in ${seconds.toFixed(1)} s`);
  return { name, ref: entry.ref, baseImage: baseName, reused: false, seconds };
}
