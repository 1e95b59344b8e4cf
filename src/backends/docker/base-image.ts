/**
 * The offline base image: Debian's packages fetched by debootstrap into a temporary folder, then
 * `docker import`ed and tagged, so Dockerfiles can build FROM it where no registry is reachable.
 * A recipe label lets later runs reuse an image built by the same recipe.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrerequisiteError } from "../../errors.js";
import type { Progress } from "../../shared/progress.js";
import type { DockerCli } from "./cli.js";
import { engineFailureReason } from "./cli.js";
import { CommandNotFoundError, run } from "../../exec/run.js";
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import { baseImageRef } from "./images.js";

export const DEFAULT_MIRROR = "http://deb.debian.org/debian";
export const SUITES = ["bookworm", "trixie"] as const;
export type Suite = (typeof SUITES)[number];

/** Packages on top of debootstrap's minimal base; later Dockerfiles apt-get the rest. */
const INCLUDE = ["ca-certificates"];
const RECIPE_VERSION = "1";

export interface BaseImageOptions {
  suite: Suite;
  mirror: string;
  force: boolean;
  docker: DockerCli;
  progress: Progress;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface BaseImageResult {
  ref: string;
  reused: boolean;
  seconds: number;
}

export function baseRecipe(suite: Suite): string {
  return createHash("sha256")
    .update(JSON.stringify({ RECIPE_VERSION, suite, variant: "minbase", INCLUDE }))
    .digest("hex")
    .slice(0, 16);
}

/** Mount points debootstrap may leave inside the target when it fails; unmounted before removal. */
async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile("/proc/self/mounts", "utf8").catch(() => "");
  return table
    .split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((mp): mp is string => mp !== undefined && mp.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
}

async function removeRootfs(dir: string): Promise<void> {
  for (const mp of await mountsUnder(dir)) await run("umount", ["-l", mp]).catch(() => undefined);
  if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true });
}

export async function buildBaseImage(options: BaseImageOptions): Promise<BaseImageResult> {
  const started = Date.now();
  const { docker, progress, suite } = options;
  const ref = baseImageRef(suite);
  const recipe = baseRecipe(suite);

  progress.step(`checking the Docker engine and ${ref}`);
  try {
    await docker.version();
  } catch (err) {
    throw new PrerequisiteError(
      `the Docker engine is not reachable at ${docker.endpoint}: ${engineFailureReason(err)}`,
      "start it (`sudo systemctl start docker`, or `sudo dockerd &`) and try again; `bot-bottle doctor` checks",
      err,
    );
  }
  const labels = await docker.imageLabels(ref);
  if (!options.force && labels?.[`${LABEL_PREFIX}.base-recipe`] === recipe) {
    progress.done(`${ref} is already built from this recipe; reusing it (--force rebuilds)`);
    return { ref, reused: true, seconds: (Date.now() - started) / 1000 };
  }
  if (process.getuid?.() !== 0)
    throw new PrerequisiteError(
      "building the base image runs debootstrap, which needs root",
      "run `sudo bot-bottle images base`, or use a machine that can pull " + "debian:trixie-slim",
    );
  try {
    await run("debootstrap", ["--version"], { env: options.env });
  } catch (err) {
    if (err instanceof CommandNotFoundError)
      throw new PrerequisiteError(
        "debootstrap is not installed",
        "install it with `sudo apt-get install -y debootstrap` (Debian/Ubuntu)",
        err,
      );
    throw err;
  }

  const work = await mkdtemp(join(options.env["TMPDIR"] || tmpdir(), "bot-bottle-base-"));
  const rootfs = join(work, "rootfs");
  try {
    progress.step(`debootstrap ${suite} (minbase) from ${options.mirror}`);
    const counts = new Map<string, number>();
    const onLine = (line: string) => {
      const m = /^I: (\w+)/.exec(line);
      if (!m?.[1]) return;
      counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
      progress.detail(`${m[1]} (${counts.get(m[1])})  ${line.slice(3)}`);
    };
    await run(
      "debootstrap",
      ["--variant=minbase", `--include=${INCLUDE.join(",")}`, suite, rootfs, options.mirror],
      {
        env: options.env,
        onStdoutLine: onLine,
        onStderrLine: onLine,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    await rm(join(rootfs, "var/cache/apt/archives"), { recursive: true, force: true });
    await rm(join(rootfs, "var/lib/apt/lists"), { recursive: true, force: true });

    progress.step(`docker import as ${ref}`);
    const tarball = join(work, "rootfs.tar");
    await run("tar", ["--numeric-owner", "-C", rootfs, "-cf", tarball, "."]);
    const changes = [
      `LABEL ${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
      `LABEL ${LABEL_PREFIX}.kind=base`,
      `LABEL ${LABEL_PREFIX}.base-recipe=${recipe}`,
      `LABEL ${LABEL_PREFIX}.base-suite=${suite}`,
      "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "ENV LANG=C.UTF-8",
      'CMD ["/bin/bash"]',
    ];
    await docker.run(["import", ...changes.flatMap((c) => ["--change", c]), tarball, ref]);
  } finally {
    await removeRootfs(work);
  }
  const seconds = (Date.now() - started) / 1000;
  progress.done(`built ${ref} in ${seconds.toFixed(1)} s`);
  return { ref, reused: false, seconds };
}
