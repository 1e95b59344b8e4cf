import { execFile } from "node:child_process";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../src/package-root.js";

export const CLI = join(PACKAGE_ROOT, "dist", "bot-bottle.js");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as a user would: its own process, an argv array, no shell. */
export function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      {
        env: options.env ?? process.env,
        cwd: options.cwd ?? PACKAGE_ROOT,
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    // Piped in, as `echo … | bot-bottle …` would: written, then closed.
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A stack trace line, as node prints one. */
export const STACK_LINE = /^\s+at .+:\d+:\d+\)?$/m;
