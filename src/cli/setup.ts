/**
 * `bot-bottle setup`: make this machine able to run bottles (Debian's docker.io, debootstrap and
 * acl; the engine started), or say exactly what to run where bot-bottle cannot; then the same
 * checks as `bot-bottle doctor`. Parsing and printing only: the work is in lifecycle/setup.ts.
 */
import type { Command } from "commander";
import { BotBottleError, EXIT } from "../errors.js";
import { processRunner } from "../exec/run.js";
import {
  describeActions,
  hostPlatform,
  prepareSetup,
  refuseBlocked,
  setupHost,
} from "../lifecycle/setup.js";
import type { Check } from "../shared/checks.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { runChecks } from "./doctor.js";
import { createProgress } from "./progress.js";

const MARK: Record<Check["status"], string> = {
  ok: "ok  ",
  warn: "warn",
  fail: "FAIL",
  info: "info",
};

/** The checks as `bot-bottle doctor` prints them. */
function printChecks(ctx: CliContext, checks: readonly Check[]): void {
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    writeLine(ctx.stdout, `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (c.remedy && c.status !== "ok")
      writeLine(ctx.stdout, `${" ".repeat(width + 8)}→ ${c.remedy}`);
  }
}

export function registerSetup(program: Command, ctx: CliContext): void {
  program
    .command("setup")
    .description(
      "install and start what bottles need (Debian, as root: docker.io, debootstrap, acl; the engine), or say what to run; then check like doctor",
    )
    .option("--dry-run", "print what setup would do, and do nothing")
    .option("--json", "print the outcome as JSON")
    .action(async (options: { dryRun?: boolean; json?: boolean }) => {
      const deps = { runner: processRunner, platform: hostPlatform(ctx.env), env: ctx.env };
      if (options.dryRun) {
        const { plan } = await prepareSetup(deps);
        const actions = describeActions(plan);
        if (options.json) writeLine(ctx.stdout, JSON.stringify({ ...plan, actions }, null, 2));
        else {
          for (const line of [...plan.present.packages, ...plan.present.engine])
            writeLine(ctx.stdout, line);
          // A blocked plan does nothing: the refusal below names what to run instead.
          if (!plan.blocked) {
            if (actions.length === 0) writeLine(ctx.stdout, "nothing to install or start");
            for (const a of actions) writeLine(ctx.stdout, `would ${a}`);
          }
        }
        refuseBlocked(plan);
        return;
      }

      const progress = createProgress(ctx.stderr, 3);
      const report = await setupHost({ ...deps, progress });
      progress.step("checks, as `bot-bottle doctor`");
      const checks = await runChecks(ctx.env);
      const failed = checks.filter((c) => c.status === "fail");
      progress.done(
        failed.length === 0
          ? "this machine can run bottles"
          : `${failed.length === 1 ? "a required check" : `${failed.length} required checks`} failed`,
      );
      if (options.json) writeLine(ctx.stdout, JSON.stringify({ ...report, checks }, null, 2));
      else printChecks(ctx, checks);
      if (failed.length > 0)
        throw new BotBottleError(
          "prerequisite_missing",
          `setup is done, but ${failed.length === 1 ? "a required check" : `${failed.length} required checks`} failed: ${failed.map((c) => c.name).join(", ")}`,
          { exitCode: EXIT.environment, hint: "each failing line above says what to do" },
        );
    });
}
