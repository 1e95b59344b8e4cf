/**
 * The local Docker engine as a thing to install and start (Debian's `docker.io`), not to drive:
 * whether it answers, how it is started (systemd, or `dockerd` in the background with its log in
 * a file), and an explicit wait for it with a deadline. Programs run through the runner passed
 * in, so the decisions can be tested without an engine.
 */
import { open, stat } from "node:fs/promises";
import { PrerequisiteError } from "../../errors.js";
import type { DetachedChild, Runner } from "../../exec/run.js";
import { CommandNotFoundError } from "../../exec/run.js";
import type { Progress } from "../../shared/progress.js";
import { engineFailureReason } from "./cli.js";

/** Debian's package for the engine, and the programs that show it is there. */
export const ENGINE_PACKAGE = { package: "docker.io", programs: ["docker", "dockerd"] } as const;

/** Where `dockerd` started in the background writes its log. */
export const DOCKERD_LOG = "/var/log/bot-bottle-dockerd.log";

export const ENGINE_DEADLINE_MS = 60_000;

export type EngineState =
  | { state: "up"; version: string }
  | { state: "no-client" }
  /** The engine runs but this user may not use its socket. */
  | { state: "denied"; reason: string }
  | { state: "down"; reason: string };

/** Where the client looks for the engine, for messages. */
export function engineEndpoint(env: NodeJS.ProcessEnv): string {
  return env["DOCKER_HOST"] || "unix:///var/run/docker.sock";
}

/** Whether the client talks to an engine this machine would start (its default socket). */
export function isLocalEndpoint(env: NodeJS.ProcessEnv): boolean {
  return ["unix:///var/run/docker.sock", "unix:///run/docker.sock"].includes(engineEndpoint(env));
}

/** Asks `docker info` whether an engine answers. */
export async function probeEngine(
  runner: Runner,
  env: NodeJS.ProcessEnv,
  timeoutMs = 10_000,
): Promise<EngineState> {
  try {
    const { stdout } = await runner.run("docker", ["info", "--format", "{{.ServerVersion}}"], {
      env,
      timeoutMs,
    });
    const version = stdout.trim();
    if (version) return { state: "up", version };
    return { state: "down", reason: "`docker info` reported no server" };
  } catch (err) {
    if (err instanceof CommandNotFoundError) return { state: "no-client" };
    const reason = engineFailureReason(err);
    // docker's own sentence here runs on to a URL and a dial error; the gist is enough.
    return /permission denied/i.test(reason)
      ? { state: "denied", reason: "permission denied on its socket" }
      : { state: "down", reason };
  }
}

export type StartMethod = "systemd" | "dockerd";

/** What a person runs to start the engine, where bot-bottle cannot. */
export function manualStartCommand(method: StartMethod, sudo: boolean): string {
  const prefix = sudo ? "sudo " : "";
  return method === "systemd"
    ? `${prefix}systemctl start docker`
    : `${prefix}sh -c 'nohup dockerd >>${DOCKERD_LOG} 2>&1 </dev/null &'`;
}

export interface StartEngineOptions {
  runner: Runner;
  env: NodeJS.ProcessEnv;
  method: StartMethod;
  /** The dockerd program to run (its path) when `method` is "dockerd". */
  dockerd: string;
  progress: Progress;
  logFile?: string;
  deadlineMs?: number;
  pollMs?: number;
}

export interface EngineStarted {
  method: StartMethod;
  version: string;
  /** The background dockerd, when bot-bottle started one. */
  pid?: number;
  logFile?: string;
}

/**
 * Starts the engine (`systemctl start docker`, or `dockerd` detached with its log in a file),
 * then waits for `docker info` to answer. Fails with the last lines of the log when it does not
 * within the deadline, or when dockerd exits first.
 */
export async function startEngine(options: StartEngineOptions): Promise<EngineStarted> {
  const { runner, env, method, progress } = options;
  const logFile = options.logFile ?? DOCKERD_LOG;
  const deadlineMs = options.deadlineMs ?? ENGINE_DEADLINE_MS;
  if (method === "systemd") {
    progress.detail("systemctl start docker");
    try {
      await runner.run("systemctl", ["start", "docker"], { env, timeoutMs: deadlineMs });
    } catch (err) {
      const lines = await journalTail(runner, env).catch(() => []);
      throw new PrerequisiteError(
        `\`systemctl start docker\` failed: ${engineFailureReason(err)}` +
          (lines.length
            ? `; last lines of \`journalctl -u docker\`:\n  ${lines.join("\n  ")}`
            : ""),
        "fix what the journal shows, then run `bot-bottle setup` again",
        err,
      );
    }
    const version = await waitForEngine({
      ...options,
      deadlineMs,
      lastLines: () => journalTail(runner, env),
      source: "`journalctl -u docker`",
    });
    return { method, version };
  }
  progress.detail(`${options.dockerd}, in the background; log: ${logFile}`);
  // The log is appended to: a failure quotes only what this dockerd wrote.
  const from = await stat(logFile).then(
    (s) => s.size,
    () => 0,
  );
  const child = await runner.startDetached(options.dockerd, [], { logFile, env });
  const version = await waitForEngine({
    ...options,
    deadlineMs,
    child,
    lastLines: () => fileTail(logFile, from),
    source: logFile,
  });
  return { method, version, pid: child.pid, logFile };
}

async function waitForEngine(
  options: StartEngineOptions & {
    deadlineMs: number;
    child?: DetachedChild;
    lastLines: () => Promise<string[]>;
    source: string;
  },
): Promise<string> {
  const { runner, env, child, deadlineMs, progress } = options;
  const pollMs = options.pollMs ?? 500;
  const started = Date.now();
  let last: EngineState = { state: "down", reason: "not asked yet" };
  for (;;) {
    const left = deadlineMs - (Date.now() - started);
    last = await probeEngine(runner, env, Math.max(1000, Math.min(10_000, left)));
    if (last.state === "up") return last.version;
    const ended = child?.exited();
    const what = options.method === "systemd" ? "the docker service" : "dockerd";
    if (ended || Date.now() - started >= deadlineMs) {
      const why = ended
        ? `${what} exited (${ended.code === null ? `signal ${ended.signal ?? "?"}` : `status ${ended.code}`}) before the engine answered`
        : `the Docker engine did not answer \`docker info\` within ${deadlineMs / 1000} s after starting ${what}`;
      const lines = await options.lastLines().catch(() => []);
      const tail = lines.length
        ? `; last lines of ${options.source}:\n  ${lines.join("\n  ")}`
        : `; ${options.source} shows nothing`;
      const reason = "reason" in last ? `; \`docker info\`: ${last.reason}` : "";
      throw new PrerequisiteError(
        `${why}${reason}${tail}`,
        `fix what the log shows, then run \`bot-bottle setup\` again`,
      );
    }
    progress.detail(
      `waiting for the engine (${Math.round((Date.now() - started) / 1000)} s of ${deadlineMs / 1000} s)`,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(0, left))));
  }
}

const TAIL_LINES = 10;

function lastLines(text: string): string[] {
  return text
    .trimEnd()
    .split("\n")
    .filter((l) => l.trim())
    .slice(-TAIL_LINES)
    .map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
}

/** The last lines written to a log after byte `from`; only its end is read. */
async function fileTail(path: string, from: number): Promise<string[]> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const start = Math.max(from, size - 64 * 1024);
    const length = Math.max(0, size - start);
    const { buffer } = await file.read(Buffer.alloc(length), 0, length, start);
    return lastLines(buffer.toString("utf8"));
  } finally {
    await file.close();
  }
}

async function journalTail(runner: Runner, env: NodeJS.ProcessEnv): Promise<string[]> {
  const { stdout } = await runner.run(
    "journalctl",
    ["-u", "docker", "-n", String(TAIL_LINES), "--no-pager", "-o", "cat"],
    { env, timeoutMs: 10_000 },
  );
  return lastLines(stdout);
}
