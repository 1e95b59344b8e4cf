import { readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { RefusedError } from "../errors.js";
import { manifestJsonSchema } from "../manifest/json-schema.js";
import { manifestPath } from "../manifest/load.js";
import { PACKAGE_ROOT } from "../package-root.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import type { GlobalOptions } from "./manifest-options.js";

export const SCHEMA_FILE = "bot-bottle.schema.json";

/** The example manifest, pointing its "$schema" at a schema file beside it. */
export async function exampleManifest(): Promise<string> {
  const text = await readFile(join(PACKAGE_ROOT, "examples", "bot-bottle.json"), "utf8");
  return text.replace(/"\$schema": "[^"]*"/, `"$schema": "./${SCHEMA_FILE}"`);
}

export function registerInit(program: Command, ctx: CliContext): void {
  program
    .command("init")
    .description("write a commented example manifest (never overwrites one)")
    .action(async (_options: unknown, command: Command) => {
      const file = manifestPath(
        command.optsWithGlobals<GlobalOptions>().manifest,
        ctx.env,
        ctx.cwd,
      );
      try {
        await writeFile(file, await exampleManifest(), { flag: "wx" });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST")
          throw new RefusedError(
            `${file} already exists; init never overwrites a manifest`,
            "edit it, or choose another file with -f PATH",
          );
        throw err;
      }
      const schemaFile = join(dirname(file), SCHEMA_FILE);
      await writeFile(schemaFile, JSON.stringify(manifestJsonSchema(), null, 2) + "\n");
      writeLine(
        ctx.stdout,
        `wrote ${file}: an example to edit, then check with \`bot-bottle validate\``,
      );
      writeLine(
        ctx.stdout,
        `wrote ${schemaFile} beside it for editor completion (refresh: bot-bottle schema > ${basename(schemaFile)})`,
      );
    });
}
