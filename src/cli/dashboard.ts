import { resolve } from "node:path";
import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import type { CliContext } from "./context.js";
import { loadFromOptions, type GlobalOptions } from "./manifest-options.js";

/**
 * Variables that make ink believe it runs in CI, where it draws nothing until it exits. The
 * dashboard runs on a terminal only (it refuses anything else), so it is interactive wherever it
 * runs: a shell that exports CI=true still gets its screen.
 */
const CI_VARIABLES = ["CI", "CONTINUOUS_INTEGRATION"];

export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command("dashboard")
    .description(
      "every bottle, every pending request and the selected bottle's audit on one screen; approve, deny and answer from it",
    )
    .option("--cwd <dir>", "the workspace folder of bottles started with n (default: this folder)")
    .action(async (options: { cwd?: string }, command: Command) => {
      // What the lifecycle calls get is the operator's environment as it was.
      const env = { ...ctx.env };
      // ink reads them once, as it loads: before the import below, which loads it.
      for (const name of CI_VARIABLES) delete process.env[name];
      const { runDashboard } = await import("../dashboard/app.js");
      await runDashboard({
        env,
        backends: allBackends(env),
        color: !env["NO_COLOR"],
        manifest: () => loadFromOptions(command.optsWithGlobals<GlobalOptions>(), ctx),
        workspace: resolve(ctx.cwd, options.cwd ?? "."),
        stdin: (ctx.stdin ?? process.stdin) as NodeJS.ReadStream,
        stdout: ctx.stdout as NodeJS.WriteStream,
        stderr: ctx.stderr as NodeJS.WriteStream,
      });
    });
}
