/**
 * Can this machine run Docker bottles? The engine answers, an internal bridge keeps the agent off
 * the host, there is room for images, and the images are built.
 */
import { randomBytes } from "node:crypto";
import { CommandNotFoundError } from "../../exec/run.js";
import type { Check } from "../../shared/checks.js";
import { LABEL_SCHEMA_VERSION, LABELS } from "../../shared/labels.js";
import { diskCheck } from "../../state/disk.js";
import { engineFailureReason, type DockerCli } from "./cli.js";
import { imageCatalog } from "./images.js";
import { checkBridgeIsolation, isolationRefusal } from "./isolation.js";

async function engineCheck(docker: DockerCli): Promise<Check> {
  try {
    const v = await docker.version();
    return {
      name: "docker engine",
      status: "ok",
      detail: `running: server ${v.server} (API ${v.apiVersion}, ${v.os}/${v.arch}), client ${v.client}, at ${docker.endpoint}`,
    };
  } catch (err) {
    const notInstalled = err instanceof CommandNotFoundError;
    return {
      name: "docker engine",
      status: "fail",
      detail: notInstalled
        ? "the docker client is not installed"
        : `not reachable at ${docker.endpoint}: ${engineFailureReason(err)}`,
      remedy: notInstalled
        ? "`bot-bottle setup` installs and starts it (Debian, as root); elsewhere install Docker, then start it"
        : "`bot-bottle setup` starts it (Debian, as root); elsewhere `sudo systemctl start docker`, or point DOCKER_HOST at a running engine",
    };
  }
}

/**
 * Can this engine keep an agent off the host? Creates an internal bridge the way `start` does
 * and looks for a host address on it (the hole `--internal` alone leaves open).
 */
async function isolationCheck(docker: DockerCli): Promise<Check> {
  const id = randomBytes(3).toString("hex");
  const name = `bot-bottle-doctor-${id}`;
  const bridge = `bbdoc${id}`;
  const check = "host isolation";
  try {
    await docker.run([
      "network",
      "create",
      "--internal",
      "--opt",
      "com.docker.network.bridge.inhibit_ipv4=true",
      "--opt",
      `com.docker.network.bridge.name=${bridge}`,
      "--label",
      `${LABELS.schema}=${LABEL_SCHEMA_VERSION}`,
      name,
    ]);
  } catch (err) {
    return {
      name: check,
      status: "fail",
      detail: `cannot create an internal network: ${engineFailureReason(err)}`,
      remedy: "bot-bottle needs the bridge network driver",
    };
  }
  try {
    const refusal = isolationRefusal(bridge, checkBridgeIsolation(bridge));
    if (refusal)
      return {
        name: check,
        status: "fail",
        detail: refusal.message,
        remedy: `${refusal.remedy} (start refuses here)`,
      };
    return {
      name: check,
      status: "ok",
      detail: "the agent's internal bridge holds no host address: host services are out of reach",
    };
  } finally {
    await docker.run(["network", "rm", name]).catch(() => undefined);
  }
}

async function imageChecks(docker: DockerCli, engineUp: boolean): Promise<Check[]> {
  return Promise.all(
    imageCatalog().map(async (image): Promise<Check> => {
      const name = `image ${image.name}`;
      if (!engineUp)
        return {
          name,
          status: "warn",
          detail: `${image.ref}: cannot check while the engine is down`,
        };
      try {
        const labels = await docker.imageLabels(image.ref);
        return labels
          ? { name, status: "ok", detail: `${image.ref} present (${image.purpose})` }
          : {
              name,
              status: "warn",
              detail: `${image.ref} is missing (${image.purpose})`,
              remedy: image.remedy,
            };
      } catch (err) {
        return {
          name,
          status: "warn",
          detail: `${image.ref}: cannot inspect: ${engineFailureReason(err)}`,
        };
      }
    }),
  );
}

export async function dockerChecks(docker: DockerCli): Promise<Check[]> {
  const engine = await engineCheck(docker);
  const engineUp = engine.status === "ok";
  const checks = [engine];
  if (engineUp) {
    checks.push(await isolationCheck(docker));
    const info = await docker.info().catch(() => undefined);
    if (info?.rootDir) checks.push(await diskCheck("disk (docker)", info.rootDir));
  }
  return [...checks, ...(await imageChecks(docker, engineUp))];
}
