import type { Command } from "commander";
import { DockerBackend } from "../backends/docker/backend.js";
import { DockerCli } from "../backends/docker/cli.js";
import { applyEgress } from "../lifecycle/egress.js";
import { stateRoot } from "../state/paths.js";
import { join } from "node:path";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { loadFromOptions, type GlobalOptions } from "./manifest-options.js";

export function registerEgress(program: Command, ctx: CliContext): void {
  const egress = program.command("egress").description("a running bottle's egress routes");
  egress
    .command("apply")
    .description(
      "re-read the bottle's routes from the manifest and load them into its running proxy (no restart; open connections stay up)",
    )
    .argument("<slug>", "the bottle")
    .action(async (slug: string, _options: unknown, command: Command) => {
      const index = await loadFromOptions(command.optsWithGlobals<GlobalOptions>(), ctx);
      const docker = new DockerCli(ctx.env);
      const result = await applyEgress({
        slug,
        index,
        docker,
        backend: new DockerBackend(docker),
        stateDir: join(stateRoot(ctx.env), slug),
      });
      const change = [
        result.added.length ? `added ${result.added.join(", ")}` : "",
        result.removed.length ? `removed ${result.removed.join(", ")}` : "",
      ].filter(Boolean);
      writeLine(
        ctx.stderr,
        `${slug}: routes generation ${result.generation} loaded${change.length ? ` (${change.join("; ")})` : " (no change)"}`,
      );
      for (const line of result.lines) writeLine(ctx.stderr, line);
    });
}
