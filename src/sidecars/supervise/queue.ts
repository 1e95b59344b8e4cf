/**
 * The bundle's side of the request queue: every request the agent makes, refused or waiting, and
 * what became of it, as lines of audit/supervise.jsonl (the host reads them to show the queue).
 * Decisions arrive only as files the host writes into the bundle's read-only decisions folder,
 * polled every 250 ms; each counts once, and only for a request of this bottle still waiting
 * here. Fail closed: operator silence until the deadline denies (timeout), a restart denies
 * every request still waiting (restart), and nothing is ever approved but by a decision file.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { visible } from "../../shared/visible.js";
import {
  parseDecision,
  SuperviseRecordSchema,
  type Decision,
  type RequestBody,
  type SuperviseConfig,
  type SuperviseRecord,
} from "../../shared/supervise.js";
import type { Logger } from "../log.js";
import {
  decidedResult,
  describeRequest,
  expiredResult,
  pendingResult,
  refusedResult,
} from "./results.js";

type Decided = Extract<SuperviseRecord, { event: "decided" }>;

export interface QueueOptions {
  config: SuperviseConfig;
  /** audit/supervise.jsonl: read at start, appended to after. */
  auditFile: string;
  /** The folder the host writes `<id>.json` decisions into. */
  decisionsDir: string;
  log: Logger;
  /** How often the decisions folder is read while a request waits (ms); never while none does. */
  pollMs?: number;
}

interface Entry {
  id: string;
  body: RequestBody;
  /** While it waits: the key equal requests share. */
  key: string;
  decided?: Decided;
  expired: boolean;
  waiters: Set<() => void>;
  timers: Set<NodeJS.Timeout>;
}

const DECISION_FILE = /^(r-[a-z0-9]{10})\.json$/;
/** The longest delay setTimeout takes; later times are reached in steps. */
const MAX_DELAY = 2 ** 31 - 1;
/** How much of a refused input the audit line keeps. */
const MAX_INPUT = 4000;
const MINUTE = 60_000;

/** Requests equal but for their reason share a key (and so an id while one waits). */
function requestKey(body: RequestBody): string {
  const sorted = (values: readonly string[] | undefined) => (values ? [...values].sort() : null);
  switch (body.kind) {
    case "egress-route":
      return JSON.stringify([
        body.kind,
        body.host,
        body.port ?? null,
        sorted(body.paths),
        sorted(body.methods),
      ]);
    case "git-repo":
      return JSON.stringify([body.kind, body.upstream]);
    case "question":
      return JSON.stringify([body.kind, body.question]);
  }
}

/** The outcome a decision gives a request of this kind; undefined when it does not fit. */
function outcomeOf(body: RequestBody, decision: Decision): Decided["outcome"] | undefined {
  if (decision.decision === "deny") return "denied";
  if (body.kind === "question")
    return decision.decision === "answer" && decision.answer !== undefined ? "answered" : undefined;
  return decision.decision === "approve" ? "approved" : undefined;
}

function newId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return "r-" + [...randomBytes(10)].map((b) => alphabet[b % alphabet.length]).join("");
}

export class RequestQueue {
  private readonly entries = new Map<string, Entry>();
  /** Waiting requests by key. */
  private readonly waiting = new Map<string, Entry>();
  /** When each of the last minute's new requests was made. */
  private recent: number[] = [];
  /** Decision files already read or reported (name, inode, size, time): each counts once. */
  private readonly seen = new Set<string>();
  private readonly reported = new Set<string>();
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: QueueOptions) {}

  private get config(): SuperviseConfig {
    return this.options.config;
  }

  private get log(): Logger {
    return this.options.log;
  }

  /**
   * Reads what earlier runs recorded: a request still waiting is denied (restart), a lease still
   * running gets its expiry back.
   */
  open(): void {
    mkdirSync(dirname(this.options.auditFile), { recursive: true });
    let text = "";
    try {
      text = readFileSync(this.options.auditFile, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    let unreadable = 0;
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      let parsed;
      try {
        parsed = SuperviseRecordSchema.safeParse(JSON.parse(line));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) {
        unreadable++;
        continue;
      }
      const record = parsed.data;
      if (record.event === "request")
        this.entries.set(record.id, {
          id: record.id,
          body: record.request,
          key: requestKey(record.request),
          expired: false,
          waiters: new Set(),
          timers: new Set(),
        });
      else if (record.event === "decided") {
        const entry = this.entries.get(record.id);
        if (entry && !entry.decided) entry.decided = record;
      } else if (record.event === "expired") {
        const entry = this.entries.get(record.id);
        if (entry) entry.expired = true;
      }
    }
    if (unreadable > 0)
      this.log("audit-unreadable", `skipped ${unreadable} unreadable line(s) of the audit log`, {
        lines: unreadable,
      });
    let denied = 0;
    for (const entry of this.entries.values()) {
      if (!entry.decided) {
        this.settle(entry, { outcome: "denied", by: "restart" });
        denied++;
      } else if (entry.decided.until !== undefined && !entry.expired) this.scheduleExpiry(entry);
    }
    if (denied > 0)
      this.log(
        "restart-denied",
        `${denied} request(s) left waiting by an earlier run denied (restart)`,
        { requests: denied },
      );
    // Decision files already there decide nothing: every request they could name is decided.
    for (const file of this.decisionFiles()) this.seen.add(file.identity);
  }

  /**
   * The decisions folder is read only while a request waits: an idle bottle's supervise wakes for
   * nothing (50 idle bottles polling four times a second cost a tenth of a core).
   */
  private pollWhileWaiting(): void {
    if (this.waiting.size > 0 && this.poller === undefined && !this.closed) {
      this.poller = setInterval(() => this.poll(), this.options.pollMs ?? 250);
      this.poller.unref();
    } else if (this.waiting.size === 0 && this.poller !== undefined) {
      clearInterval(this.poller);
      this.poller = undefined;
    }
  }

  close(): void {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    for (const entry of this.entries.values()) {
      for (const timer of entry.timers) clearTimeout(timer);
      entry.timers.clear();
      this.wake(entry);
    }
  }

  /** Records a refusal (validation, rate limit) and returns the agent's result. */
  refuse(tool: string, reason: string, input: unknown): string {
    let json = JSON.stringify(input ?? null) ?? "null";
    if (json.length > MAX_INPUT) json = `${json.slice(0, MAX_INPUT)}…`;
    try {
      this.append({
        time: new Date().toISOString(),
        event: "refused",
        kind: tool,
        reason,
        input: json,
      });
    } catch {
      // Logged by append; the refusal stands either way.
    }
    this.log("refused", `refused ${tool}: ${visible(reason)}`, { tool });
    return refusedResult(reason);
  }

  /**
   * A validated request: the id of an equal one still waiting, or a new one (recorded), or a
   * refusal when the agent has asked too often in the last minute.
   */
  submit(
    body: RequestBody,
    flags: readonly string[],
    tool: string,
    input: unknown,
  ): { id: string } | { result: string } {
    if (this.closed) return { result: refusedResult("the supervise server is stopping") };
    const key = requestKey(body);
    const same = this.waiting.get(key);
    if (same) {
      this.log("coalesced", `an equal request joins ${same.id}`, { id: same.id });
      return { id: same.id };
    }
    const now = Date.now();
    this.recent = this.recent.filter((t) => t > now - MINUTE);
    if (this.recent.length >= this.config.ratePerMinute)
      return {
        result: this.refuse(
          tool,
          `rate limit: at most ${this.config.ratePerMinute} new requests a minute — wait, or check on earlier ones with request_status`,
          input,
        ),
      };
    let id = newId();
    while (this.entries.has(id)) id = newId();
    const deadline = now + this.config.timeoutSeconds * 1000;
    try {
      this.append({
        time: new Date(now).toISOString(),
        event: "request",
        id,
        request: body,
        deadline: new Date(deadline).toISOString(),
        flags: [...flags],
      });
    } catch {
      return { result: refusedResult("the request could not be recorded; try again later") };
    }
    this.recent.push(now);
    const entry: Entry = { id, body, key, expired: false, waiters: new Set(), timers: new Set() };
    this.entries.set(id, entry);
    this.waiting.set(key, entry);
    this.pollWhileWaiting();
    this.at(entry, deadline, () => this.settle(entry, { outcome: "denied", by: "timeout" }));
    this.log("request", `request ${id}: ${visible(describeRequest(body))}`, {
      id,
      kind: body.kind,
      ...(flags.length ? { flags } : {}),
    });
    return { id };
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** Resolves when the request is decided, after `ms`, or when `signal` aborts (never rejects). */
  wait(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry || entry.decided || ms <= 0 || signal?.aborted || this.closed)
      return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        entry.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      entry.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** The one-line state of a request, as the agent is told it. */
  result(id: string): string {
    const entry = this.entries.get(id);
    if (!entry) return refusedResult(`there is no request ${id} in this bottle`);
    if (!entry.decided) return pendingResult(id);
    if (entry.expired) return expiredResult(entry.decided, entry.body);
    return decidedResult(entry.decided, entry.body);
  }

  /** Reads the decisions folder for requests waiting here. */
  poll(): void {
    if (this.closed || this.waiting.size === 0) return;
    for (const { name, id, file, identity } of this.decisionFiles()) {
      // Read once: neither a re-read nor a second file with the same content decides again.
      if (this.seen.has(identity)) continue;
      this.seen.add(identity);
      const entry = this.entries.get(id);
      if (!entry) {
        this.ignore(name, "no request of this bottle has that id");
        continue;
      }
      if (entry.decided) {
        this.ignore(name, `request ${id} was already decided (${entry.decided.by})`);
        continue;
      }
      let decision: Decision;
      try {
        decision = parseDecision(readFileSync(file, "utf8"), `decisions/${name}`);
      } catch (err) {
        this.ignore(name, err instanceof Error ? err.message : String(err));
        continue;
      }
      if (decision.slug !== this.config.slug) {
        this.ignore(name, "it is for another bottle");
        continue;
      }
      if (decision.id !== id) {
        this.ignore(name, "the id inside is not the file's");
        continue;
      }
      const outcome = outcomeOf(entry.body, decision);
      if (outcome === undefined) {
        this.ignore(name, `"${decision.decision}" does not decide a ${entry.body.kind} request`);
        continue;
      }
      this.settle(
        entry,
        {
          outcome,
          by: "operator",
          ...(outcome === "approved" && decision.until !== undefined
            ? { until: decision.until }
            : {}),
          ...(outcome === "approved" && decision.applied !== undefined
            ? { applied: decision.applied }
            : {}),
          ...(outcome === "denied" && decision.reason !== undefined
            ? { reason: decision.reason }
            : {}),
          ...(outcome === "answered" ? { answer: decision.answer ?? "" } : {}),
        },
        decision.time,
      );
    }
  }

  /** The decisions folder's `<id>.json` files, each with what tells one version from another. */
  private decisionFiles(): { name: string; id: string; file: string; identity: string }[] {
    const dir = this.options.decisionsDir;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      if (code !== "ENOENT") this.reportOnce(`dir:${code}`, `cannot read ${dir}: ${code}`);
      return [];
    }
    return names.flatMap((name) => {
      const id = DECISION_FILE.exec(name)?.[1];
      if (id === undefined) return [];
      const file = join(dir, name);
      try {
        const st = statSync(file);
        if (!st.isFile()) return [];
        return [{ name, id, file, identity: `${name}:${st.ino}:${st.size}:${st.mtimeMs}` }];
      } catch {
        return [];
      }
    });
  }

  /**
   * Decides a waiting request: recorded, its waiters woken, its lease scheduled. `time`: when it
   * was decided — the operator's decision carries its own, so a lease reads as granted
   * ("approved for 1h") however long the file took to be read.
   */
  private settle(
    entry: Entry,
    decided: Omit<Decided, "time" | "event" | "id">,
    time = new Date().toISOString(),
  ): void {
    if (entry.decided) return;
    const record: Decided = {
      time,
      event: "decided",
      id: entry.id,
      ...decided,
    };
    try {
      this.append(record);
    } catch {
      // Logged by append. The decision stands: the host has applied it already.
    }
    entry.decided = record;
    if (this.waiting.get(entry.key) === entry) this.waiting.delete(entry.key);
    this.pollWhileWaiting();
    for (const timer of entry.timers) clearTimeout(timer);
    entry.timers.clear();
    this.log("decided", `request ${entry.id} ${record.outcome} by ${record.by}`, {
      id: entry.id,
      outcome: record.outcome,
      by: record.by,
      ...(record.until !== undefined ? { until: record.until } : {}),
    });
    if (record.until !== undefined) this.scheduleExpiry(entry);
    this.wake(entry);
  }

  /** At an approval's `until`: the second line of its lease in the audit trail. */
  private scheduleExpiry(entry: Entry): void {
    const until = entry.decided?.until;
    if (until === undefined) return;
    this.at(entry, Date.parse(until), () => {
      entry.expired = true;
      try {
        this.append({
          time: new Date().toISOString(),
          event: "expired",
          id: entry.id,
          ...(entry.decided?.applied !== undefined ? { applied: entry.decided.applied } : {}),
        });
      } catch {
        // Logged by append.
      }
      this.log("expired", `the approval of request ${entry.id} has expired`, { id: entry.id });
    });
  }

  /** Runs `fn` at `time` (or now, if it has passed), unless the queue closes first. */
  private at(entry: Entry, time: number, fn: () => void): void {
    if (this.closed) return;
    const delay = time - Date.now();
    const timer = setTimeout(
      () => {
        entry.timers.delete(timer);
        if (delay > MAX_DELAY) this.at(entry, time, fn);
        else fn();
      },
      Math.max(0, Math.min(delay, MAX_DELAY)),
    );
    timer.unref();
    entry.timers.add(timer);
  }

  private wake(entry: Entry): void {
    for (const waiter of [...entry.waiters]) waiter();
  }

  private append(record: SuperviseRecord): void {
    const checked = SuperviseRecordSchema.safeParse(record);
    try {
      if (!checked.success) throw new Error("the record does not match its schema");
      appendFileSync(this.options.auditFile, JSON.stringify(checked.data) + "\n", { mode: 0o644 });
    } catch (err) {
      this.log("audit-failed", `could not record a ${record.event} line: ${String(err)}`, {
        event: record.event,
      });
      throw err;
    }
  }

  private ignore(name: string, why: string): void {
    this.log("decision-ignored", `decisions/${name} ignored: ${visible(why)}`, { file: name });
  }

  private reportOnce(key: string, message: string): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.log("decisions-unreadable", message);
  }
}
