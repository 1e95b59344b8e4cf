/**
 * `bot-bottle setup`: make this machine able to run bottles. Facts about the host (platform,
 * programs found, whether an engine answers) become a plan — packages to install from Debian's
 * archive, the engine to start — or, where bot-bottle cannot act (not root, not Debian, no
 * apt-get, another user's engine), the exact commands a person runs instead. The plan is then
 * carried out step by step; what is already in place is said and skipped.
 */
import { existsSync } from "node:fs";
import { access, constants, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { dockerEngine } from "../backends/index.js";
import { PrerequisiteError } from "../errors.js";
import { CommandFailedError, type Runner } from "../exec/run.js";
import type { Progress } from "../shared/progress.js";

const {
  DOCKERD_LOG,
  ENGINE_PACKAGE,
  engineEndpoint,
  isLocalEndpoint,
  manualStartCommand,
  probeEngine,
  startEngine,
} = dockerEngine;
type EngineStarted = dockerEngine.EngineStarted;
type EngineState = dockerEngine.EngineState;
type StartMethod = dockerEngine.StartMethod;

/** Facts about this machine, passed in so tests can supply their own. */
export interface HostPlatform {
  /** Debian or a derivative such as Ubuntu: /etc/debian_version exists. */
  debian: boolean;
  root: boolean;
  /** systemd runs: /run/systemd/system exists. */
  systemd: boolean;
  /** The path of a program on PATH or in the sbin folders, or undefined. */
  which(program: string): Promise<string | undefined>;
}

/** sbin folders are searched too: a user's PATH often lacks them, and dockerd lives there. */
const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

export async function findProgram(
  program: string,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  const dirs = [...(env["PATH"] ?? "").split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) {
    const path = join(dir, program);
    try {
      if (!(await stat(path)).isFile()) continue;
      await access(path, constants.X_OK);
      return path;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

export function hostPlatform(env: NodeJS.ProcessEnv): HostPlatform {
  return {
    debian: existsSync("/etc/debian_version"),
    root: process.getuid?.() === 0,
    systemd: existsSync("/run/systemd/system"),
    which: (program) => findProgram(program, env),
  };
}

/** A Debian package this machine needs, and the programs that show it is installed. */
export interface HostNeed {
  package: string;
  programs: readonly string[];
  purpose: string;
}

export const HOST_NEEDS: readonly HostNeed[] = [
  { ...ENGINE_PACKAGE, purpose: "the Docker engine bottles run on" },
  {
    package: "debootstrap",
    programs: ["debootstrap"],
    purpose: "builds the offline base image (`images base`)",
  },
  { package: "acl", programs: ["setfacl"], purpose: "file access lists (setfacl)" },
];

export interface SetupFacts {
  debian: boolean;
  root: boolean;
  systemd: boolean;
  aptGet: boolean;
  engine: EngineState;
  endpoint: string;
  /** The client talks to this machine's own engine (DOCKER_HOST unset or its default socket). */
  localEngine: boolean;
  needs: { need: HostNeed; found: string[]; missing: string[] }[];
}

export async function gatherFacts(
  runner: Runner,
  platform: HostPlatform,
  env: NodeJS.ProcessEnv,
): Promise<SetupFacts> {
  const needs = [];
  for (const need of HOST_NEEDS) {
    const found: string[] = [];
    const missing: string[] = [];
    for (const program of need.programs) {
      const path = await platform.which(program);
      if (path) found.push(path);
      else missing.push(program);
    }
    needs.push({ need, found, missing });
  }
  return {
    debian: platform.debian,
    root: platform.root,
    systemd: platform.systemd,
    aptGet: (await platform.which("apt-get")) !== undefined,
    engine: await probeEngine(runner, env),
    endpoint: engineEndpoint(env),
    localEngine: isLocalEndpoint(env),
    needs,
  };
}

export interface SetupPlan {
  /** What is already in place, one line each, by step. */
  present: { packages: string[]; engine: string[] };
  /** Debian packages to install, in this order; empty when none. */
  install: string[];
  /** How the engine will be started, when it must be. */
  start?: StartMethod;
  /** Set when this machine cannot carry the plan out: why, and what a person runs instead. */
  blocked?: { reasons: string[]; commands: string[]; hint: string };
}

/** Facts to plan. Pure: no program runs, nothing is read. */
export function planSetup(facts: SetupFacts): SetupPlan {
  const { engine, endpoint } = facts;
  const engineAnswers = engine.state === "up" || engine.state === "denied";
  const plan: SetupPlan = { present: { packages: [], engine: [] }, install: [] };
  for (const { need, found, missing } of facts.needs) {
    if (missing.length === 0)
      plan.present.packages.push(`${need.package} already installed (${found.join(", ")})`);
    else if (need.package === ENGINE_PACKAGE.package && engineAnswers)
      plan.present.packages.push(`${need.package} not needed: an engine answers at ${endpoint}`);
    else plan.install.push(need.package);
  }
  if (engine.state === "up")
    plan.present.engine.push(
      `Docker engine already running: server ${engine.version} at ${endpoint}`,
    );
  else if (engine.state === "denied")
    plan.present.engine.push(`Docker engine running at ${endpoint}, but not for this user`);
  else plan.start = facts.systemd ? "systemd" : "dockerd";

  const reasons: string[] = [];
  if (plan.install.length > 0) {
    if (!facts.debian) reasons.push("this is not Debian or Ubuntu (no /etc/debian_version)");
    else if (!facts.aptGet) reasons.push("apt-get is not installed");
  }
  if (plan.start && !facts.localEngine)
    reasons.push(
      `DOCKER_HOST=${endpoint} does not answer (${engine.state === "down" ? engine.reason : "no docker client"}), and setup starts only this machine's engine`,
    );
  if (engine.state === "denied")
    reasons.push(`the engine at ${endpoint} refuses this user (${engine.reason})`);
  // Where root is all that is missing, `sudo bot-bottle setup` does the work itself.
  const rootWouldDo = !facts.root && reasons.length === 0;
  if ((plan.install.length > 0 || plan.start) && !facts.root)
    reasons.unshift("setup is not running as root");
  if (reasons.length > 0) plan.blocked = { reasons, ...manualSteps(facts, plan, rootWouldDo) };
  return plan;
}

/** What a person runs where setup cannot act. */
function manualSteps(
  facts: SetupFacts,
  plan: SetupPlan,
  rootWouldDo: boolean,
): { commands: string[]; hint: string } {
  const sudo = facts.root ? "" : "sudo ";
  const commands: string[] = [];
  if (plan.install.length > 0) {
    if (facts.debian && facts.aptGet)
      commands.push(`${sudo}apt-get update`, `${sudo}apt-get install -y ${plan.install.join(" ")}`);
    else {
      if (plan.install.includes(ENGINE_PACKAGE.package))
        commands.push(
          "install Docker Engine as Docker's documentation says for this system: https://docs.docker.com/engine/install/",
        );
      const others = HOST_NEEDS.filter(
        (n) => n.package !== ENGINE_PACKAGE.package && plan.install.includes(n.package),
      );
      if (others.length > 0)
        commands.push(
          `install ${others.map((n) => n.programs.join(", ")).join(", ")} with this system's package manager (Debian's packages: ${others.map((n) => n.package).join(", ")})`,
        );
    }
  }
  if (plan.start)
    commands.push(
      facts.localEngine
        ? manualStartCommand(plan.start, !facts.root)
        : `start the engine at ${facts.endpoint}, or unset DOCKER_HOST to use this machine's own`,
    );
  if (facts.engine.state === "denied")
    commands.push(
      `${sudo}usermod -aG docker "$USER"   # then log in again; the docker group is as powerful as root here`,
    );
  return {
    commands,
    hint: rootWouldDo
      ? "or run `sudo bot-bottle setup`, which does the same; then `bot-bottle setup` checks again"
      : "then run `bot-bottle setup` again to check",
  };
}

/** The plan's actions, for people (`--dry-run`). */
export function describeActions(plan: SetupPlan): string[] {
  const actions: string[] = [];
  if (plan.install.length > 0)
    actions.push(
      `install ${plan.install.join(", ")} from Debian's archive: apt-get update; apt-get install -y ${plan.install.join(" ")}`,
    );
  if (plan.start === "systemd") actions.push("start the Docker engine: systemctl start docker");
  if (plan.start === "dockerd")
    actions.push(
      `start the Docker engine: dockerd in the background, log in ${DOCKERD_LOG}; wait for \`docker info\` to answer`,
    );
  return actions;
}

/** Throws the plan's refusal, naming the commands to run, when this machine cannot carry it out. */
export function refuseBlocked(plan: SetupPlan): void {
  if (!plan.blocked) return;
  const { reasons, commands, hint } = plan.blocked;
  const wanted = describeActions(plan).map((a) => a.split(":")[0]);
  const what = wanted.length > 0 ? wanted.join(" and ") : "use the Docker engine";
  throw new PrerequisiteError(
    `setup cannot ${what} here: ${reasons.join("; ")}. Run:\n  ${commands.join("\n  ")}`,
    hint,
  );
}

export interface SetupOptions {
  runner: Runner;
  platform: HostPlatform;
  env: NodeJS.ProcessEnv;
  progress: Progress;
  /** The background dockerd's log (default /var/log/bot-bottle-dockerd.log). */
  logFile?: string;
  deadlineMs?: number;
  pollMs?: number;
}

/** Works out the plan without changing anything. */
export async function prepareSetup(
  options: Pick<SetupOptions, "runner" | "platform" | "env">,
): Promise<{ facts: SetupFacts; plan: SetupPlan }> {
  const facts = await gatherFacts(options.runner, options.platform, options.env);
  return { facts, plan: planSetup(facts) };
}

export interface SetupReport {
  present: string[];
  /** What setup did, one line each. */
  done: string[];
  engine?: EngineStarted;
}

/**
 * Installs what is missing and starts the engine, in two progress steps; refuses with the
 * commands to run where it cannot. Running it again once it has succeeded does nothing.
 */
export async function setupHost(options: SetupOptions): Promise<SetupReport> {
  const { runner, platform, env, progress } = options;
  const { plan } = await prepareSetup(options);
  refuseBlocked(plan);
  progress.step(`packages: ${HOST_NEEDS.map((n) => n.package).join(", ")}`);
  const report: SetupReport = {
    present: [...plan.present.packages, ...plan.present.engine],
    done: [],
  };

  if (plan.install.length > 0) {
    await aptInstall(plan.install, runner, env, progress);
    for (const need of HOST_NEEDS.filter((n) => plan.install.includes(n.package)))
      for (const program of need.programs)
        if (!(await platform.which(program)))
          throw new PrerequisiteError(
            `apt-get installed ${need.package}, but ${program} is still not found`,
            `check \`dpkg -L ${need.package}\` and PATH, then run \`bot-bottle setup\` again`,
          );
    report.done.push(`installed ${plan.install.join(", ")} from Debian's archive`);
    progress.done(`installed ${plan.install.join(", ")} from Debian's archive`);
  }
  for (const line of plan.present.packages) progress.done(line);

  progress.step("Docker engine");
  if (plan.start) {
    // Installing docker.io may have started the engine already (its package scripts do so
    // under systemd, and through its init script elsewhere).
    const now = await probeEngine(runner, env);
    if (now.state === "up") {
      const line = `Docker engine running: server ${now.version} (started when docker.io was installed)`;
      report.done.push(line);
      progress.done(line);
    } else {
      const dockerd = (await platform.which("dockerd")) ?? "dockerd";
      const started = await startEngine({
        runner,
        env,
        method: plan.start,
        dockerd,
        progress,
        ...(options.logFile ? { logFile: options.logFile } : {}),
        ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
        ...(options.pollMs ? { pollMs: options.pollMs } : {}),
      });
      const line =
        started.method === "systemd"
          ? `Docker engine running: server ${started.version} (systemctl start docker)`
          : `Docker engine running: server ${started.version} (dockerd pid ${started.pid ?? "?"} in the background, log ${started.logFile ?? DOCKERD_LOG}; it does not come back after a reboot: run \`bot-bottle setup\` again then)`;
      report.done.push(line);
      report.engine = started;
      progress.done(line);
    }
  }
  for (const line of plan.present.engine) progress.done(line);
  return report;
}

async function aptInstall(
  packages: string[],
  runner: Runner,
  env: NodeJS.ProcessEnv,
  progress: Progress,
): Promise<void> {
  // No questions; and needrestart's apt hook stays out (setup restarts no service).
  const aptEnv = { ...env, DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_SUSPEND: "1" };
  const show = (line: string) => {
    if (line.trim()) progress.detail(line.trim());
  };
  const steps: string[][] = [["update"], ["install", "-y", ...packages]];
  for (const args of steps) {
    progress.detail(`apt-get ${args.join(" ")}`);
    try {
      await runner.run("apt-get", args, {
        env: aptEnv,
        timeoutMs: 15 * 60_000,
        onStdoutLine: show,
        onStderrLine: show,
      });
    } catch (err) {
      if (!(err instanceof CommandFailedError)) throw err;
      throw new PrerequisiteError(
        `could not install ${packages.join(", ")}: ${err.message}`,
        "check the network and Debian's sources (/etc/apt/sources.list*), then run `bot-bottle setup` again",
        err,
      );
    }
  }
}
