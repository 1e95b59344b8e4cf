import type { CliContext } from "../../src/cli/context.js";

export interface Captured {
  ctx: CliContext;
  out: () => string;
  err: () => string;
}

type Stream = CliContext["stdout"];

function sink(append: (s: string) => void): Stream {
  return {
    write(chunk: string | Uint8Array) {
      append(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
      return true;
    },
  } as unknown as Stream;
}

/** A CLI context whose output is collected in memory. `failStdout` makes stdout writes throw. */
export function capture(
  env: NodeJS.ProcessEnv = {},
  cwd = "/nonexistent",
  failStdout = false,
): Captured {
  let out = "";
  let err = "";
  const stdout = sink((s) => {
    if (failStdout) throw new Error("stdout closed");
    out += s;
  });
  const stderr = sink((s) => (err += s));
  return { ctx: { env, cwd, stdout, stderr }, out: () => out, err: () => err };
}
