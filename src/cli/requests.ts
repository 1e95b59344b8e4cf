/**
 * `requests`, `approve`, `deny`, `answer`: the operator's side of supervise. Parsing and printing
 * only; everything the agent wrote is shown through visible() (and JSON-escaped for programs).
 */
import type { Command } from "commander";
import { allBackends } from "../backends/index.js";
import {
  answerRequest,
  approveRequest,
  checkRequestId,
  denyRequest,
  leaseText,
  listRequests,
  requestCells,
  requestBottles,
  type BottleRequest,
} from "../lifecycle/requests.js";
import { watchNotify } from "../lifecycle/notify.js";
import { visible } from "../shared/visible.js";
import { describeRequest, followAudit } from "../state/audit.js";
import { escapedJson, loadQueue } from "../state/queue.js";
import type { CliContext } from "./context.js";
import { writeLine } from "./context.js";
import { table } from "../shared/table.js";

const HEADER = ["ID", "BOTTLE", "AGE", "KIND", "WHAT", "REASON", "STATUS"];

/** For programs: the entry with its bottle, raw values JSON-escaped. */
export function requestJson(e: BottleRequest): string {
  const entry: Partial<BottleRequest> = { ...e };
  delete entry.stateDir;
  return escapedJson(entry);
}

function warnFlags(ctx: CliContext, entries: readonly BottleRequest[]): void {
  for (const e of entries)
    if (e.status === "pending" && e.flags.length)
      writeLine(
        ctx.stderr,
        visible(
          `warning: ${e.id} (${e.slug}) ${describeRequest(e.request)}: ${e.flags.join("; ")} — read it character by character before approving`,
        ),
      );
}

interface RequestsOptions {
  json?: boolean;
  follow?: boolean;
  all?: boolean;
}

async function follow(
  ctx: CliContext,
  bottles: readonly { slug: string; stateDir: string }[],
  print: (e: BottleRequest) => void,
): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    await Promise.all(
      bottles.map(async (b) => {
        const { offsets } = await loadQueue(b.stateDir);
        // Each record is shown as the queue has it once read (a request, then each change of
        // its status), one after the other.
        let shown = Promise.resolve();
        const show = async (id: string) => {
          const entry = (await loadQueue(b.stateDir)).entries.find((e) => e.id === id);
          if (entry) print({ ...entry, ...b });
        };
        await followAudit(
          b.stateDir,
          ["supervise"],
          offsets,
          (record) => {
            if (record.source !== "supervise" || !("id" in record.record)) return;
            const id = record.record.id;
            shown = shown.then(() =>
              show(id).catch((err: unknown) =>
                writeLine(
                  ctx.stderr,
                  `bot-bottle: ${b.slug}: ${err instanceof Error ? err.message : String(err)}`,
                ),
              ),
            );
          },
          controller.signal,
        );
        await shown;
      }),
    );
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

export function registerRequests(program: Command, ctx: CliContext): void {
  program
    .command("requests")
    .description(
      "what the agents asked the operator for (supervise): the pending requests, then the latest decided, of one bottle or every running one",
    )
    .argument("[slug]", "one bottle (default: every running bottle)")
    .option("--json", "print JSON lines, one request each")
    .option("-f, --follow", "keep printing requests as they come and change")
    .option("--all", "every decided request, not only the latest")
    .action(async (slug: string | undefined, options: RequestsOptions) => {
      const now = new Date();
      const entries = await listRequests({
        env: ctx.env,
        ...(slug !== undefined ? { slug } : {}),
        ...(options.all ? { all: true } : {}),
        now,
      });
      if (options.json) for (const e of entries) writeLine(ctx.stdout, requestJson(e));
      else if (entries.length > 0)
        for (const line of table([HEADER, ...entries.map((e) => requestCells(e, now))]))
          writeLine(ctx.stdout, line);
      else if (!options.follow)
        writeLine(
          ctx.stderr,
          slug ? `no requests from ${slug}` : "no requests from running bottles",
        );
      if (!options.json) warnFlags(ctx, entries);
      if (!options.follow) return;
      const bottles = await requestBottles(ctx.env, slug);
      await follow(ctx, bottles, (e) => {
        if (options.json) writeLine(ctx.stdout, requestJson(e));
        else {
          writeLine(ctx.stdout, requestCells(e, new Date()).join("  "));
          warnFlags(ctx, [e]);
        }
      });
    });

  // Left running by `start` for a bottle whose supervise has a notify command (lifecycle/notify.ts).
  program
    .command("notify-watch", { hidden: true })
    .description("run the bottle's supervise.notify command for each new request, until it stops")
    .argument("<slug>", "the bottle")
    .action(async (slug: string) => {
      const [bottle] = await requestBottles(ctx.env, slug);
      if (!bottle) return;
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await watchNotify({
          slug,
          stateDir: bottle.stateDir,
          env: ctx.env,
          signal: controller.signal,
          log: (line) => writeLine(ctx.stderr, `${new Date().toISOString()} ${line}`),
        });
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });

  program
    .command("approve")
    .description(
      "approve a pending request for a route or a git repository: add it to the running bottle (no restart) and tell the agent",
    )
    .argument("<id>", "the request, as `bot-bottle requests` shows it")
    .option("--for <duration>", 'end the grant after this long, e.g. "30m", "2h"')
    .option("--persist", "also add the route or repository to the bottle in its manifest")
    .option(
      "--host-key <key>",
      'a git repository over SSH: the upstream\'s host key, "ssh-ed25519 AAAA…" (ssh-keyscan -t ed25519 HOST, checked against its fingerprint)',
    )
    .option(
      "--key-file <path>",
      "a git repository over SSH: the private key the gate signs in with (the agent never sees it)",
    )
    .option(
      "--token-env <name>",
      "a git repository over HTTPS: the variable of this shell holding its token",
    )
    .option("--name <name>", "a git repository: its name in the bottle (git://git-gate/<name>.git)")
    .action(
      async (
        id: string,
        options: {
          for?: string;
          persist?: boolean;
          hostKey?: string;
          keyFile?: string;
          tokenEnv?: string;
          name?: string;
        },
      ) => {
        checkRequestId(id);
        const git = Object.fromEntries(
          (["hostKey", "keyFile", "tokenEnv", "name"] as const).flatMap((k) =>
            options[k] !== undefined ? [[k, options[k]]] : [],
          ),
        );
        const r = await approveRequest({
          env: ctx.env,
          id,
          backends: allBackends(ctx.env),
          ...(options.for !== undefined ? { for: options.for } : {}),
          persist: options.persist ?? false,
          ...(Object.keys(git).length > 0 ? { git } : {}),
        });
        const lease =
          r.until !== undefined && r.seconds !== undefined
            ? ` ${leaseText(r.seconds, r.until)}`
            : "";
        writeLine(
          ctx.stdout,
          visible(
            `approved ${r.id} (${r.slug}): ${r.decision.applied ?? ""}${lease}${options.persist ? "; added to the manifest" : ""}`,
          ),
        );
      },
    );

  program
    .command("deny")
    .description("deny a pending request; the agent is told, with the reason when given")
    .argument("<id>", "the request, as `bot-bottle requests` shows it")
    .option("--reason <text>", "why, for the agent")
    .action(async (id: string, options: { reason?: string }) => {
      checkRequestId(id);
      const r = await denyRequest({
        env: ctx.env,
        id,
        ...(options.reason !== undefined ? { reason: options.reason } : {}),
      });
      writeLine(
        ctx.stdout,
        visible(`denied ${r.id} (${r.slug})${r.decision.reason ? `: ${r.decision.reason}` : ""}`),
      );
    });

  program
    .command("answer")
    .description("answer an agent's pending question")
    .argument("<id>", "the question, as `bot-bottle requests` shows it")
    .argument("<text>", "the answer (one argument: quote it)")
    .action(async (id: string, text: string) => {
      checkRequestId(id);
      const r = await answerRequest({ env: ctx.env, id, text });
      writeLine(ctx.stdout, visible(`answered ${r.id} (${r.slug}): ${JSON.stringify(text)}`));
    });
}
