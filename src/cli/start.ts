import type { Command } from "commander";
import { Option } from "commander";
import type { Bottle } from "../backends/backend.js";
import { allBackends, openBackend, type BackendName } from "../backends/index.js";
import type { BottlePlan } from "../backends/plan.js";
import { BACKEND_NAMES } from "../manifest/schema.js";
import { RefusedError, UsageError } from "../errors.js";
import { stopBottle } from "../lifecycle/bottles.js";
import { attachSession, openSession } from "../lifecycle/session.js";
import { launch, preflight, prepare } from "../lifecycle/start.js";
import { describePlan, planNotes } from "../plan/summary.js";
import { confirm, interactive } from "./confirm.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { loadFromOptions, type GlobalOptions } from "./manifest-options.js";
import { createProgress } from "./progress.js";

export interface StartOptions {
  cwd?: string;
  detach?: boolean;
  yes?: boolean;
  dryRun?: boolean;
  json?: boolean;
  keep?: boolean;
  backend?: BackendName;
}

const backendOption = () =>
  new Option("--backend <name>", "what runs the agent, over the bottle's own `backend`").choices(
    BACKEND_NAMES,
  );

/** The options `start` and `run` share, on `command`. */
export function startOptions(command: Command): Command {
  return command
    .option("--cwd <dir>", "the workspace folder the agent sees (default: this folder)")
    .option("--yes", "do not ask for confirmation")
    .addOption(backendOption());
}

export interface Started {
  plan: BottlePlan;
  bottle: Bottle;
  backends: ReturnType<typeof allBackends>;
}

/**
 * Plan, show, confirm and launch a bottle for `agent`; undefined after a dry run. Ctrl-C or
 * SIGTERM during the start rolls back what exists (the state dir is kept).
 */
export async function startBottle(
  ctx: CliContext,
  command: Command,
  agent: string,
  options: StartOptions,
): Promise<Started | undefined> {
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
    return undefined;
  }
  const backends = allBackends(ctx.env);
  const backend = openBackend(plan.backend, ctx.env);
  await preflight(manifest, plan, ctx.env, backends);
  for (const line of describePlan(plan)) writeLine(ctx.stderr, line);
  for (const note of planNotes(plan)) writeLine(ctx.stderr, `note: ${note}`);
  if (interactive(ctx) && !options.yes && !(await confirm(ctx, "Start this bottle? [y/N] ")))
    throw new RefusedError("not started", "answer y, or pass --yes");

  const abandon = (signal: NodeJS.Signals) => {
    writeLine(ctx.stderr, `bot-bottle: ${signal} during start; removing ${plan.slug}`);
    void stopBottle(backends, plan.slug, ctx.env)
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", abandon);
  process.once("SIGTERM", abandon);
  try {
    const bottle = await launch(plan, {
      backend,
      progress: createProgress(ctx.stderr),
      env: ctx.env,
    });
    return { plan, bottle, backends };
  } finally {
    process.off("SIGINT", abandon);
    process.off("SIGTERM", abandon);
  }
}

export function registerStart(program: Command, ctx: CliContext): void {
  startOptions(
    program
      .command("start")
      .description(
        "start a bottle for AGENT and attach to the agent's session (or --detach); Ctrl-b d detaches",
      )
      .argument("<agent>", "the agent to start, from the manifest"),
  )
    .option(
      "--detach",
      "print the bottle's slug and return; the agent's session waits for `attach`",
    )
    .option("--dry-run", "print the plan and create nothing")
    .option("--json", "with --dry-run: print the plan as JSON")
    .option("--keep", "keep the bottle running when the agent exits")
    .action(async (agent: string, options: StartOptions, command: Command) => {
      const terminal = { isTTY: ctx.stdin?.isTTY === true, term: ctx.env["TERM"] };
      if (!options.detach && !options.dryRun && !terminal.isTTY)
        throw new UsageError(
          "`start` attaches this terminal to the agent, and standard input is not a terminal",
          "pass --detach (then `bot-bottle exec SLUG -- CMD`), or `bot-bottle run AGENT -- PROMPT` for one headless task",
        );
      const started = await startBottle(ctx, command, agent, options);
      if (!started) return;
      const { plan, bottle, backends } = started;
      const a = plan.agentContainer;
      const spec = { argv: a.attach, workdir: a.workdir, user: a.user };
      if (options.detach) {
        await openSession(bottle, spec);
        writeLine(
          ctx.stderr,
          `started ${plan.slug}: \`bot-bottle attach ${plan.slug}\` for the agent's session, \`bot-bottle exec ${plan.slug} -- CMD\`, \`bot-bottle stop ${plan.slug}\``,
        );
        writeLine(ctx.stdout, plan.slug);
        return;
      }
      const outcome = await attachSession(bottle, spec, terminal);
      if (outcome === "detached" || options.keep) {
        writeLine(
          ctx.stderr,
          outcome === "detached"
            ? `detached: ${plan.slug} keeps running — \`bot-bottle attach ${plan.slug}\` comes back, \`bot-bottle stop ${plan.slug}\` ends it`
            : `${plan.slug} is still running: \`bot-bottle stop ${plan.slug}\` when done`,
        );
        return;
      }
      const stopped = await stopBottle(backends, plan.slug, ctx.env);
      if (stopped.login) writeLine(ctx.stderr, stopped.login);
      if (stopped.deployKeys) writeLine(ctx.stderr, stopped.deployKeys);
      writeLine(ctx.stderr, `stopped ${plan.slug}; its state and logs are in ${plan.stateDir}`);
    });
}
