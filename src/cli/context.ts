/** What a command may touch of the outside world, passed in so tests can supply their own. */
export interface CliContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function processContext(): CliContext {
  return { env: process.env, cwd: process.cwd(), stdout: process.stdout, stderr: process.stderr };
}

export function writeLine(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(text + "\n");
}
