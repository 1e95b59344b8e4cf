import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import {
  bottleIfAny,
  cleanup,
  findBottle,
  listBottles,
  NoSuchBottleError,
  stopBottles,
  type BottleSummary,
} from "../lifecycle/bottles.js";
import { healthNote } from "../lifecycle/health.js";
import { bottleLogs, renderJson, renderLine, type LogLine } from "../lifecycle/logs.js";
import {
  AUDIT_SOURCE_NAMES,
  auditEntryJson,
  followAudit,
  readAuditTrail,
  renderAudit,
  renderAuditEntry,
  type AuditEntry,
  type AuditSourceName,
} from "../state/audit.js";
import { readMetadata } from "../state/bottle-state.js";
import { stateRoot } from "../state/paths.js";
import { join } from "node:path";
import { BotBottleError, EXIT, UsageError } from "../errors.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { table } from "../shared/table.js";

/** Some of the bottles `stop` was given could not be stopped (each one's reason in the message). */
class BottlesNotStoppedError extends BotBottleError {
  constructor(message: string, hint: string, exitCode: number) {
    super("command_failed", message, { exitCode, hint });
  }
}

interface LogsOptions {
  follow?: boolean;
  json?: boolean;
  egress?: boolean;
  git?: boolean;
  audit?: boolean;
}

/** An audit view of `logs`: which files, and how a record is shown to people and to programs. */
interface AuditView {
  sources: readonly AuditSourceName[];
  line: (e: AuditEntry) => string;
  json: (e: AuditEntry) => string;
}

const AUDIT_VIEWS: Record<"egress" | "git" | "audit", AuditView> = {
  egress: {
    sources: ["egress"],
    line: (e) => (e.source === "egress" ? renderAudit(e.record) : renderAuditEntry(e)),
    json: (e) => JSON.stringify(e.record),
  },
  git: { sources: ["git"], line: renderAuditEntry, json: (e) => JSON.stringify(e.record) },
  audit: { sources: AUDIT_SOURCE_NAMES, line: renderAuditEntry, json: auditEntryJson },
};

/** The audit view the options ask for; undefined for the bottle's logs. At most one. */
export function auditViewOf(options: LogsOptions): "egress" | "git" | "audit" | undefined {
  const chosen = (["egress", "git", "audit"] as const).filter((v) => options[v]);
  if (chosen.length > 1)
    throw new UsageError(
      `${chosen.map((v) => `--${v}`).join(" and ")} cannot be combined: each chooses what \`logs\` shows`,
      `give one: --egress (the egress audit), --git (the git gate's) or --audit (${AUDIT_SOURCE_NAMES.join(", ")} in time order)`,
    );
  return chosen[0];
}

async function showAudit(
  ctx: CliContext,
  slug: string,
  view: AuditView,
  options: { follow?: boolean; json?: boolean },
): Promise<void> {
  const stateDir = join(stateRoot(ctx.env), slug);
  const render = options.json ? view.json : view.line;
  if (!(await readMetadata(stateDir)))
    throw new NoSuchBottleError(slug, "no bottle by that name has a state dir here");
  const { entries, offsets } = await readAuditTrail(stateDir, view.sources);
  for (const entry of entries) writeLine(ctx.stdout, render(entry));
  if (!options.follow) return;
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await followAudit(
      stateDir,
      view.sources,
      offsets,
      (e) => writeLine(ctx.stdout, render(e)),
      controller.signal,
    );
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

/** One row of `ls`: a running bottle whose bundle is unhealthy says what does not answer. */
export function lsRow(b: BottleSummary): string[] {
  const note = healthNote(b);
  return [
    b.slug,
    b.agent,
    b.bottle,
    b.backend,
    note === undefined ? b.state : `${b.state} (${note})`,
    b.created?.slice(0, 19).replace("T", " ") ?? "-",
    b.workspace ?? "-",
  ];
}

export function registerBottleCommands(program: Command, ctx: CliContext): void {
  program
    .command("ls")
    .description("list bottles")
    .option("--json", "print the list as JSON")
    .action(async (options: { json?: boolean }) => {
      const bottles = await listBottles(allBackends(ctx.env), ctx.env);
      if (options.json) {
        writeLine(ctx.stdout, JSON.stringify(bottles, null, 2));
        return;
      }
      if (bottles.length === 0) {
        writeLine(ctx.stderr, "no bottles (start one with `bot-bottle start AGENT`)");
        return;
      }
      const rows = [["SLUG", "AGENT", "BOTTLE", "BACKEND", "STATE", "CREATED", "WORKSPACE"]];
      for (const b of bottles) rows.push(lsRow(b));
      for (const line of table(rows)) writeLine(ctx.stdout, line);
    });

  program
    .command("exec")
    .description(
      "run a command in a bottle's agent as user node; its exit status is passed through",
    )
    .argument("<slug>", "the bottle, as `bot-bottle ls` shows it")
    .argument("<command...>", "the command and its arguments (put -- before it)")
    .option("--user <user>", "run as this user instead of node")
    .action(async (slug: string, argv: string[], options: { user?: string }) => {
      const { backend, resources } = await findBottle(allBackends(ctx.env), slug);
      const bottle = await backend.handle(slug, resources);
      if (!bottle) throw new NoSuchBottleError(slug);
      const tty = ctx.stdin?.isTTY === true && ctx.stdout.isTTY === true;
      ctx.exitCode = await bottle.attach(argv, {
        tty,
        stdin: true,
        ...(options.user ? { user: options.user } : {}),
      });
    });

  program
    .command("logs")
    .description("show a bottle's logs: the bundle's events and the agent's output, in time order")
    .argument("<slug>", "the bottle")
    .option("-f, --follow", "keep printing new lines")
    .option("--json", "print JSON lines")
    .option(
      "--egress",
      "show the egress audit log instead: one line per allowed or refused request",
    )
    .option("--git", "show the git gate's audit log instead: one line per fetch, push or refusal")
    .option(
      "--audit",
      `show every audit log (${AUDIT_SOURCE_NAMES.join(", ")}) interleaved in time order; --json adds "source"`,
    )
    .action(async (slug: string, options: LogsOptions) => {
      const view = auditViewOf(options);
      if (view) return showAudit(ctx, slug, AUDIT_VIEWS[view], options);
      const render = options.json ? renderJson : renderLine;
      const print = (line: LogLine) => writeLine(ctx.stdout, render(line));
      const backends = allBackends(ctx.env);
      if (options.follow) {
        const found = await bottleIfAny(backends, slug);
        if (found) {
          await found.backend.logs(found.resources, { follow: true, onLine: print });
          return;
        }
      }
      const lines = await bottleLogs(backends, slug, ctx.env);
      if (!lines)
        throw new NoSuchBottleError(slug, "no running bottle and no captured logs by that name");
      for (const line of lines) print(line);
    });

  program
    .command("stop")
    .description(
      "stop bottles: capture their logs into the state dir, remove their containers and networks (several at once)",
    )
    .argument("[slug...]", "the bottles")
    .option("--all", "every bottle on this machine")
    .action(async (slugs: string[], options: { all?: boolean }) => {
      if (options.all && slugs.length > 0) throw new UsageError("give bottles or --all, not both");
      if (!options.all && slugs.length === 0)
        throw new UsageError(
          "which bottles?",
          "name them (`bot-bottle ls` lists them) or give --all",
        );
      const results = await stopBottles(
        allBackends(ctx.env),
        options.all ? "all" : slugs,
        ctx.env,
        (s) => {
          if (!s.ok) return;
          if (s.summary.login) writeLine(ctx.stderr, s.summary.login);
          if (s.summary.deployKeys) writeLine(ctx.stderr, s.summary.deployKeys);
          writeLine(ctx.stdout, `stopped ${s.slug} (state kept in ${s.summary.stateDir})`);
        },
      );
      if (options.all && results.length === 0) writeLine(ctx.stdout, "no bottles to stop");
      const failed = results.flatMap((r) => (r.ok ? [] : [r]));
      if (failed.length === 1 && failed[0]?.error instanceof Error) throw failed[0].error;
      if (failed.length === 0) return;
      // One status for all when they agree (every one unknown: a usage error), else internal.
      const codes = new Set(
        failed.map((f) => (f.error instanceof BotBottleError ? f.error.exitCode : EXIT.internal)),
      );
      const reasons = failed.map(
        (f) => `${f.slug} (${f.error instanceof Error ? f.error.message : String(f.error)})`,
      );
      throw new BottlesNotStoppedError(
        `${failed.length} of ${results.length} bottles were not stopped: ${reasons.join("; ")}`,
        "the others were; `bot-bottle ls` shows what is left, and `bot-bottle stop SLUG` tries one again",
        codes.size === 1 ? ([...codes][0] ?? EXIT.internal) : EXIT.internal,
      );
    });

  program
    .command("cleanup")
    .description(
      "remove containers and networks of bottles that are not running (e.g. after a killed start)",
    )
    .option("--json", "print what was removed as JSON")
    .action(async (options: { json?: boolean }) => {
      const removed = await cleanup(allBackends(ctx.env), ctx.env);
      if (options.json) writeLine(ctx.stdout, JSON.stringify(removed, null, 2));
      else if (removed.length === 0) writeLine(ctx.stdout, "nothing to clean up");
      else
        for (const b of removed) {
          writeLine(
            ctx.stdout,
            `removed ${b.slug}: ${[...b.containers.map((c) => `container ${c.name}`), ...b.networks.map((n) => `network ${n}`)].join(", ")}`,
          );
          if (b.login) writeLine(ctx.stderr, b.login);
          if (b.deployKeys) writeLine(ctx.stderr, b.deployKeys);
        }
    });
}
