/**
 * When the machine is full: memory too low to start another bottle, or the engine refusing for
 * want of memory, disk, processes, files or addresses. Each becomes one sentence saying what ran
 * out, how many bottles are on this engine and what to do, with the engine's own line after it
 * for reference — never the engine's raw message alone.
 */
import { readFile } from "node:fs/promises";
import { BotBottleError, EXIT } from "../../errors.js";
import { CommandFailedError } from "../../exec/run.js";
import type { DockerCli } from "./cli.js";
import { dockerResources } from "./resources.js";

/** The machine has run out of something a bottle needs: says what, and what to do. */
export class MachineFullError extends BotBottleError {
  constructor(message: string, hint: string, cause?: unknown) {
    super("prerequisite_missing", message, { exitCode: EXIT.environment, hint, cause });
    this.name = "MachineFullError";
  }
}

/**
 * Memory a start needs free: the bundle (about 30 MB resident) and the agent's first processes,
 * with room for the engine's own work. Below it a start would only end in the kernel's OOM killer.
 */
export const START_MEMORY_MIB = 256;

const STOP_SOME = "stop bottles you no longer need (`bot-bottle ls`, then `bot-bottle stop SLUG…`)";

export const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`;

export const bottlesOn = (n: number): string =>
  `${plural(n, "bottle")} ${n === 1 ? "is" : "are"} on this engine`;

/** MemAvailable from /proc/meminfo, in MiB; undefined where there is none. */
export async function availableMemoryMib(
  read: () => Promise<string> = () => readFile("/proc/meminfo", "utf8"),
): Promise<number | undefined> {
  const text = await read().catch(() => "");
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(text);
  return m ? Math.floor(Number(m[1]) / 1024) : undefined;
}

/** How many bottles have something on this engine (either backend's bundles live there). */
export async function bottlesOnEngine(docker: DockerCli): Promise<number> {
  const resources = await dockerResources(docker).catch(() => []);
  return new Set(resources.map((r) => r.slug)).size;
}

const tooLittle = (mib: number | undefined): boolean => mib !== undefined && mib < START_MEMORY_MIB;

/** Refuses a start the host has no memory for; undefined when there is enough (or no figure). */
export function memoryRefusal(
  availableMib: number | undefined,
  bottles: number,
): MachineFullError | undefined {
  if (!tooLittle(availableMib)) return undefined;
  return new MachineFullError(
    `this machine has ${availableMib} MiB of memory available, less than the ${START_MEMORY_MIB} MiB a bottle needs to start: ${bottlesOn(bottles)}`,
    `${STOP_SOME}, or free memory on the host`,
  );
}

/** What the engine ran out of, by its message; the first that matches. */
const ENGINE_LIMITS: { pattern: RegExp; what: string; remedy: string }[] = [
  {
    pattern: /cannot allocate memory|out of memory|\bENOMEM\b/i,
    what: "the engine could not get memory for this bottle",
    remedy: `${STOP_SOME}, or free memory on the host`,
  },
  {
    pattern: /no space left on device|\bENOSPC\b/i,
    what: "the disk the engine writes to is full",
    remedy:
      "free space under Docker's data root (`bot-bottle doctor` shows it), e.g. `docker image prune`",
  },
  {
    pattern: /resource temporarily unavailable|\bEAGAIN\b|pids?\.max/i,
    what: "the machine has reached its limit on processes or threads",
    remedy: `${STOP_SOME}, or raise the host's process limits (kernel.pid_max, the engine's TasksMax)`,
  },
  {
    pattern: /too many open files|\bEMFILE\b|\bENFILE\b/i,
    what: "the engine has reached its limit on open files",
    remedy: `${STOP_SOME}, or raise the engine's LimitNOFILE`,
  },
  {
    pattern: /non-overlapping IPv4 address pool|no available network|exchange full/i,
    what: "the engine has no network addresses left",
    remedy: `${STOP_SOME}, or remove networks you no longer need (\`docker network ls\`)`,
  },
];

/** What the engine's refusal says ran out, when it is one of ENGINE_LIMITS. */
function engineLimit(err: unknown): (typeof ENGINE_LIMITS)[number] | undefined {
  if (!(err instanceof CommandFailedError)) return undefined;
  return ENGINE_LIMITS.find((l) => l.pattern.test(err.stderr));
}

/** The engine's refusal as a full machine, when it is one; undefined for any other failure. */
export function engineLimitError(err: unknown, bottles: number): MachineFullError | undefined {
  const limit = engineLimit(err);
  if (!limit || !(err instanceof CommandFailedError)) return undefined;
  const line = err.stderr
    .split("\n")
    .map((l) => l.trim())
    .find((l) => limit.pattern.test(l));
  return new MachineFullError(
    `${limit.what}: ${bottlesOn(bottles)} (the engine said: ${line ?? err.stderr.trim()})`,
    limit.remedy,
    err,
  );
}

/** Refuses a start before anything is created when the host's memory is already too low. */
export async function refuseWithoutMemory(docker: DockerCli): Promise<void> {
  const available = await availableMemoryMib();
  if (!tooLittle(available)) return;
  const refusal = memoryRefusal(available, await bottlesOnEngine(docker));
  if (refusal) throw refusal;
}

/** A launch's failure as a full machine when the engine's refusal says so; else undefined. */
export async function machineFull(
  docker: DockerCli,
  err: unknown,
): Promise<MachineFullError | undefined> {
  // Counting the bottles is an engine call: made only for a refusal that will quote it.
  if (!engineLimit(err)) return undefined;
  return engineLimitError(err, await bottlesOnEngine(docker));
}
