/**
 * Can this machine run Docker bottles? The engine answers, an internal bridge keeps the agent off
 * the host, there is room for images, and the images are built.
 */
import { randomBytes } from "node:crypto";
import type { BotBottleError } from "../../errors.js";
import { CommandNotFoundError } from "../../exec/run.js";
import { addressPoolOf, poolCapacity, SUBNET_POOL_ENV, type AddressPool } from "../address-pool.js";
import type { Check } from "../../shared/checks.js";
import { LABEL_SCHEMA_VERSION, LABELS } from "../../shared/labels.js";
import { diskCheck } from "../../state/disk.js";
import { engineFailureReason, type DockerCli } from "./cli.js";
import { AGENT_VERSION_LABEL, agentPackageSpec, imageCatalog } from "./images.js";
import { formatSize, imageFor, inspectImages, type InspectedImage } from "./inspect.js";
import { checkBridgeIsolation, isolationRefusal } from "./isolation.js";
import { describeRoutes, poolUsage } from "./networks.js";
import { plural } from "./capacity.js";

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

/** bot-bottle's address pool: where it comes from and how many more bottles it holds. */
async function poolCheck(docker: DockerCli): Promise<Check> {
  const name = "address pool";
  let pool: AddressPool;
  try {
    pool = addressPoolOf(docker.env);
  } catch (err) {
    const e = err as BotBottleError;
    return { name, status: "fail", detail: e.message, remedy: e.hint ?? "" };
  }
  const usage = await poolUsage(docker, pool);
  const source = pool.setBy === "default" ? "the default" : `from ${SUBNET_POOL_ENV}`;
  const routes = usage.shadowing.length
    ? `; the host's routes ${describeRoutes(usage.shadowing)} overlap it`
    : "";
  const detail = `${pool.cidr} (${source}, a /${pool.prefix} per network): room for ${usage.freeBottles} more of ${plural(poolCapacity(pool), "bottle")}, ${usage.bottles} on this engine${routes}`;
  const remedy = `set ${SUBNET_POOL_ENV} to a larger private range free on this host`;
  if (usage.freeBottles === 0) return { name, status: "fail", detail, remedy };
  if (routes) return { name, status: "warn", detail, remedy };
  return { name, status: "ok", detail };
}

/**
 * One line per image of the catalog: present (with its size, and the agent CLI it holds), or
 * missing with how to get it. A template start builds (claude, codex) missing is only info.
 */
async function imageChecks(docker: DockerCli, engineUp: boolean): Promise<Check[]> {
  const catalog = imageCatalog();
  if (!engineUp)
    return catalog.map((image) => ({
      name: `image ${image.name}`,
      status: "warn",
      detail: `${image.ref}: cannot check while the engine is down`,
    }));
  let found: Map<string, InspectedImage>;
  try {
    found = await inspectImages(
      docker,
      catalog.map((i) => i.ref),
    );
  } catch (err) {
    return catalog.map((image) => ({
      name: `image ${image.name}`,
      status: "warn",
      detail: `${image.ref}: cannot inspect: ${engineFailureReason(err)}`,
    }));
  }
  return catalog.map((image): Check => {
    const name = `image ${image.name}`;
    const local = imageFor(found, image.ref);
    if (!local)
      return {
        name,
        status: image.builtOnStart ? "info" : "warn",
        detail: `${image.ref} is missing (${image.purpose})`,
        remedy: image.remedy,
      };
    const pinned = image.agentPackage ? agentPackageSpec(image.agentPackage) : undefined;
    const built = local.labels[AGENT_VERSION_LABEL];
    const facts = [formatSize(local.size), ...(built ? [built] : [])].join(", ");
    if (pinned && built !== pinned)
      return {
        name,
        status: "info",
        detail: `${image.ref} present, ${facts}, but this bot-bottle pins ${pinned} (start rebuilds it)`,
        remedy: `run \`bot-bottle images build ${image.name}\``,
      };
    return { name, status: "ok", detail: `${image.ref} present, ${facts} (${image.purpose})` };
  });
}

export async function dockerChecks(docker: DockerCli): Promise<Check[]> {
  const engine = await engineCheck(docker);
  const engineUp = engine.status === "ok";
  const checks = [engine];
  if (engineUp) {
    checks.push(await isolationCheck(docker), await poolCheck(docker));
    const info = await docker.info().catch(() => undefined);
    if (info?.rootDir) checks.push(await diskCheck("disk (docker)", info.rootDir));
  }
  return [...checks, ...(await imageChecks(docker, engineUp))];
}
