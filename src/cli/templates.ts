import type { Command } from "commander";
import { templateListing, type TemplateListing } from "../providers/templates.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { table } from "../shared/table.js";

export function registerTemplates(program: Command, ctx: CliContext): void {
  program
    .command("templates")
    .description(
      'list the templates an agent can use ("template" in the manifest): the built-ins and the plugins installed here',
    )
    .option("--json", "print the templates as JSON")
    .action(async (options: { json?: boolean }) => {
      const listing = await templateListing(ctx.env);
      if (options.json) writeLine(ctx.stdout, JSON.stringify(listing, null, 2));
      else for (const line of templateLines(listing)) writeLine(ctx.stdout, line);
    });
}

/** The listing as a table, then where plugins are looked for. */
export function templateLines(listing: TemplateListing): string[] {
  const rows = [
    ["NAME", "KIND", "AGENT CLI", "DESCRIPTION"],
    ...listing.builtins.map((b) => [b.name, "built-in", b.pinned ?? "-", b.summary]),
    ...listing.plugins.map((p) =>
      p.valid
        ? [p.name, `plugin on ${p.base ?? "?"}`, "-", p.description ?? ""]
        : [p.name, "plugin", "-", `invalid: ${p.problem ?? "unknown problem"}`],
    ),
  ];
  return [
    ...table(rows),
    "",
    `plugins folder: ${listing.pluginsDir}${listing.plugins.length ? "" : " (none installed: docs/plugins.md says how to write one)"}`,
  ];
}
