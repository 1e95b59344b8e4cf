/**
 * The agent image with its user given the workspace owner's ids, so what the agent writes in the
 * workspace is the operator's. Built from the cascade's image in one layer (usermod and groupmod
 * re-own the user's files at build time, where no host folder is mounted), named by the ids, and
 * reused while that image is the one it was built from. No capability is added to the
 * agent for it: nothing is re-owned at run time.
 */
import { LABEL_PREFIX, LABEL_SCHEMA_VERSION } from "../../shared/labels.js";
import type { Progress } from "../../shared/progress.js";
import type { BottlePlan } from "../plan.js";
import { ensureImages, type BuildResult } from "./build.js";
import { ensureLayers } from "./layers.js";
import type { DockerCli } from "./cli.js";

const BASE_LABEL = `${LABEL_PREFIX}.user-image-base`;

/**
 * The images a plan runs: the bundle's; the agent's cascade (the template's image, then its
 * layers, ending in `build.ref`); and that image with the agent's user given the bottle's ids.
 */
export async function ensurePlanImages(
  docker: DockerCli,
  plan: BottlePlan,
  progress: Progress,
): Promise<void> {
  const a = plan.agentContainer;
  const results = await ensureImages(["bundle", a.build.template], {
    docker,
    progress,
    force: false,
  });
  const template = results.find((r) => r.name === a.build.template) as BuildResult;
  await ensureLayers(docker, a.build, template, progress);
  if (a.baseImage)
    await ensureUserImage(docker, {
      base: a.baseImage,
      ref: a.image,
      user: a.user,
      uid: a.uid,
      gid: a.gid,
      progress,
    });
}

export async function ensureUserImage(
  docker: DockerCli,
  options: {
    base: string;
    ref: string;
    user: string;
    uid: number;
    gid: number;
    progress: Progress;
  },
): Promise<void> {
  const { base, ref } = options;
  const { stdout } = await docker.run(["image", "inspect", "--format", "{{.Id}}", base]);
  const baseId = stdout.trim();
  const labels = await docker.imageLabels(ref);
  if (labels?.[BASE_LABEL] === baseId) return;
  options.progress.step(`docker build ${ref}: user ${options.user} with uid ${options.uid}`);
  const dockerfile = [
    `FROM ${baseId}`,
    "ARG BB_USER BB_UID BB_GID",
    "USER root",
    // -o: the owner's ids may be taken in the image already (by another user or group).
    'RUN groupmod -o -g "$BB_GID" "$BB_USER" && usermod -o -u "$BB_UID" -g "$BB_GID" "$BB_USER" ' +
      '&& chown -R "$BB_UID:$BB_GID" "$(getent passwd "$BB_USER" | cut -d: -f6)"',
    `USER ${options.user}`,
  ].join("\n");
  await docker.run(
    [
      "build",
      "--quiet",
      "--build-arg",
      `BB_USER=${options.user}`,
      "--build-arg",
      `BB_UID=${options.uid}`,
      "--build-arg",
      `BB_GID=${options.gid}`,
      "--label",
      `${LABEL_PREFIX}.schema=${LABEL_SCHEMA_VERSION}`,
      "--label",
      `${BASE_LABEL}=${baseId}`,
      "--tag",
      ref,
      "-",
    ],
    { input: dockerfile + "\n" },
  );
}
