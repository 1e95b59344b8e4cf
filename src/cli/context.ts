/** What a command may touch of the outside world, passed in so tests can supply their own. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Set by a command whose status is not simply success (e.g. `exec` passing one through). */
  exitCode?: number;
}

export function processContext(): CliContext {
  return {
    env: process.env,
    cwd: process.cwd(),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
  };
}

export function writeLine(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(text + "\n");
}
