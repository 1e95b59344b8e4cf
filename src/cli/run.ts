import type { Command } from "commander";
import { stopBottle } from "../lifecycle/bottles.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { startBottle, startOptions, type StartOptions } from "./start.js";

export function registerRun(program: Command, ctx: CliContext): void {
  startOptions(
    program
      .command("run")
      .description(
        "run one headless task: start a fresh bottle for AGENT, give it PROMPT, stream its output, stop the bottle; the agent's exit status is passed through",
      )
      .argument("<agent>", "the agent to run, from the manifest")
      .argument("<prompt...>", "the task (put -- before it)"),
  )
    .option("--keep", "keep the bottle running after the task ends")
    .action(async (agent: string, words: string[], options: StartOptions, command: Command) => {
      const started = await startBottle(ctx, command, agent, options);
      if (!started) return;
      const { plan, bottle, backends } = started;
      // Ctrl-C or SIGTERM while the agent works: the bottle goes with it (state dir kept).
      let stopping: ReturnType<typeof stopBottle> | undefined;
      const stop = () => (stopping ??= stopBottle(backends, plan.slug, ctx.env));
      const interrupt = (signal: NodeJS.Signals) => {
        writeLine(ctx.stderr, `bot-bottle: ${signal}; stopping ${plan.slug}`);
        void stop()
          .catch(() => undefined)
          .finally(() => process.exit(130));
      };
      process.once("SIGINT", interrupt);
      process.once("SIGTERM", interrupt);
      try {
        const a = plan.agentContainer;
        ctx.exitCode = await bottle.attach([...a.headless, words.join(" ")], {
          tty: false,
          stdin: false,
          user: a.user,
          workdir: a.workdir,
        });
      } finally {
        process.off("SIGINT", interrupt);
        process.off("SIGTERM", interrupt);
      }
      if (options.keep) {
        writeLine(
          ctx.stderr,
          `${plan.slug} is still running: \`bot-bottle stop ${plan.slug}\` when done`,
        );
        return;
      }
      const stopped = await stop();
      if (stopped.login) writeLine(ctx.stderr, stopped.login);
      if (stopped.deployKeys) writeLine(ctx.stderr, stopped.deployKeys);
      writeLine(
        ctx.stderr,
        `${plan.agent.name} exited with status ${ctx.exitCode}; stopped ${plan.slug} (state and logs in ${plan.stateDir})`,
      );
    });
}
