import { createInterface } from "node:readline/promises";
import type { CliContext } from "./context.js";

/** A person is at the terminal to answer (stdin is a TTY, and this is not CI). */
export function interactive(ctx: CliContext): boolean {
  return ctx.stdin?.isTTY === true && ctx.env["CI"] !== "true";
}

/** Asks a yes/no question on stderr; only "y" or "yes" is a yes. */
export async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  if (!ctx.stdin) return false;
  const rl = createInterface({ input: ctx.stdin, output: ctx.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
