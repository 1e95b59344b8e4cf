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

type Register = (program: Command, ctx: CliContext) => void;

/**
 * Each command file, in the order `--help` lists them, loaded only when needed: a command line
 * loads the one file its command is in (`ls` need not load what `start` needs), help and an
 * unknown word load them all.
 */
const COMMAND_FILES = {
  init: () => import("./init.js").then((m) => m.registerInit),
  start: () => import("./start.js").then((m) => m.registerStart),
  run: () => import("./run.js").then((m) => m.registerRun),
  attach: () => import("./attach.js").then((m) => m.registerAttach),
  bottles: () => import("./bottles.js").then((m) => m.registerBottleCommands),
  egress: () => import("./egress.js").then((m) => m.registerEgress),
  requests: () => import("./requests.js").then((m) => m.registerRequests),
  dashboard: () => import("./dashboard.js").then((m) => m.registerDashboard),
  validate: () => import("./validate.js").then((m) => m.registerValidate),
  schema: () => import("./schema.js").then((m) => m.registerSchema),
  setup: () => import("./setup.js").then((m) => m.registerSetup),
  doctor: () => import("./doctor.js").then((m) => m.registerDoctor),
  images: () => import("./images.js").then((m) => m.registerImages),
  templates: () => import("./templates.js").then((m) => m.registerTemplates),
} satisfies Record<string, () => Promise<Register>>;

type CommandFile = keyof typeof COMMAND_FILES;

/** The file each top-level command word is registered in. */
const FILE_OF: Record<string, CommandFile> = {
  ls: "bottles",
  exec: "bottles",
  logs: "bottles",
  stop: "bottles",
  cleanup: "bottles",
  "notify-watch": "requests",
  approve: "requests",
  deny: "requests",
  answer: "requests",
  ...Object.fromEntries(Object.keys(COMMAND_FILES).map((f) => [f, f as CommandFile])),
};

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

/**
 * The program with the commands `word` needs: its own file's when it names a command, every
 * file's otherwise.
 */
export async function buildProgram(ctx: CliContext, word?: string): Promise<Command> {
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
  const file = word === undefined ? undefined : FILE_OF[word];
  const files = file ? [file] : (Object.keys(COMMAND_FILES) as CommandFile[]);
  const registers = await Promise.all(files.map((f) => COMMAND_FILES[f]()));
  for (const register of registers) register(program, ctx);
  for (const command of program.commands)
    command.exitOverride().configureOutput(program.configureOutput());
  return program;
}

function report(ctx: CliContext, err: BotBottleError, debug: boolean): void {
  writeLine(ctx.stderr, `bot-bottle: ${err.message}`);
  if (err.hint) writeLine(ctx.stderr, `hint: ${err.hint}`);
  if (debug && err.stack) writeLine(ctx.stderr, err.stack);
}

/** Where the command word stands: after the program's own options (`-f PATH`, `--debug`). */
function commandIndex(argv: readonly string[]): number {
  let i = 0;
  while (i < argv.length && argv[i]?.startsWith("-"))
    i += ["-f", "--manifest"].includes(argv[i] ?? "") ? 2 : 1;
  return i;
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
  const i = commandIndex(out);
  if (!FOLLOWING.has(out[i] ?? "")) return out;
  for (let j = i + 1; j < out.length && out[j] !== "--"; j++)
    if (out[j] === "-f") out[j] = "--follow";
  return out;
}

/** Runs one command line; resolves to the process exit status. Never throws. */
export async function run(argv: readonly string[], ctx: CliContext): Promise<number> {
  const debug = argv.includes("--debug") || ctx.env["BOT_BOTTLE_DEBUG"] === "1";
  try {
    const program = await buildProgram(ctx, argv[commandIndex(argv)]);
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
