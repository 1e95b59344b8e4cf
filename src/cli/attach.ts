import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import { attachSession, bottleSession } from "../lifecycle/session.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";

export function registerAttach(program: Command, ctx: CliContext): void {
  program
    .command("attach")
    .description(
      "come back to a bottle's agent session (opened again if the agent had exited); Ctrl-b d detaches",
    )
    .argument("<slug>", "the bottle, as `bot-bottle ls` shows it")
    .action(async (slug: string) => {
      const { bottle, spec } = await bottleSession(allBackends(ctx.env), slug);
      const outcome = await attachSession(bottle, spec, {
        isTTY: ctx.stdin?.isTTY === true,
        term: ctx.env["TERM"],
      });
      writeLine(
        ctx.stderr,
        outcome === "detached"
          ? `detached: ${slug} keeps running — \`bot-bottle attach ${slug}\` comes back`
          : `the agent's session ended; ${slug} still runs — \`bot-bottle stop ${slug}\` ends it`,
      );
    });
}
