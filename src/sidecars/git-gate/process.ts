/**
 * The git gate's one place that runs programs (git, ssh through git, gitleaks, git daemon): the
 * sidecars' counterpart of src/exec/run.ts, which the bundle does not carry.
 */
import { spawn, type ChildProcess } from "node:child_process";

export type { ChildProcess };

export interface Ran {
  code: number;
  stdout: string;
  /** stdout as it came (object contents are bytes). */
  bytes: Buffer;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv to its end (or `timeoutMs`, then kills it), collecting its output. */
export function runCommand(
  argv: readonly string[],
  options: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    input?: string;
    timeoutMs?: number;
    /** Takes stdout as it comes instead of collecting it (`false` back: stop the command). */
    onStdout?: (chunk: Buffer) => boolean;
    /** Stops the command when aborted. */
    signal?: AbortSignal;
  } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    const [command, ...args] = argv;
    const child = spawn(command ?? "false", args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout.on("data", (c: Buffer) => {
      if (!options.onStdout) out.push(c);
      else if (!options.onStdout(c)) child.kill("SIGKILL");
    });
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const abort = () => child.kill("SIGKILL");
    options.signal?.addEventListener("abort", abort, { once: true });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
    child.on("error", (e) => {
      err.push(Buffer.from(e.message));
    });
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener("abort", abort);
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString("utf8"),
        bytes: Buffer.concat(out),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
      });
    });
  });
}

/** A long-running child (git daemon) with its stderr piped and the rest inherited. */
export function startDaemon(argv: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [command, ...args] = argv;
  return spawn(command ?? "false", args, { env, stdio: ["ignore", "inherit", "pipe"] });
}
