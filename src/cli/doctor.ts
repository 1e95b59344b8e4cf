/**
 * `bot-bottle doctor`: is this machine ready to run bottles? One line per check; a line that is
 * not ok says what to do. Exits 3 when a required check fails.
 */
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { checkBridgeIsolation, isolationRefusal } from "../backends/docker/isolation.js";
import { LABEL_SCHEMA_VERSION, LABELS } from "../shared/labels.js";
import { BotBottleError, EXIT } from "../errors.js";
import { DockerCli, engineFailureReason } from "../backends/docker/cli.js";
import { CommandNotFoundError, run } from "../exec/run.js";
import { imageCatalog } from "../backends/docker/images.js";
import { stateRoot } from "../state/paths.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";

export type CheckStatus = "ok" | "warn" | "fail" | "info";

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it, when status is not ok. */
  remedy?: string;
}

const LOW_DISK_BYTES = 5 * 1024 ** 3;

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** Free bytes on the file system holding `path`, or its nearest existing parent. */
async function freeBytes(path: string): Promise<{ path: string; free: number } | undefined> {
  let current = path;
  for (;;) {
    try {
      const s = await statfs(current);
      return { path: current, free: s.bavail * s.bsize };
    } catch {
      const parent = dirname(current);
      if (parent === current) return undefined;
      current = parent;
    }
  }
}

async function diskCheck(name: string, path: string): Promise<Check> {
  const disk = await freeBytes(path);
  if (!disk) return { name, status: "warn", detail: `cannot measure free space at ${path}` };
  const detail = `${gib(disk.free)} free on ${disk.path}`;
  if (disk.free < LOW_DISK_BYTES)
    return {
      name,
      status: "warn",
      detail,
      remedy:
        "free some space (e.g. `docker image prune`, `docker builder prune`): images and logs need a few GiB",
    };
  return { name, status: "ok", detail };
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

export async function runChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  const checks: Check[] = [];
  const docker = new DockerCli(env);
  let engineUp = false;
  try {
    const v = await docker.version();
    engineUp = true;
    checks.push({
      name: "docker engine",
      status: "ok",
      detail: `running: server ${v.server} (API ${v.apiVersion}, ${v.os}/${v.arch}), client ${v.client}, at ${docker.endpoint}`,
    });
  } catch (err) {
    const notInstalled = err instanceof CommandNotFoundError;
    checks.push({
      name: "docker engine",
      status: "fail",
      detail: notInstalled
        ? "the docker client is not installed"
        : `not reachable at ${docker.endpoint}: ${engineFailureReason(err)}`,
      remedy: notInstalled
        ? "install Docker (Debian: `sudo apt-get install -y docker.io`), then start it"
        : "start the engine (`sudo systemctl start docker`, or `sudo dockerd &` where there is no systemd), or point DOCKER_HOST at a running one",
    });
  }

  if (engineUp) {
    checks.push(await isolationCheck(docker));
    const info = await docker.info().catch(() => undefined);
    if (info?.rootDir) checks.push(await diskCheck("disk (docker)", info.rootDir));
  }
  checks.push(await diskCheck("disk (state)", stateRoot(env)));

  try {
    const { stdout } = await run("smolvm", ["--version"], { env, timeoutMs: 10_000 });
    checks.push({
      name: "smolvm",
      status: "ok",
      detail: `installed: ${stdout.trim().split("\n")[0] ?? ""}`,
    });
  } catch (err) {
    checks.push({
      name: "smolvm",
      status: "info",
      detail:
        err instanceof CommandNotFoundError
          ? "not installed"
          : `installed but not working: ${engineFailureReason(err)}`,
      remedy:
        "optional: only the smolmachines (microVM) backend needs it; Docker bottles work without it",
    });
  }

  for (const image of imageCatalog()) {
    const name = `image ${image.name}`;
    if (!engineUp) {
      checks.push({
        name,
        status: "warn",
        detail: `${image.ref}: cannot check while the engine is down`,
      });
      continue;
    }
    try {
      const labels = await docker.imageLabels(image.ref);
      checks.push(
        labels
          ? { name, status: "ok", detail: `${image.ref} present (${image.purpose})` }
          : {
              name,
              status: "warn",
              detail: `${image.ref} is missing (${image.purpose})`,
              remedy: image.remedy,
            },
      );
    } catch (err) {
      checks.push({
        name,
        status: "warn",
        detail: `${image.ref}: cannot inspect: ${engineFailureReason(err)}`,
      });
    }
  }
  return checks;
}

const MARK: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL", info: "info" };

export function registerDoctor(program: Command, ctx: CliContext): void {
  program
    .command("doctor")
    .description("check that this machine can run bottles, and say what to do where it cannot")
    .option("--json", "print the checks as JSON")
    .action(async (options: { json?: boolean }) => {
      const checks = await runChecks(ctx.env);
      if (options.json) writeLine(ctx.stdout, JSON.stringify(checks, null, 2));
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) {
          writeLine(ctx.stdout, `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
          if (c.remedy && c.status !== "ok")
            writeLine(ctx.stdout, `${" ".repeat(width + 8)}→ ${c.remedy}`);
        }
      }
      const failed = checks.filter((c) => c.status === "fail");
      if (failed.length > 0)
        throw new BotBottleError(
          "prerequisite_missing",
          `${failed.length === 1 ? "a required check" : `${failed.length} required checks`} failed: ${failed.map((c) => c.name).join(", ")}`,
          { exitCode: EXIT.environment },
        );
    });
}
