/**
 * The agent image as smolvm boots it: the Docker image of the agent's template, with root as its
 * user (smolvm before v1.14 runs every exec as the image's USER, and provisioning needs root; the
 * agent's own commands drop to `node`), saved as a `docker save` archive. An archive is named by
 * the image's id, so an unchanged image is saved once and reused.
 */
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Progress } from "../../shared/progress.js";
import type { DockerCli } from "../docker/cli.js";

async function imageId(docker: DockerCli, ref: string): Promise<string> {
  const { stdout } = await docker.run(["image", "inspect", "--format", "{{.Id}}", ref]);
  return stdout.trim().replace(/^sha256:/, "");
}

/** The archive of `ref` for smolvm, saved into `cacheDir` unless the same image's is there. */
export async function agentArchive(
  docker: DockerCli,
  ref: string,
  cacheDir: string,
  progress: Progress,
): Promise<string> {
  const base = await imageId(docker, ref);
  const vmRef = `${ref.replace(/:[^:/]*$/, "")}-smolvm:${base.slice(0, 12)}`;
  const file = join(cacheDir, `${vmRef.replace(/[/:]/g, "_")}.tar`);
  if (
    await stat(file).then(
      (s) => s.isFile() && s.size > 0,
      () => false,
    )
  )
    return file;

  progress.step(`saving ${ref} for smolvm (${file})`);
  await docker.run(["build", "--quiet", "--tag", vmRef, "-"], {
    input: `FROM ${base.slice(0, 12)}\nUSER root\n`,
  });
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const partial = `${file}.partial-${process.pid}`;
  try {
    await docker.run(["save", "--output", partial, vmRef]);
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
  return file;
}
