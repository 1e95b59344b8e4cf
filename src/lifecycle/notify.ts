/**
 * supervise.notify: a program of the operator's run on the host for each new request. Nothing of
 * bot-bottle runs on the host between commands, so `start` leaves a watcher behind: a detached
 * `bot-bottle notify-watch SLUG` that follows the bottle's audit/supervise.jsonl, runs the command
 * for each request (its argv directly, never a shell; the request as JSON on stdin, escaped so
 * that no character of the agent's can act on a terminal; BOT_BOTTLE_SLUG, BOT_BOTTLE_REQUEST_ID
 * and a one-line BOT_BOTTLE_REQUEST_SUMMARY in its environment), and exits once the bottle's
 * metadata says it is no longer starting or running. The command is kept in the state dir
 * (notify.json, 0600), not on the watcher's argv.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { processRunner, type DetachedChild, type Runner } from "../exec/run.js";
import type { Supervise } from "../manifest/schema.js";
import { visible } from "../shared/visible.js";
import { describeRequest, followAudit } from "../state/audit.js";
import { readMetadata } from "../state/bottle-state.js";
import { writeJsonAtomic } from "../state/files.js";
import { escapedJson, loadQueue, type QueueEntry } from "../state/queue.js";
import { pidAlive } from "./bottles.js";

export const NOTIFY_FILE = "notify.json";
export const NOTIFY_LOG = "notify.log";
/** A notify command that runs longer than this is stopped (the next request still notifies). */
export const NOTIFY_TIMEOUT_MS = 30_000;

const NotifyFileSchema = z.strictObject({ command: z.array(z.string().min(1)).min(1) });

/** What the notify command reads on stdin: the request and its bottle. */
export function notifyPayload(slug: string, e: QueueEntry): string {
  return (
    escapedJson({
      slug,
      id: e.id,
      time: e.time,
      request: e.request,
      flags: e.flags,
      deadline: e.deadline,
    }) + "\n"
  );
}

/** "coder-abc123 asks (r-7k2m9x4p0q): egress-route api.example.com GET /v1/ — \"reason\"". */
export function notifySummary(slug: string, e: QueueEntry): string {
  const why = e.request.kind === "question" ? "" : ` — ${JSON.stringify(e.request.reason)}`;
  const flags = e.flags.length ? ` [! ${e.flags.join("; ")}]` : "";
  return visible(
    `${slug} asks (${e.id}): ${e.request.kind} ${describeRequest(e.request)}${why}${flags}`,
  );
}

/**
 * For `start`, once the bottle runs: leaves the watcher running when the bottle's supervise has a
 * notify command; undefined when it has none. `cli` is how to run this bot-bottle again (default:
 * this process's node, its flags and its script).
 */
export async function startNotifyWatcher(options: {
  supervise: Supervise;
  slug: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  runner?: Runner;
  cli?: readonly string[];
}): Promise<DetachedChild | undefined> {
  const { supervise, slug, stateDir } = options;
  if (supervise === false || !supervise.notify) return undefined;
  await writeJsonAtomic(join(stateDir, NOTIFY_FILE), { command: supervise.notify.command }, 0o600);
  const [command, ...args] = options.cli ?? [
    process.execPath,
    ...process.execArgv,
    process.argv[1] ?? "",
  ];
  return (options.runner ?? processRunner).startDetached(
    command ?? process.execPath,
    [...args, "notify-watch", slug],
    { logFile: join(stateDir, NOTIFY_LOG), env: options.env },
  );
}

/** Whether the watcher goes on: the bottle runs, or a start that is still alive starts it. */
async function bottleLives(stateDir: string): Promise<boolean> {
  const meta = await readMetadata(stateDir);
  if (meta?.status === "running") return true;
  return meta?.status === "starting" && (meta.startPid === undefined || pidAlive(meta.startPid));
}

/**
 * `bot-bottle notify-watch SLUG`: runs the notify command for each request still pending when it
 * starts, then for each new one, one at a time, until the bottle stops or `signal` aborts. A
 * command that fails is reported on `log` (the watcher's log file) and the next request still runs.
 */
export async function watchNotify(options: {
  slug: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  runner?: Runner;
  signal?: AbortSignal;
  log?: (line: string) => void;
  intervalMs?: number;
}): Promise<void> {
  const { slug, stateDir } = options;
  const runner = options.runner ?? processRunner;
  const log = options.log ?? (() => undefined);
  const file = join(stateDir, NOTIFY_FILE);
  const { command } = NotifyFileSchema.parse(JSON.parse(await readFile(file, "utf8")));
  const [program, ...args] = command as [string, ...string[]];
  const intervalMs = options.intervalMs ?? 1000;

  const notify = async (e: QueueEntry) => {
    try {
      await runner.run(program, args, {
        input: notifyPayload(slug, e),
        env: {
          ...options.env,
          BOT_BOTTLE_SLUG: slug,
          BOT_BOTTLE_REQUEST_ID: e.id,
          BOT_BOTTLE_REQUEST_SUMMARY: notifySummary(slug, e),
        },
        timeoutMs: NOTIFY_TIMEOUT_MS,
      });
      log(`notified ${e.id}`);
    } catch (err) {
      log(
        visible(`notify for ${e.id} failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  };

  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener("abort", stop, { once: true });
  let chain = Promise.resolve();
  const watch = setInterval(() => {
    void bottleLives(stateDir).then(
      (lives) => lives || stop(),
      () => undefined,
    );
  }, intervalMs);
  try {
    if (!(await bottleLives(stateDir)) || controller.signal.aborted) return;
    const { entries, offsets } = await loadQueue(stateDir);
    for (const e of entries) if (e.status === "pending") chain = chain.then(() => notify(e));
    await followAudit(
      stateDir,
      ["supervise"],
      offsets,
      (entry) => {
        if (entry.source !== "supervise" || entry.record.event !== "request") return;
        const r = entry.record;
        chain = chain.then(() =>
          notify({
            id: r.id,
            time: r.time,
            request: r.request,
            flags: r.flags,
            deadline: r.deadline,
            status: "pending",
          }),
        );
      },
      controller.signal,
      Math.min(250, intervalMs),
    );
    await chain;
  } finally {
    clearInterval(watch);
    options.signal?.removeEventListener("abort", stop);
  }
}
