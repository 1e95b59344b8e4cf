import { join, resolve } from "node:path";
import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import { RefusedError } from "../errors.js";
import { applyEgress } from "../lifecycle/egress.js";
import { loadManifest } from "../manifest/load.js";
import type { Widening } from "../plan/egress-diff.js";
import { templateCatalog } from "../providers/templates.js";
import { stateRoot } from "../state/paths.js";
import { confirm, interactive } from "./confirm.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import type { GlobalOptions } from "./manifest-options.js";

export function registerEgress(program: Command, ctx: CliContext): void {
  const egress = program.command("egress").description("a running bottle's egress routes");
  egress
    .command("apply")
    .description(
      "re-read the bottle's routes from its manifest (the one it started from, or -f) and load them into its running proxy (no restart; open connections stay up); asks before anything widens",
    )
    .argument("<slug>", "the bottle")
    .option("--yes", "apply routes that widen what the bottle may reach without asking")
    .action(async (slug: string, options: { yes?: boolean }, command: Command) => {
      const named =
        command.optsWithGlobals<GlobalOptions>().manifest ||
        ctx.env["BOT_BOTTLE_MANIFEST"] ||
        undefined;
      const approve = async (widening: readonly Widening[]) => {
        const list = widening.map((w) => `  + ${w.text}`).join("\n");
        if (options.yes) {
          writeLine(ctx.stderr, `${slug}: this apply widens what the bottle may reach:\n${list}`);
          return;
        }
        if (interactive(ctx)) {
          writeLine(ctx.stderr, `${slug}: this apply widens what the bottle may reach:\n${list}`);
          if (await confirm(ctx, "Apply these wider routes? [y/N] ")) return;
          throw new RefusedError(`nothing applied to ${slug}`, "answer y, or pass --yes");
        }
        throw new RefusedError(
          `egress apply would widen what ${slug} may reach, and no one confirmed it; nothing was applied:\n${list}`,
          "check the list against the manifest, then run it again in a terminal to answer, or pass --yes",
        );
      };
      const result = await applyEgress({
        slug,
        file: named ? resolve(ctx.cwd, named) : undefined,
        load: async (file) => loadManifest(file, await templateCatalog(ctx.env)),
        backends: allBackends(ctx.env),
        stateDir: join(stateRoot(ctx.env), slug),
        env: ctx.env,
        approve,
      });
      const change = [
        result.added.length ? `added ${result.added.join(", ")}` : "",
        result.removed.length ? `removed ${result.removed.join(", ")}` : "",
      ].filter(Boolean);
      writeLine(
        ctx.stderr,
        `${slug}: routes generation ${result.generation} loaded${change.length ? ` (${change.join("; ")})` : " (no change)"} from ${result.file}`,
      );
      for (const line of result.lines) writeLine(ctx.stderr, line);
    });
}
