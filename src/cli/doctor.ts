/**
 * `bot-bottle doctor`: is this machine ready to run bottles, and do the running ones answer? One
 * line per check, then one per running bottle whose bundle fails its health check; a line that is
 * not ok says what to do. Exits 3 when a required check fails.
 */
import type { Command } from "commander";
import { allBackends, backendChecks } from "../backends/index.js";
import { BotBottleError, EXIT } from "../errors.js";
import { bottleHealthChecks } from "../lifecycle/health.js";
import type { Check, CheckStatus } from "../shared/checks.js";
import { diskCheck } from "../state/disk.js";
import { stateRoot } from "../state/paths.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";

export type { Check, CheckStatus };

/** Every check: the backends' (engine, isolation, images, smolvm), then the state dir's disk. */
export async function runChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  return [...(await backendChecks(env)), await diskCheck("disk (state)", stateRoot(env))];
}

const MARK: Record<CheckStatus, string> = { ok: "ok  ", warn: "warn", fail: "FAIL", info: "info" };

export function registerDoctor(program: Command, ctx: CliContext): void {
  program
    .command("doctor")
    .description("check that this machine can run bottles, and say what to do where it cannot")
    .option("--json", "print the checks as JSON")
    .action(async (options: { json?: boolean }) => {
      const [machine, bottles] = await Promise.all([
        runChecks(ctx.env),
        bottleHealthChecks(allBackends(ctx.env), ctx.env),
      ]);
      const checks = [...machine, ...bottles];
      if (options.json) writeLine(ctx.stdout, JSON.stringify(checks, null, 2));
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) {
          writeLine(ctx.stdout, `${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}`);
          if (c.remedy && c.status !== "ok")
            writeLine(ctx.stdout, `${" ".repeat(width + 8)}→ ${c.remedy}`);
        }
      }
      const failed = checks.filter((c) => c.status === "fail");
      if (failed.length > 0)
        throw new BotBottleError(
          "prerequisite_missing",
          `${failed.length === 1 ? "a required check" : `${failed.length} required checks`} failed: ${failed.map((c) => c.name).join(", ")}`,
          { exitCode: EXIT.environment },
        );
    });
}
