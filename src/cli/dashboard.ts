import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import type { CliContext } from "./context.js";

export function registerDashboard(program: Command, ctx: CliContext): void {
  program
    .command("dashboard")
    .description(
      "every bottle, every pending request and the selected bottle's audit on one screen; approve, deny and answer from it",
    )
    .action(async () => {
      // The terminal UI (ink and React) loads only for this command.
      const { runDashboard } = await import("../dashboard/app.js");
      await runDashboard({
        env: ctx.env,
        backends: allBackends(ctx.env),
        color: !ctx.env["NO_COLOR"],
        stdin: (ctx.stdin ?? process.stdin) as NodeJS.ReadStream,
        stdout: ctx.stdout as NodeJS.WriteStream,
      });
    });
}
