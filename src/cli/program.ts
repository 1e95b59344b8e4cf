/**
 * The command line: builds the program, runs one command, and is the single place errors are
 * caught and turned into a message and an exit status.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError } from "commander";
import { BotBottleError, EXIT, UsageError } from "../errors.js";
import { PACKAGE_ROOT } from "../package-root.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { registerAttach } from "./attach.js";
import { registerBottleCommands } from "./bottles.js";
import { registerDoctor } from "./doctor.js";
import { registerEgress } from "./egress.js";
import { registerImages } from "./images.js";
import { registerInit } from "./init.js";
import { registerRequests } from "./requests.js";
import { registerRun } from "./run.js";
import { registerSchema } from "./schema.js";
import { registerSetup } from "./setup.js";
import { registerStart } from "./start.js";
import { registerTemplates } from "./templates.js";
import { registerValidate } from "./validate.js";

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("bot-bottle")
    .description(
      "Run AI coding agents with full autonomy inside a bottle whose only way out is its sidecar bundle.",
    )
    .version(packageVersion(), "-V, --version", "print the version")
    .option(
      "-f, --manifest <path>",
      "manifest file (default: $BOT_BOTTLE_MANIFEST or ./bot-bottle.json)",
    )
    .option("--debug", "show stack traces of internal errors")
    .helpOption("-h, --help", "show help")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout.write(s),
      writeErr: (s) => ctx.stderr.write(s),
      // Commander's own usage errors are printed by run() below, in bot-bottle's format.
      outputError: () => undefined,
    });
  registerInit(program, ctx);
  registerStart(program, ctx);
  registerRun(program, ctx);
  registerAttach(program, ctx);
  registerBottleCommands(program, ctx);
  registerEgress(program, ctx);
  registerRequests(program, ctx);
  registerValidate(program, ctx);
  registerSchema(program, ctx);
  registerSetup(program, ctx);
  registerDoctor(program, ctx);
  registerImages(program, ctx);
  registerTemplates(program, ctx);
  for (const command of program.commands)
    command.exitOverride().configureOutput(program.configureOutput());
  return program;
}

function report(ctx: CliContext, err: BotBottleError, debug: boolean): void {
  writeLine(ctx.stderr, `bot-bottle: ${err.message}`);
  if (err.hint) writeLine(ctx.stderr, `hint: ${err.hint}`);
  if (debug && err.stack) writeLine(ctx.stderr, err.stack);
}

/** Commands whose own `-f` is `--follow`. */
const FOLLOWING = new Set(["logs", "requests"]);

/**
 * `-f` before a command is the manifest; after `logs` or `requests` it is their `--follow`.
 * Commander gives every `-f` to the program's option wherever it stands, so theirs are spelled
 * out before parsing.
 */
export function followFlags(argv: readonly string[]): string[] {
  const out = [...argv];
  let i = 0;
  while (i < out.length && out[i]?.startsWith("-"))
    i += ["-f", "--manifest"].includes(out[i] ?? "") ? 2 : 1;
  if (!FOLLOWING.has(out[i] ?? "")) return out;
  for (let j = i + 1; j < out.length && out[j] !== "--"; j++)
    if (out[j] === "-f") out[j] = "--follow";
  return out;
}

/** Runs one command line; resolves to the process exit status. Never throws. */
export async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const debug = argv.includes("--debug") || ctx.env["BOT_BOTTLE_DEBUG"] === "1";
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(followFlags(argv), { from: "user" });
    return ctx.exitCode ?? EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok; // --help, --version
      const message = err.message.replace(/^error: /, "");
      report(
        ctx,
        new UsageError(
          message,
          "`bot-bottle --help` lists commands; `bot-bottle COMMAND --help` their options",
        ),
        false,
      );
      return EXIT.usage;
    }
    if (err instanceof BotBottleError) {
      report(ctx, err, debug);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    writeLine(ctx.stderr, `bot-bottle: internal error: ${message}`);
    if (debug && err instanceof Error && err.stack) writeLine(ctx.stderr, err.stack);
    else writeLine(ctx.stderr, "hint: run again with --debug for the stack trace, and report it");
    return EXIT.internal;
  }
}
