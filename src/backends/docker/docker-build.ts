/**
 * One `docker build`, its output shown as progress, and its failure told with the last lines
 * docker printed (the failing step's own output, which the classic builder prints on stdout).
 * `--force-rm`: a failed step's container is removed too, not left behind.
 */
import { BotBottleError, EXIT } from "../../errors.js";
import { CommandFailedError } from "../../exec/run.js";
import type { Progress } from "../../shared/progress.js";
import type { DockerCli } from "./cli.js";

/** How many of docker's last lines a failure shows. */
export const FAILURE_LINES = 12;

/** A build that failed: what was being built, and the end of docker's output. */
export class ImageBuildError extends BotBottleError {
  readonly lastLines: string[];
  constructor(what: string, lastLines: string[], hint: string, cause: unknown) {
    super(
      "command_failed",
      `building ${what} failed` +
        (lastLines.length ? `; docker's last lines:\n  ${lastLines.join("\n  ")}` : ""),
      { exitCode: EXIT.internal, hint, cause },
    );
    this.name = "ImageBuildError";
    this.lastLines = lastLines;
  }
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The last `max` non-empty lines written to it, without terminal colours. */
export class OutputTail {
  private readonly lines: string[] = [];
  constructor(private readonly max = FAILURE_LINES) {}
  push(line: string): void {
    const clean = line.replace(ANSI, "").trimEnd();
    if (!clean.trim()) return;
    this.lines.push(clean);
    if (this.lines.length > this.max) this.lines.shift();
  }
  get(): string[] {
    return [...this.lines];
  }
}

/**
 * Runs `docker build` with `args`; every line of output becomes a progress detail. A failure
 * becomes `onFailure(tail, err)`'s error (rethrown as it is when that returns nothing).
 */
export async function dockerBuild(
  docker: DockerCli,
  args: readonly string[],
  options: {
    progress: Progress;
    onFailure: (lastLines: string[], err: CommandFailedError) => Error | undefined;
  },
): Promise<void> {
  const tail = new OutputTail();
  const onLine = (line: string) => {
    tail.push(line);
    const shown = line.replace(ANSI, "").trim();
    if (shown) options.progress.detail(shown);
  };
  try {
    await docker.run(["build", "--force-rm", ...args], {
      onStdoutLine: onLine,
      onStderrLine: tail.push.bind(tail),
    });
  } catch (err) {
    if (err instanceof CommandFailedError) throw options.onFailure(tail.get(), err) ?? err;
    throw err;
  }
}
