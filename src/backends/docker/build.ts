/**
 * Building the images under images/ with `docker build`. BASE_IMAGE is the offline base when it
 * exists on this engine (so nothing is pulled), else the Dockerfile's public default. A recipe
 * label (a hash of the build context and the base image's id) lets an unchanged image be reused;
 * checking costs one `docker image inspect` for every image asked for.
 */
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Progress } from "../../shared/progress.js";
import { PrerequisiteError, UsageError } from "../../errors.js";
import { CommandFailedError } from "../../exec/run.js";
import { PACKAGE_ROOT } from "../../package-root.js";
import type { DockerCli } from "./cli.js";
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import { baseImageRef, DEFAULT_SUITE, imageCatalog, type ImageEntry } from "./images.js";

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

/** The files of an image's build context: context path -> source path. */
async function contextFiles(entry: Buildable): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string, prefix: string, keep: (p: string) => boolean): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const source = join(dir, e.name);
      if (e.isDirectory()) await walk(source, join(prefix, e.name), keep);
      else if (keep(e.name)) files.set(join(prefix, e.name), source);
    }
  };
  await walk(join(PACKAGE_ROOT, "images", entry.dockerfileDir), "", () => true);
  if (entry.withSidecars) {
    // The compiled sidecar code, and the shared types it imports; nothing else of the CLI.
    for (const part of ["sidecars", "shared"])
      await walk(
        join(PACKAGE_ROOT, "dist", part),
        join("app", part),
        (name) => !name.endsWith(".map"),
      );
    // shared/ parses with zod, and the bundle has no node_modules of its own: zod (which has no
    // dependencies) goes beside the code, its compiled ES modules only (no sources, types, CJS).
    const zod = dirname(
      createRequire(join(PACKAGE_ROOT, "package.json")).resolve("zod/package.json"),
    );
    await walk(
      zod,
      join("app", "node_modules", "zod"),
      (name) => name.endsWith(".js") || name === "package.json" || name === "LICENSE",
    );
  }
  return files;
}

async function hashFiles(files: Map<string, string>): Promise<string> {
  const hash = createHash("sha256");
  for (const path of [...files.keys()].sort()) {
    hash
      .update(path)
      .update("\0")
      .update(await readFile(files.get(path) as string))
      .update("\0");
  }
  return hash.digest("hex");
}

async function assemble(files: Map<string, string>, withSidecars: boolean): Promise<string> {
  const context = await mkdtemp(join(tmpdir(), "bot-bottle-build-"));
  for (const [path, source] of files) {
    await mkdir(dirname(join(context, path)), { recursive: true });
    await cp(source, join(context, path));
  }
  if (withSidecars) await writeFile(join(context, "app", "package.json"), '{ "type": "module" }\n');
  return context;
}

interface Inspected {
  id: string;
  labels: Record<string, string>;
}

/** Ids and labels of the local images among `refs`, in one docker call. */
async function inspectImages(
  docker: DockerCli,
  refs: readonly string[],
): Promise<Map<string, Inspected>> {
  const { stdout } = await docker.run(
    [
      "image",
      "inspect",
      "--format",
      "{{json .RepoTags}}\t{{.Id}}\t{{json .Config.Labels}}",
      ...refs,
    ],
    { okExitCodes: [0, 1] },
  );
  const found = new Map<string, Inspected>();
  for (const line of stdout.split("\n").filter((l) => l.trim())) {
    const [tags = "[]", id = "", labels = "null"] = line.split("\t");
    const info = { id, labels: (JSON.parse(labels) as Record<string, string> | null) ?? {} };
    for (const tag of JSON.parse(tags) as string[]) found.set(tag, info);
  }
  return found;
}

/** Builds each named image unless an image from the same recipe exists (or `force`). */
export async function ensureImages(
  names: readonly string[],
  options: BuildOptions,
): Promise<BuildResult[]> {
  const started = Date.now();
  const { docker, progress } = options;
  const entries = names.map(buildableImage);
  const offlineBase = baseImageRef(DEFAULT_SUITE);
  const [inspected, ...fileSets] = await Promise.all([
    inspectImages(docker, [options.baseImage ?? offlineBase, ...entries.map((e) => e.ref)]),
    ...entries.map(contextFiles),
  ]);
  const base = options.baseImage ?? (inspected.has(offlineBase) ? offlineBase : undefined);
  const baseId = base ? (inspected.get(base)?.id ?? base) : "dockerfile-default";
  const baseName = base ?? "the Dockerfile's default (pulled from its registry)";

  const results: BuildResult[] = [];
  for (const [i, entry] of entries.entries()) {
    const files = fileSets[i] as Map<string, string>;
    const recipe = createHash("sha256")
      .update(await hashFiles(files))
      .update(baseId)
      .digest("hex")
      .slice(0, 16);
    if (!options.force && inspected.get(entry.ref)?.labels[`${LABEL_PREFIX}.recipe`] === recipe) {
      results.push({
        name: entry.name,
        ref: entry.ref,
        baseImage: baseName,
        reused: true,
        seconds: 0,
      });
      continue;
    }
    const buildStarted = Date.now();
    progress.step(`docker build ${entry.ref} from ${baseName}`);
    const context = await assemble(files, entry.withSidecars === true);
    try {
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
    } catch (err) {
      // No offline base and no registry: say how to get a base instead of docker's pull error.
      if (
        !base &&
        err instanceof CommandFailedError &&
        /pull|manifest|registry|resolve|dial tcp/i.test(err.stderr)
      )
        throw new PrerequisiteError(
          `building ${entry.ref} needs its base image, which could not be pulled: ${err.stderr.trim().split("\n").pop() ?? ""}`,
          "run `sudo bot-bottle images base` to build the base from Debian's packages, then start again",
          err,
        );
      throw err;
    } finally {
      await rm(context, { recursive: true, force: true });
    }
    const seconds = (Date.now() - buildStarted) / 1000;
    progress.done(`built ${entry.ref} in ${seconds.toFixed(1)} s`);
    results.push({ name: entry.name, ref: entry.ref, baseImage: baseName, reused: false, seconds });
  }
  if (results.every((r) => r.reused) && Date.now() - started > 0)
    progress.done(`images up to date: ${results.map((r) => r.ref).join(", ")}`);
  return results;
}
