/**
 * The one place bot-bottle runs external programs (docker, git, debootstrap, smolvm, ...).
 * Argument arrays only, never a shell string; output streamed line by line to whoever asks;
 * cancellable through an AbortSignal; the command line is in the error when it fails.
 * Secrets never ride on argv: pass them in `env`.
 */
import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import type { Socket } from "node:net";
import { constants as osConstants } from "node:os";
import { BotBottleError, EXIT } from "../errors.js";

export interface RunOptions {
  cwd?: string;
  /** Full environment of the child. Defaults to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** A readable stream piped into the child's stdin instead of `input`. */
  stdin?: NodeJS.ReadableStream;
  signal?: AbortSignal;
  /** Kill the child (SIGTERM, then SIGKILL after 2 s) when it runs longer than this. */
  timeoutMs?: number;
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** Exit statuses that are not failures. Defaults to [0]. */
  okExitCodes?: readonly number[];
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How a command line looks in messages: quoted where needed, never through a shell. */
export function formatCommand(command: string, args: readonly string[]): string {
  return [command, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)))
    .join(" ");
}

export class CommandFailedError extends BotBottleError {
  readonly commandLine: string;
  readonly exitStatus: number | null;
  readonly stderr: string;

  constructor(commandLine: string, exitStatus: number | null, stderr: string, reason: string) {
    const lastLines = stderr.trim().split("\n").slice(-3).join("\n  ");
    super(
      "command_failed",
      `\`${commandLine}\` ${reason}` + (lastLines ? `:\n  ${lastLines}` : ""),
      { exitCode: EXIT.internal },
    );
    this.name = "CommandFailedError";
    this.commandLine = commandLine;
    this.exitStatus = exitStatus;
    this.stderr = stderr;
  }
}

/** Thrown when the program itself does not exist on PATH. */
export class CommandNotFoundError extends BotBottleError {
  readonly command: string;
  constructor(command: string) {
    super("prerequisite_missing", `\`${command}\` is not installed (not found on PATH)`, {
      exitCode: EXIT.environment,
    });
    this.name = "CommandNotFoundError";
    this.command = command;
  }
}

const MAX_CAPTURE = 16 * 1024 * 1024;

function lineSplitter(onLine: ((line: string) => void) | undefined): (chunk: string) => void {
  let pending = "";
  return (chunk) => {
    if (!onLine) return;
    pending += chunk;
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      onLine(pending.slice(0, nl).replace(/\r$/, ""));
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
    }
  };
}

export function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const commandLine = formatCommand(command, args);
  const okCodes = options.okExitCodes ?? [0];
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new CommandFailedError(commandLine, null, "", "was cancelled before it started"));
      return;
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      signal: options.signal,
    });
    let stdout = "";
    let stderr = "";
    const outLines = lineSplitter(options.onStdoutLine);
    const errLines = lineSplitter(options.onStderrLine);
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk;
      outLines(chunk);
    });
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < MAX_CAPTURE) stderr += chunk;
      errLines(chunk);
    });

    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGTERM");
            killTimer = setTimeout(() => child.kill("SIGKILL"), 2000);
          }, options.timeoutMs);

    child.stdin.on("error", () => {
      /* the child may exit without reading its input; its exit status tells the story */
    });
    if (options.stdin) options.stdin.pipe(child.stdin);
    else child.stdin.end(options.input ?? "");

    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      if (err.code === "ENOENT") reject(new CommandNotFoundError(command));
      else if (err.name === "AbortError")
        reject(new CommandFailedError(commandLine, null, stderr, "was cancelled"));
      else
        reject(new CommandFailedError(commandLine, null, stderr, `could not run (${err.message})`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      if (timedOut) {
        reject(
          new CommandFailedError(
            commandLine,
            code,
            stderr,
            `did not finish within ${options.timeoutMs} ms`,
          ),
        );
      } else if (code === null) {
        reject(
          new CommandFailedError(
            commandLine,
            null,
            stderr,
            `was killed by ${signal ?? "a signal"}`,
          ),
        );
      } else if (!okCodes.includes(code)) {
        reject(new CommandFailedError(commandLine, code, stderr, `exited with status ${code}`));
      } else {
        resolve({ exitCode: code, stdout, stderr });
      }
    });
  });
}

/**
 * Runs a program on this terminal (stdout and stderr inherited; stdin the terminal opened anew for
 * it, see ownTerminal), for interactive sessions and `exec`. Resolves to its exit status (128 +
 * signal number when a signal ended it).
 */
export async function runAttached(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<number> {
  const terminal = await ownTerminal();
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        env: options.env ?? process.env,
        cwd: options.cwd,
        stdio: [terminal?.fd ?? "inherit", "inherit", "inherit"],
      });
      child.on("error", (err: NodeJS.ErrnoException) =>
        reject(err.code === "ENOENT" ? new CommandNotFoundError(command) : err),
      );
      child.on("close", (code, signal) => {
        if (code !== null) resolve(code);
        else resolve(128 + (signal ? (osConstants.signals[signal] ?? 1) : 1));
      });
    });
  } finally {
    await terminal?.close();
  }
}

/**
 * The terminal opened anew for a child, when standard input is one: the child then holds a file
 * of its own on it. Handed this process's standard input instead, it shares its flags, and a
 * program that leaves it blocking when it exits (docker does) leaves this process's own terminal
 * reads blocking: a dashboard that attached a session would then hang in its next read.
 */
async function ownTerminal() {
  if (!process.stdin.isTTY) return undefined;
  return open("/dev/tty", "r+").catch(() => undefined);
}

/** A program started by `startDetached`. */
export interface DetachedChild {
  pid: number;
  /** How it ended, once it has (while this process still runs); undefined while it runs. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/**
 * Starts a long-running program (a daemon such as `dockerd`) that outlives bot-bottle: in a
 * session of its own, stdin from /dev/null, stdout and stderr appended to `logFile`, never
 * waited on. Resolves once it has started; its readiness is the caller's to wait for.
 */
export async function startDetached(
  command: string,
  args: readonly string[],
  options: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<DetachedChild> {
  const log = await open(options.logFile, "a", 0o640);
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ["ignore", log.fd, log.fd],
    });
    let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.on("exit", (code, signal) => (ended = { code, signal }));
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          err.code === "ENOENT"
            ? new CommandNotFoundError(command)
            : new CommandFailedError(
                formatCommand(command, args),
                null,
                "",
                `could not start (${err.message})`,
              ),
        ),
      );
    });
    child.unref();
    return { pid: child.pid ?? 0, exited: () => ended };
  } finally {
    await log.close();
  }
}

/** How a program started by `startStreaming` ended. */
export interface StreamEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of what it wrote on stderr (or why it could not start). */
  stderr: string;
}

/** A long-running program whose output is read line by line, started by `startStreaming`. */
export interface StreamingChild {
  /** Its process id; undefined when it could not be started. */
  readonly pid: number | undefined;
  /** Settles (never rejects) once it has ended. */
  readonly ended: Promise<StreamEnd>;
  /** Ends it: SIGTERM, then SIGKILL after 2 s. */
  stop(): void;
}

const STREAM_STDERR_KEPT = 4096;

/**
 * Starts a program that runs until stopped (`docker events`) and hands each line of its stdout
 * to `onStdoutLine`. Its stderr is kept for `ended`, never written to this process's terminal;
 * its stdin is /dev/null. It does not keep this process alive by itself, and this process
 * kills it when it exits.
 */
export function startStreaming(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; onStdoutLine: (line: string) => void },
): StreamingChild {
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", lineSplitter(options.onStdoutLine));
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STREAM_STDERR_KEPT);
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  let killTimer: NodeJS.Timeout | undefined;
  const ended = new Promise<StreamEnd>((resolve) => {
    const end = (result: StreamEnd) => {
      process.off("exit", killOnExit);
      clearTimeout(killTimer);
      resolve(result);
    };
    child.on("error", (err: NodeJS.ErrnoException) => {
      // Only a program that never started ends here; a failed kill leaves it running.
      if (child.pid === undefined)
        end({
          code: null,
          signal: null,
          stderr: err.code === "ENOENT" ? `${command} is not installed` : err.message,
        });
    });
    child.on("close", (code, signal) => end({ code, signal, stderr }));
  });
  // Neither the process nor its pipes hold this process's event loop open.
  child.unref();
  for (const pipe of [child.stdout, child.stderr]) (pipe as unknown as Socket).unref();
  return {
    pid: child.pid,
    ended,
    stop() {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
      child.kill("SIGTERM");
      killTimer ??= setTimeout(() => child.kill("SIGKILL"), 2000);
      killTimer.unref();
    },
  };
}

/**
 * How a piece of work runs external programs, passed in so tests can supply their own:
 * `processRunner` below in bot-bottle itself.
 */
export interface Runner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  startDetached(
    command: string,
    args: readonly string[],
    options: { logFile: string; env?: NodeJS.ProcessEnv },
  ): Promise<DetachedChild>;
}

/** The runner of this process: the functions of this file. */
export const processRunner: Runner = { run, startDetached };
