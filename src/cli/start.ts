import type { Command } from "commander";
import { Option } from "commander";
import { allBackends, openBackend, type BackendName } from "../backends/index.js";
import { BACKEND_NAMES } from "../manifest/schema.js";
import { RefusedError } from "../errors.js";
import { stopBottle } from "../lifecycle/bottles.js";
import { launch, prepare, refuseMissingHostParts } from "../lifecycle/start.js";
import { liveBottles, refuseSharedExposures } from "../lifecycle/trust.js";
import { describePlan, planNotes } from "../plan/summary.js";
import { confirm, interactive } from "./confirm.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { loadFromOptions, type GlobalOptions } from "./manifest-options.js";
import { createProgress } from "./progress.js";

interface StartOptions {
  cwd?: string;
  detach?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  keep?: boolean;
  backend?: BackendName;
}

export function registerStart(program: Command, ctx: CliContext): void {
  program
    .command("start")
    .description("start a bottle for AGENT and attach to it (or --detach)")
    .argument("<agent>", "the agent to start, from the manifest")
    .option("--cwd <dir>", "the workspace folder the agent sees (default: this folder)")
    .option("--detach", "print the bottle's slug and return instead of attaching")
    .option("--yes", "do not ask for confirmation")
    .option("--dry-run", "print the plan and create nothing")
    .option("--json", "with --dry-run: print the plan as JSON")
    .option("--keep", "keep the bottle running after an attached session ends")
    .addOption(
      new Option(
        "--backend <name>",
        "what runs the agent, over the bottle's own `backend`",
      ).choices(BACKEND_NAMES),
    )
    .action(async (agent: string, options: StartOptions, command: Command) => {
      const index = await loadFromOptions(command.optsWithGlobals<GlobalOptions>(), ctx);
      const manifest = index.select(agent);
      const plan = await prepare({
        manifest,
        workspace: options.cwd ?? ctx.cwd,
        env: ctx.env,
        ...(options.backend ? { backend: options.backend } : {}),
      });
      if (options.dryRun) {
        if (options.json) writeLine(ctx.stdout, JSON.stringify(plan, null, 2));
        else for (const line of describePlan(plan)) writeLine(ctx.stdout, line);
        return;
      }
      refuseMissingHostParts(manifest, ctx.env);
      const backends = allBackends(ctx.env);
      const backend = openBackend(plan.backend, ctx.env);
      await refuseSharedExposures(plan, await liveBottles(backends));
      for (const line of describePlan(plan)) writeLine(ctx.stderr, line);
      for (const note of planNotes(plan)) writeLine(ctx.stderr, `note: ${note}`);
      if (interactive(ctx) && !options.yes && !(await confirm(ctx, "Start this bottle? [y/N] ")))
        throw new RefusedError("not started", "answer y, or pass --yes");

      // Ctrl-C or SIGTERM during the start: roll back what exists, keep the state dir.
      const abandon = (signal: NodeJS.Signals) => {
        writeLine(ctx.stderr, `bot-bottle: ${signal} during start; removing ${plan.slug}`);
        void stopBottle(backends, plan.slug, ctx.env)
          .catch(() => undefined)
          .finally(() => process.exit(130));
      };
      process.once("SIGINT", abandon);
      process.once("SIGTERM", abandon);
      let bottle;
      try {
        bottle = await launch(plan, {
          backend,
          progress: createProgress(ctx.stderr),
          env: ctx.env,
        });
      } finally {
        process.off("SIGINT", abandon);
        process.off("SIGTERM", abandon);
      }
      if (options.detach) {
        writeLine(
          ctx.stderr,
          `started ${plan.slug}: \`bot-bottle exec ${plan.slug} -- CMD\`, \`bot-bottle stop ${plan.slug}\``,
        );
        writeLine(ctx.stdout, plan.slug);
        return;
      }
      const tty = ctx.stdin?.isTTY === true;
      ctx.exitCode = await bottle.attach(plan.agentContainer.attach, {
        tty,
        stdin: true,
        workdir: plan.agentContainer.workdir,
      });
      if (options.keep) {
        writeLine(
          ctx.stderr,
          `${plan.slug} is still running: \`bot-bottle stop ${plan.slug}\` when done`,
        );
        return;
      }
      await stopBottle(backends, plan.slug, ctx.env);
      writeLine(ctx.stderr, `stopped ${plan.slug}; its state and logs are in ${plan.stateDir}`);
    });
}
