import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import {
  cleanup,
  findBottle,
  listBottles,
  NoSuchBottleError,
  stopBottle,
} from "../lifecycle/bottles.js";
import { capturedLogs, renderJson, renderLine, type LogLine } from "../lifecycle/logs.js";
import { readFile } from "node:fs/promises";
import type { AuditRecord } from "../shared/egress-config.js";
import { auditFile, followAudit, parseAudit, renderAudit } from "../state/audit.js";
import { readMetadata } from "../state/bottle-state.js";
import { stateRoot } from "../state/paths.js";
import { join } from "node:path";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { table } from "./table.js";

async function showAudit(
  ctx: CliContext,
  slug: string,
  options: { follow?: boolean; json?: boolean },
): Promise<void> {
  const stateDir = join(stateRoot(ctx.env), slug);
  const render = (r: AuditRecord) => (options.json ? JSON.stringify(r) : renderAudit(r));
  if (!(await readMetadata(stateDir)))
    throw new NoSuchBottleError(slug, "no bottle by that name has a state dir here");
  const text = await readFile(auditFile(stateDir), "utf8").catch(() => "");
  for (const record of parseAudit(text)) writeLine(ctx.stdout, render(record));
  if (!options.follow) return;
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  await followAudit(
    stateDir,
    Buffer.byteLength(text),
    (r) => writeLine(ctx.stdout, render(r)),
    controller.signal,
  );
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
      for (const b of bottles)
        rows.push([
          b.slug,
          b.agent,
          b.bottle,
          b.backend,
          b.state,
          b.created?.slice(0, 19).replace("T", " ") ?? "-",
          b.workspace ?? "-",
        ]);
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
    .action(
      async (slug: string, options: { follow?: boolean; json?: boolean; egress?: boolean }) => {
        if (options.egress) return showAudit(ctx, slug, options);
        const render = options.json ? renderJson : renderLine;
        const found = await findBottle(allBackends(ctx.env), slug).catch((err: unknown) => {
          if (err instanceof NoSuchBottleError) return undefined;
          throw err;
        });
        if (!found) {
          const captured = await capturedLogs(join(stateRoot(ctx.env), slug));
          if (!captured)
            throw new NoSuchBottleError(
              slug,
              "no running bottle and no captured logs by that name",
            );
          for (const line of captured) writeLine(ctx.stdout, render(line));
          return;
        }
        const print = (line: LogLine) => writeLine(ctx.stdout, render(line));
        if (!options.follow) {
          for (const line of await found.backend.logs(found.resources)) print(line);
          return;
        }
        await found.backend.logs(found.resources, { follow: true, onLine: print });
      },
    );

  program
    .command("stop")
    .description(
      "stop a bottle: capture its logs into the state dir, remove its containers and networks",
    )
    .argument("<slug...>", "the bottles")
    .action(async (slugs: string[]) => {
      for (const slug of slugs) {
        const stopped = await stopBottle(allBackends(ctx.env), slug, ctx.env);
        if (stopped.login) writeLine(ctx.stderr, stopped.login);
        writeLine(ctx.stdout, `stopped ${stopped.slug} (state kept in ${stopped.stateDir})`);
      }
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
        }
    });
}
