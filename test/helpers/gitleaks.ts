/**
 * The gitleaks the git gate runs, for tests and benchmarks that drive the gate's scan in process:
 * this host need not have gitleaks, but the bundle image carries it (Debian's, /usr/bin/gitleaks).
 * It is copied out of the image once per image id into a cache folder under the system's temp
 * folder; the bundle image is built first when it is missing.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/exec/run.js";
import { runCli } from "./cli.js";

export const BUNDLE_IMAGE = "bot-bottle/bundle:latest";
const IN_IMAGE = "/usr/bin/gitleaks";

/** The image's id, or "" when there is no such image. */
async function imageId(ref: string): Promise<string> {
  const r = await run("docker", ["image", "inspect", "--format", "{{.Id}}", ref], {
    okExitCodes: [0, 1],
  });
  return r.exitCode === 0 ? r.stdout.trim() : "";
}

/** The path of a gitleaks binary taken from the bundle image (built first when missing). */
export async function gitleaksBinary(): Promise<string> {
  let id = await imageId(BUNDLE_IMAGE);
  if (!id) {
    const built = await runCli(["images", "build", "bundle"], { timeoutMs: 30 * 60_000 });
    if (built.code !== 0)
      throw new Error(
        `\`bot-bottle images build bundle\` failed (${built.code}):\n${built.stderr}`,
      );
    id = await imageId(BUNDLE_IMAGE);
    if (!id) throw new Error(`${BUNDLE_IMAGE} is still missing after \`images build bundle\``);
  }
  const dir = join(tmpdir(), `bot-bottle-gitleaks-${id.replace(/^sha256:/, "").slice(0, 16)}`);
  const binary = join(dir, "gitleaks");
  if (existsSync(binary)) return binary;
  await mkdir(dir, { recursive: true });
  // Copied to a name of this call's own, then renamed: two test files may ask at once.
  const partial = join(dir, `gitleaks.${randomBytes(4).toString("hex")}`);
  const { stdout } = await run("docker", ["create", "--label", "dev.bot-bottle.test=1", id]);
  const container = stdout.trim();
  try {
    await run("docker", ["cp", `${container}:${IN_IMAGE}`, partial]);
    await chmod(partial, 0o755);
    await rename(partial, binary);
  } finally {
    await run("docker", ["rm", "-f", container], { okExitCodes: [0, 1] });
    await rm(partial, { force: true });
  }
  return binary;
}
