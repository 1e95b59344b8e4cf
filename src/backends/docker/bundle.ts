/**
 * The sidecar bundle's container, the same for every backend: one unprivileged, read-only
 * container per bottle on the bottle's egress network, holding every credential. The Docker
 * backend joins it to the agent's internal network; the smolmachines backend publishes its
 * agent-facing ports on random loopback ports instead.
 */
import { join } from "node:path";
import { BotBottleError, EXIT } from "../../errors.js";
import { CommandFailedError } from "../../exec/run.js";
import type { BottlePlan } from "../plan.js";
import { envFlags } from "./bottle.js";
import type { DockerCli } from "./cli.js";
import { healthFlags } from "./health.js";
import { BUNDLE_READY_DEADLINE_MS, ReadinessError, waitForEvent } from "./wait.js";

export class LaunchError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("command_failed", message, { exitCode: EXIT.internal, hint, cause });
    this.name = "LaunchError";
  }
}

/** A launch's failure as it is reported: a readiness timeout names where the log is kept. */
export function launchFailure(err: unknown, slug: string): unknown {
  if (err instanceof ReadinessError)
    return new LaunchError(
      err.message,
      `\`bot-bottle logs ${slug}\` shows the captured bundle log`,
      err,
    );
  return err;
}

export function labelFlags(labels: Record<string, string>): string[] {
  return Object.entries(labels).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
}

/**
 * Runs the bundle on `network` (and the bottle's extra networks), with its secrets by name on
 * argv and by value in docker's own environment and the engine checking init's health;
 * `publish` lists container ports to publish on random 127.0.0.1 ports.
 */
export async function startBundle(
  docker: DockerCli,
  plan: BottlePlan,
  secrets: Record<string, string>,
  options: { network: string; publish?: readonly number[] },
): Promise<void> {
  const b = plan.bundle;
  await docker.run(
    [
      "run",
      "--detach",
      "--name",
      b.name,
      "--hostname",
      "bundle",
      ...labelFlags(b.labels),
      "--network",
      options.network,
      ...(options.publish ?? []).flatMap((port) => ["--publish", `127.0.0.1::${port}`]),
      "--cap-drop",
      "ALL",
      "--security-opt",
      "no-new-privileges",
      "--read-only",
      "--tmpfs",
      "/tmp",
      "--memory",
      b.limits.memory,
      "--memory-swap",
      b.limits.memory,
      "--pids-limit",
      String(b.limits.pids),
      "--cpus",
      String(b.limits.cpus),
      "--volume",
      `${join(plan.stateDir, b.configDir)}:/etc/bot-bottle:ro`,
      "--volume",
      `${join(plan.stateDir, b.auditDir)}:${b.auditMount}`,
      ...(b.mirrorDir && b.mirrorMount
        ? ["--volume", `${join(plan.stateDir, b.mirrorDir)}:${b.mirrorMount}`]
        : []),
      ...healthFlags(b.healthPort, docker.env),
      ...envFlags(b.env),
      // Secrets: name only on argv; docker reads the value from its own environment.
      ...Object.keys(secrets).flatMap((name) => ["--env", name]),
      b.image,
    ],
    { env: secrets },
  );
  for (const network of b.extraNetworks) {
    try {
      await docker.run(["network", "connect", network, b.name]);
    } catch (err) {
      throw new LaunchError(
        `the sidecar bundle could not join the network "${network}" (bottles.${plan.bottle.name}.egress.network): ${err instanceof CommandFailedError ? err.stderr.trim().split("\n")[0] : String(err)}`,
        "create that Docker network first, or remove egress.network from the bottle",
        err,
      );
    }
  }
}

/** The host port a published container port landed on (`docker port`). */
export async function publishedPort(
  docker: DockerCli,
  container: string,
  port: number,
): Promise<number> {
  const { stdout } = await docker.run(["port", container, `${port}/tcp`]);
  const m = /^127\.0\.0\.1:(\d+)$/m.exec(stdout);
  if (!m)
    throw new LaunchError(
      `the sidecar bundle's port ${port} was not published on 127.0.0.1 (docker port: ${stdout.trim() || "nothing"})`,
      "`bot-bottle doctor` checks the engine",
    );
  return Number(m[1]);
}

/** Resolves once the bundle reports ready; fails at the deadline quoting its last log line. */
export async function bundleReady(docker: DockerCli, plan: BottlePlan): Promise<void> {
  await waitForEvent(
    docker,
    plan.bundle.name,
    "ready",
    BUNDLE_READY_DEADLINE_MS,
    `the sidecar bundle ${plan.bundle.name}`,
  );
}
