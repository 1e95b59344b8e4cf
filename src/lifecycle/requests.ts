/**
 * The operator's side of supervise: the requests of the running bottles (`bot-bottle requests`),
 * and a decision on one (`approve`, `deny`, `answer`). A request is found by its id in whichever
 * bottle's state dir holds it; a decision is written only for a request still pending, before its
 * deadline, of a bottle that is running — and carries that bottle's slug, so no other bundle
 * would take it.
 */
import { basename, join } from "node:path";
import type { Backend } from "../backends/backend.js";
import { BotBottleError, EXIT, RefusedError, UsageError } from "../errors.js";
import {
  DURATION_EXAMPLE,
  formatDuration,
  parseDuration,
  roughDuration,
} from "../shared/duration.js";
import { REQUEST_ID, type Decision } from "../shared/supervise.js";
import { visible } from "../shared/visible.js";
import { describeRequest } from "../state/audit.js";
import { listStateDirs, readMetadata, type BottleMetadata } from "../state/bottle-state.js";
import { stateRoot } from "../state/paths.js";
import { loadQueue, writeDecision, type QueueEntry } from "../state/queue.js";
import { NoSuchBottleError } from "./bottles.js";
import type { GitGrantOptions } from "./git-grants.js";
import { grantRequest } from "./grants.js";

/** A request and the bottle it came from. */
export interface BottleRequest extends QueueEntry {
  slug: string;
  stateDir: string;
}

/** How many decided requests `requests` shows after the pending ones, unless asked for all. */
export const RECENT_DECIDED = 10;

const SLUG = /^[a-z0-9][a-z0-9-]*$/;

/** The state dirs whose requests are shown: the one named, or every running bottle's. */
export async function requestBottles(
  env: NodeJS.ProcessEnv,
  slug?: string,
): Promise<{ slug: string; stateDir: string }[]> {
  const root = stateRoot(env);
  if (slug !== undefined) {
    if (!SLUG.test(slug)) throw new NoSuchBottleError(visible(slug));
    const stateDir = join(root, slug);
    if (!(await readMetadata(stateDir)))
      throw new NoSuchBottleError(slug, "no bottle by that name has a state dir here");
    return [{ slug, stateDir }];
  }
  const out: { slug: string; stateDir: string }[] = [];
  for (const stateDir of await listStateDirs(root)) {
    const meta = await readMetadata(stateDir);
    if (meta?.status === "running") out.push({ slug: meta.slug || basename(stateDir), stateDir });
  }
  return out;
}

/** When a request was last changed: its outcome, or its making. */
const changed = (e: QueueEntry) => Date.parse(e.outcome?.time ?? e.time);

/**
 * The requests of one bottle or of every running one: the pending first (oldest first), then the
 * decided (latest first; the RECENT_DECIDED latest unless `all`).
 */
export async function listRequests(options: {
  env: NodeJS.ProcessEnv;
  slug?: string;
  all?: boolean;
  now?: Date;
}): Promise<BottleRequest[]> {
  const now = options.now ?? new Date();
  const found: BottleRequest[] = [];
  for (const b of await requestBottles(options.env, options.slug))
    for (const entry of (await loadQueue(b.stateDir, now)).entries) found.push({ ...entry, ...b });
  const pending = found
    .filter((e) => e.status === "pending")
    .sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  const decided = found
    .filter((e) => e.status !== "pending")
    .sort((a, b) => changed(b) - changed(a));
  return [...pending, ...(options.all ? decided : decided.slice(0, RECENT_DECIDED))];
}

/** The id as typed, checked for its shape before any file is looked at. */
export function checkRequestId(id: string): string {
  if (REQUEST_ID.test(id)) return id;
  throw new UsageError(
    `${JSON.stringify(visible(id))} is not a request id`,
    'ids look like "r-7k2m9x4p0q": `bot-bottle requests` lists them',
  );
}

export class NoSuchRequestError extends BotBottleError {
  constructor(id: string) {
    super("usage", `no bottle has a request ${id}`, {
      exitCode: EXIT.usage,
      hint: "`bot-bottle requests` lists the pending ones (`bot-bottle requests SLUG --all` every one of a bottle)",
    });
    this.name = "NoSuchRequestError";
  }
}

/** A request found, with its bottle's metadata. */
export interface FoundRequest {
  slug: string;
  stateDir: string;
  meta: BottleMetadata;
  entry: QueueEntry;
}

/** The bottle holding request `id`, among every state dir; throws when none or several do. */
export async function findRequest(
  env: NodeJS.ProcessEnv,
  id: string,
  now = new Date(),
): Promise<FoundRequest> {
  checkRequestId(id);
  const found: FoundRequest[] = [];
  for (const stateDir of await listStateDirs(stateRoot(env))) {
    const meta = await readMetadata(stateDir);
    if (!meta) continue;
    const entry = (await loadQueue(stateDir, now)).entries.find((e) => e.id === id);
    if (entry) found.push({ slug: meta.slug || basename(stateDir), stateDir, meta, entry });
  }
  if (found.length > 1)
    throw new RefusedError(
      `request ${id} is in more than one bottle (${found.map((f) => f.slug).join(", ")}): nothing was decided`,
      "deny it in the agent's own words instead: the ids are made at random and should never repeat",
    );
  const [one] = found;
  if (!one) throw new NoSuchRequestError(id);
  return one;
}

const clock = (iso: string) => `${iso.slice(11, 19)} UTC`;

/** What became of a request that is no longer pending, as a phrase. */
export function settled(entry: QueueEntry): string {
  const o = entry.outcome;
  if (entry.status === "denied" && o?.by === "timeout") return "denied (timeout)";
  if (entry.status === "denied" && o?.by === "restart") return "denied (the bundle restarted)";
  return entry.status;
}

/** Refuses a decision on a request that cannot take one now. */
export function checkDecidable(found: FoundRequest, now = new Date()): void {
  const { slug, meta, entry } = found;
  const id = entry.id;
  if (meta.status !== "running")
    throw new RefusedError(
      `request ${id} is of ${slug}, which is ${meta.status}: no bundle is there to take a decision`,
      "`bot-bottle requests` lists the requests of running bottles",
    );
  if (entry.status === "denied" && entry.outcome?.by === "timeout")
    throw new RefusedError(
      `request ${id} of ${slug} passed its deadline (${clock(entry.deadline)}): it is denied (timeout)`,
      "the agent can ask again; `timeout` in the bottle's `supervise` sets how long a request waits",
    );
  if (entry.status !== "pending")
    throw new RefusedError(
      `request ${id} of ${slug} is already ${settled(entry)}${entry.outcome?.by === "operator" ? ` (${clock(entry.outcome.time)})` : ""}: a decision is used once`,
      "`bot-bottle requests` shows what became of it",
    );
  if (entry.sent)
    throw new RefusedError(
      `request ${id} of ${slug} already has a decision (${entry.sent}) waiting for the bundle to read it: a decision is used once`,
      `\`bot-bottle logs ${slug} --audit\` shows when the bundle takes it`,
    );
  if (!(Date.parse(entry.deadline) > now.getTime()))
    throw new RefusedError(`request ${id} of ${slug} passed its deadline: it is denied (timeout)`);
}

/** What a decision command did. */
export interface Decided {
  slug: string;
  id: string;
  decision: Decision;
  entry: QueueEntry;
}

async function decide(
  options: { env: NodeJS.ProcessEnv; id: string; now?: Date },
  make: (found: FoundRequest, now: Date) => Promise<Omit<Decision, "slug" | "id" | "time">>,
): Promise<Decided> {
  const now = options.now ?? new Date();
  const found = await findRequest(options.env, options.id, now);
  checkDecidable(found, now);
  const decision: Decision = {
    slug: found.slug,
    id: found.entry.id,
    time: now.toISOString(),
    ...(await make(found, now)),
  };
  await writeDecision(found.stateDir, decision);
  return { slug: found.slug, id: found.entry.id, decision, entry: found.entry };
}

/** `bot-bottle deny ID [--reason TEXT]`: any pending request, a question included. */
export async function denyRequest(options: {
  env: NodeJS.ProcessEnv;
  id: string;
  reason?: string;
  now?: Date;
}): Promise<Decided> {
  return decide(options, () =>
    Promise.resolve({
      decision: "deny" as const,
      ...(options.reason !== undefined && options.reason !== "" ? { reason: options.reason } : {}),
    }),
  );
}

/** `bot-bottle answer ID TEXT`: a pending question. */
export async function answerRequest(options: {
  env: NodeJS.ProcessEnv;
  id: string;
  text: string;
  now?: Date;
}): Promise<Decided> {
  if (options.text.trim() === "")
    throw new UsageError(
      "the answer is empty",
      "write it as one argument: bot-bottle answer ID TEXT",
    );
  return decide(options, (found) => {
    const { entry, slug } = found;
    if (entry.request.kind !== "question")
      throw new RefusedError(
        `request ${entry.id} of ${slug} asks for ${entry.request.kind === "egress-route" ? "a route" : "a git upstream"}, not an answer`,
        `approve it (bot-bottle approve ${entry.id}) or deny it (bot-bottle deny ${entry.id} --reason TEXT)`,
      );
    return Promise.resolve({ decision: "answer" as const, answer: options.text });
  });
}

/** The lease `--for` gives, in seconds. */
export function leaseSeconds(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined)
    throw new UsageError(
      `--for must be a duration: a whole number and a unit (s, m, h or d), ${DURATION_EXAMPLE}`,
    );
  if (seconds < 1) throw new UsageError("--for 0s would end the grant as it starts", 'e.g. "30m"');
  return seconds;
}

/** What `grantRequest` (lifecycle/grants.ts) is: passed in so tests can supply their own. */
export type Grant = typeof grantRequest;

/**
 * `bot-bottle approve ID [--for DURATION] [--persist]`: a route, or a git repository (with what
 * the operator supplies for it: `git`), is added to the running bottle (by `grant`), then the
 * decision says what was added and until when. A question is answered, not approved.
 */
export async function approveRequest(options: {
  env: NodeJS.ProcessEnv;
  id: string;
  backends: readonly Backend[];
  for?: string;
  persist?: boolean;
  /** For a git repository request: its host key, key file or token variable, its name. */
  git?: GitGrantOptions;
  now?: Date;
  grant?: Grant;
}): Promise<Decided & { until?: string; seconds?: number }> {
  const seconds = options.for !== undefined ? leaseSeconds(options.for) : undefined;
  const grant = options.grant ?? grantRequest;
  let until: string | undefined;
  const decided = await decide(options, async (found, now) => {
    const { entry, slug, stateDir } = found;
    switch (entry.request.kind) {
      case "question":
        throw new RefusedError(
          `request ${entry.id} of ${slug} is a question`,
          `answer it: bot-bottle answer ${entry.id} TEXT`,
        );
      case "git-repo":
      case "egress-route":
        break;
    }
    until =
      seconds !== undefined ? new Date(now.getTime() + seconds * 1000).toISOString() : undefined;
    const applied = await grant({
      slug,
      stateDir,
      env: options.env,
      backends: options.backends,
      request: entry.request,
      id: entry.id,
      ...(until !== undefined ? { until } : {}),
      persist: options.persist ?? false,
      ...(options.git ? { git: options.git } : {}),
    });
    return { decision: "approve" as const, applied, ...(until !== undefined ? { until } : {}) };
  });
  return {
    ...decided,
    ...(until !== undefined ? { until } : {}),
    ...(seconds !== undefined ? { seconds } : {}),
  };
}

/** "for 2h (until 15:31:02 UTC)". */
export function leaseText(seconds: number, until: string): string {
  return `for ${formatDuration(seconds)} (until ${clock(until)})`;
}

function statusCell(e: BottleRequest, now: Date): string {
  if (e.status === "pending") {
    if (e.sent) return `pending (${e.sent} sent)`;
    return `pending (${roughDuration((Date.parse(e.deadline) - now.getTime()) / 1000)} left)`;
  }
  if (e.status === "approved" && e.outcome?.until)
    return `approved until ${e.outcome.until.slice(11, 16)} UTC`;
  return settled(e);
}

/**
 * One request as the cells `requests` prints and the dashboard shows: id, bottle, age, kind,
 * what (with its flags), reason, status — everything the agent wrote escaped by visible().
 */
export function requestCells(e: BottleRequest, now: Date): string[] {
  const flags = e.flags.length ? ` [! ${e.flags.join("; ")}]` : "";
  const reason = e.request.kind === "question" ? "-" : JSON.stringify(e.request.reason);
  return [
    e.id,
    e.slug,
    roughDuration((now.getTime() - Date.parse(e.time)) / 1000),
    e.request.kind,
    visible(describeRequest(e.request) + flags),
    visible(reason),
    statusCell(e, now),
  ];
}
