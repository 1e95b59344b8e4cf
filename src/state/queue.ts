/**
 * The request queue, host side. The bundle's supervise server appends each request the agent makes
 * and what became of it to audit/supervise.jsonl; the queue is that file folded into one entry per
 * request. A decision reaches the bundle only as a file the host writes: bundle/decisions/<id>.json
 * (the bundle sees bundle/ read-only and runs as another user: the folder is 0755, each file 0644,
 * complete when it appears, never replaced — a decision is used once).
 */
import { randomBytes } from "node:crypto";
import {
  chmod,
  link,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { RefusedError } from "../errors.js";
import {
  DecisionSchema,
  parseDecision,
  REQUEST_ID,
  type Decision,
  type RequestBody,
  type SuperviseRecord,
} from "../shared/supervise.js";
import { readAuditTrail, type AuditSourceName } from "./audit.js";

export type RequestStatus = "pending" | "approved" | "denied" | "answered" | "expired";

/** What the operator (or the clock, or a restart of the bundle) made of a request. */
export interface RequestOutcome {
  by: "operator" | "timeout" | "restart";
  until?: string;
  reason?: string;
  answer?: string;
  applied?: string;
  time: string;
}

/** One request, as the records of the bundle tell it. */
export interface QueueEntry {
  id: string;
  time: string;
  request: RequestBody;
  flags: string[];
  deadline: string;
  status: RequestStatus;
  outcome?: RequestOutcome;
  /** A decision the host wrote for a pending request, that the bundle has not recorded yet. */
  sent?: Decision["decision"];
}

const STATUS_OF = { approved: "approved", denied: "denied", answered: "answered" } as const;

/**
 * The records folded into one entry per request, in the order they were made. A pending request
 * whose deadline has passed at `now` is denied (timeout) — the bundle ends it so; the queue does
 * not wait for the bundle's record to say it. The first record for an id counts; later ones for
 * a request already decided, and records for an unknown id, are ignored.
 */
export function foldQueue(records: readonly SuperviseRecord[], now: Date): QueueEntry[] {
  const entries = new Map<string, QueueEntry>();
  for (const r of records) {
    switch (r.event) {
      case "request":
        if (!entries.has(r.id))
          entries.set(r.id, {
            id: r.id,
            time: r.time,
            request: r.request,
            flags: r.flags,
            deadline: r.deadline,
            status: "pending",
          });
        break;
      case "decided": {
        const entry = entries.get(r.id);
        if (!entry || entry.status !== "pending") break;
        entry.status = STATUS_OF[r.outcome];
        entry.outcome = {
          by: r.by,
          time: r.time,
          ...(r.until !== undefined ? { until: r.until } : {}),
          ...(r.reason !== undefined ? { reason: r.reason } : {}),
          ...(r.answer !== undefined ? { answer: r.answer } : {}),
          ...(r.applied !== undefined ? { applied: r.applied } : {}),
        };
        break;
      }
      case "expired": {
        const entry = entries.get(r.id);
        if (entry?.status !== "approved") break;
        entry.status = "expired";
        if (r.applied !== undefined && entry.outcome) entry.outcome.applied = r.applied;
        break;
      }
      case "refused":
        break;
    }
  }
  for (const entry of entries.values()) {
    // Fail closed: silence past the deadline is a denial, whatever the bundle has written yet.
    if (entry.status === "pending" && !(Date.parse(entry.deadline) > now.getTime())) {
      entry.status = "denied";
      entry.outcome = { by: "timeout", time: entry.deadline };
    }
  }
  return [...entries.values()];
}

export function decisionsDir(stateDir: string): string {
  return join(stateDir, "bundle", "decisions");
}

export function decisionFile(stateDir: string, id: string): string {
  if (!REQUEST_ID.test(id)) throw new Error(`not a request id: ${JSON.stringify(id)}`);
  return join(decisionsDir(stateDir), `${id}.json`);
}

/** The decision the host wrote for `id`, if any (a file that does not parse counts as written). */
export async function readDecision(
  stateDir: string,
  id: string,
): Promise<Decision | "unreadable" | undefined> {
  const file = decisionFile(stateDir, id);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return parseDecision(text, file);
  } catch {
    return "unreadable";
  }
}

/** The queue of a bottle, and where the supervise file's complete lines end (to follow from). */
export async function loadQueue(
  stateDir: string,
  now = new Date(),
): Promise<{ entries: QueueEntry[]; offsets: Map<AuditSourceName, number> }> {
  const { entries, offsets } = await readAuditTrail(stateDir, ["supervise"]);
  const records = entries.flatMap((e) => (e.source === "supervise" ? [e.record] : []));
  const queue = foldQueue(records, now);
  const written = new Set(
    await readdir(decisionsDir(stateDir)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [];
      throw err;
    }),
  );
  for (const entry of queue) {
    if (entry.status !== "pending" || !written.has(`${entry.id}.json`)) continue;
    const decision = await readDecision(stateDir, entry.id);
    if (decision && decision !== "unreadable") entry.sent = decision.decision;
  }
  return { entries: queue, offsets };
}

/** A bottle's requests (see foldQueue), with the decisions sent but not yet recorded. */
export async function readQueue(stateDir: string, now = new Date()): Promise<QueueEntry[]> {
  return (await loadQueue(stateDir, now)).entries;
}

/** A decision for this request was written already: it is used once, and never replaced. */
export class DecisionExistsError extends RefusedError {
  constructor(id: string) {
    super(
      `request ${id} already has a decision: a decision is used once`,
      "`bot-bottle requests` shows what became of it",
    );
    this.name = "DecisionExistsError";
  }
}

const NO_HARD_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"]);

/**
 * Writes the decision to bundle/decisions/<id>.json for the bundle to read: the folder 0755 and
 * the file 0644 (the bundle runs as another user), the file complete when its name appears (a
 * temp file beside it, hard-linked into place — a rename would replace an existing decision, a
 * link refuses to). Throws DecisionExistsError when the request has a decision already.
 */
export async function writeDecision(stateDir: string, decision: Decision): Promise<string> {
  const checked = DecisionSchema.parse(decision);
  const file = decisionFile(stateDir, checked.id);
  const dir = decisionsDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  const temp = join(dir, `.${checked.id}.json.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(temp, JSON.stringify(checked, null, 2) + "\n", { mode: 0o644, flag: "wx" });
    await chmod(temp, 0o644); // whatever the umask
    try {
      await link(temp, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      if (code === "EEXIST") throw new DecisionExistsError(checked.id);
      if (!NO_HARD_LINKS.has(code)) throw err;
      // A file system without hard links: check, then rename (only bot-bottle writes here).
      if (
        await stat(file).then(
          () => true,
          () => false,
        )
      )
        throw new DecisionExistsError(checked.id);
      await rename(temp, file);
    }
  } finally {
    await rm(temp, { force: true });
  }
  return file;
}

/** JSON whose text hides nothing: the characters visible() escapes are written as \u escapes. */
export function escapedJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
