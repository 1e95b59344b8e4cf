/**
 * The sidecar bundle's health check, run by the engine inside the bundle: a GET of init's
 * loopback /health that passes on 200 alone and prints init's report, so `docker ps` shows a
 * bundle whose daemon is up but does not answer as unhealthy, and `docker inspect` keeps the
 * report that names it. The check runs on every bundle at every interval: it is bash alone (its
 * /dev/tcp, no node, no curl), present in every Debian image.
 */
import { UsageError } from "../../errors.js";
import { parseInitStatus } from "../../shared/init-config.js";
import { visible } from "../../shared/visible.js";
import type { BundleHealth, HealthStatus } from "../backend.js";
import type { DockerCli } from "./cli.js";
import { BUNDLE_READY_DEADLINE_MS } from "./wait.js";

/**
 * Every 60 s, 2 failures in a row to turn unhealthy. A check is an exec in the bundle, about
 * 120 ms of the engine's CPU (runc entering the container): at Docker's default 30 s, 50 idle
 * bottles spent a fifth of a core on checks alone. A daemon that stops answering is shown within
 * about two minutes (init's probe, then two checks).
 */
export const HEALTH_INTERVAL_SECONDS = 60;
const HEALTH_RETRIES = 2;
/** Before the first check the bundle gets this long to become ready (as long as its start waits). */
const HEALTH_START_PERIOD_SECONDS = BUNDLE_READY_DEADLINE_MS / 1000;
/** Each read of the check waits this long; the engine gives up on the whole check at twice it. */
const READ_TIMEOUT_SECONDS = 3;

/**
 * Whole seconds between checks, for tests that cannot wait a minute; unset in use. The default
 * holds when it is unset.
 */
export const HEALTH_INTERVAL_ENV = "BOT_BOTTLE_HEALTH_INTERVAL";

/**
 * The check, as `sh -c` runs it (Docker's --health-cmd): bash opens init's port, sends the
 * request, skips the headers, prints the body and passes on 200 only. No single quote inside.
 */
export function healthCommand(port: number): string {
  const t = READ_TIMEOUT_SECONDS;
  const script = [
    `{ exec 3<>/dev/tcp/127.0.0.1/${port}; } 2>/dev/null || { echo "nothing listens on the health port ${port} of init"; exit 1; }`,
    `printf "GET /health HTTP/1.0\\r\\n\\r\\n" >&3`,
    `IFS= read -r -t ${t} status <&3 || { echo "init did not answer GET /health within ${t} s"; exit 1; }`,
    `while IFS= read -r -t ${t} line <&3 && [ \${#line} -gt 1 ]; do :; done`,
    `IFS= read -r -t ${t} -d "" body <&3`,
    `printf "%s\\n" "$body"`,
    `case $status in "HTTP/1."?" 200 "*) exit 0 ;; esac`,
    `exit 1`,
  ].join("\n");
  return `exec bash -c '${script}'`;
}

/** The interval the environment asks for, or the default; refuses anything but whole seconds. */
export function healthInterval(env: NodeJS.ProcessEnv): number {
  const given = env[HEALTH_INTERVAL_ENV];
  if (given === undefined || given === "") return HEALTH_INTERVAL_SECONDS;
  const seconds = /^\d{1,4}$/.test(given) ? Number(given) : NaN;
  if (!(seconds >= 1 && seconds <= 3600))
    throw new UsageError(
      `${HEALTH_INTERVAL_ENV} must be whole seconds from 1 to 3600`,
      `unset it: bundles are checked every ${HEALTH_INTERVAL_SECONDS} s`,
    );
  return seconds;
}

/** `docker run` flags giving the bundle its health check against init on `port`. */
export function healthFlags(port: number, env: NodeJS.ProcessEnv): string[] {
  const interval = healthInterval(env);
  return [
    "--health-cmd",
    healthCommand(port),
    "--health-interval",
    `${interval}s`,
    "--health-timeout",
    `${READ_TIMEOUT_SECONDS * 2}s`,
    "--health-retries",
    String(HEALTH_RETRIES),
    "--health-start-period",
    `${HEALTH_START_PERIOD_SECONDS}s`,
  ];
}

/** The verdict in `docker ps`'s Status column ("Up 2 minutes (unhealthy)"), if it shows one. */
export function healthOfStatus(status: string): HealthStatus | undefined {
  const m = /\((healthy|unhealthy|health: starting)\)\s*$/.exec(status);
  if (!m) return undefined;
  return m[1] === "health: starting" ? "starting" : (m[1] as HealthStatus);
}

/** `.State.Health` as `docker inspect` prints it. */
interface EngineHealth {
  Status?: string;
  Log?: { End?: string; ExitCode?: number; Output?: string }[] | null;
}

const VERDICTS: Record<string, HealthStatus> = {
  healthy: "healthy",
  unhealthy: "unhealthy",
  starting: "starting",
};

/** The last check's verdict and init's report in it; undefined for a bundle with no check. */
export function bundleHealthOf(
  health: EngineHealth | null,
  container: string,
): BundleHealth | undefined {
  const status = health?.Status !== undefined ? VERDICTS[health.Status] : undefined;
  if (!health || !status) return undefined;
  const last = health.Log?.at(-1);
  if (!last) return { status };
  const text = (last.Output ?? "").trim();
  const checked = last.End ? { checked: last.End } : {};
  try {
    return {
      status,
      report: parseInitStatus(text, `the health check of ${container}`),
      ...checked,
    };
  } catch {
    const line = text.split("\n").find((l) => l.trim()) ?? `exit status ${last.ExitCode ?? "?"}`;
    return { status, output: visible(line.trim().slice(0, 200)), ...checked };
  }
}

/** What the engine's last health check of `container` said; undefined when it has none or is gone. */
export async function inspectHealth(
  docker: DockerCli,
  container: string,
): Promise<BundleHealth | undefined> {
  const { stdout, exitCode } = await docker.run(
    ["inspect", "--type", "container", "--format", "{{json .State.Health}}", container],
    { okExitCodes: [0, 1] },
  );
  if (exitCode !== 0) return undefined;
  return bundleHealthOf(JSON.parse(stdout) as EngineHealth | null, container);
}
