import type { Command } from "commander";
import { manifestJsonSchema } from "../manifest/json-schema.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";

export function registerSchema(program: Command, ctx: CliContext): void {
  program
    .command("schema")
    .description('print the manifest\'s JSON Schema (for editors: point "$schema" at a saved copy)')
    .action(() => {
      writeLine(ctx.stdout, JSON.stringify(manifestJsonSchema(), null, 2));
    });
}
