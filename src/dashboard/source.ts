/**
 * What the dashboard shows, read through the same lifecycle and state calls as `ls`, `requests`
 * and `logs --audit`, and when to read it again: a change in a bottle's audit folder (each
 * sidecar appends there; supervise's requests and decisions are its lines) or a bottle's state
 * dir appearing or going; for what only the engine knows (a bottle stopped from elsewhere, a
 * health check's verdict), the engine's own events (Backend.watch), which a listing follows —
 * one engine call for every bottle, never one per bottle, and none while nothing changes.
 */
import { watch, type FSWatcher } from "node:fs";
import { open } from "node:fs/promises";
import type { Backend } from "../backends/backend.js";
import { listBottles, type BottleSummary } from "../lifecycle/bottles.js";
import { listRequests, type BottleRequest } from "../lifecycle/requests.js";
import {
  AUDIT_SOURCE_NAMES,
  auditFile,
  parseAuditText,
  readAuditTail,
  type AuditEntry,
} from "../state/audit.js";
import { stateRoot } from "../state/paths.js";
import type { BottleRow } from "./model.js";

/** How much of the end of a bottle's egress log is read for its last minute's counts. */
const EGRESS_TAIL_BYTES = 256 * 1024;
/** The audit lines kept for the selected bottle: more than any terminal shows. */
const AUDIT_LINES = 500;
/** How much of the end of each of its audit files is read: well over AUDIT_LINES lines. */
const AUDIT_TAIL_BYTES = 512 * 1024;
/**
 * How often the files are read again with no change seen: the last minute's egress counts age,
 * and an uptime grows.
 */
export const FILES_INTERVAL_MS = 5_000;
/** How often the engine is listed with no event from it: a net under its event stream only. */
export const LISTING_INTERVAL_MS = 60_000;
/** Changes within this long of each other are read once. */
const SETTLE_MS = 100;

/** One bottle's egress log as read so far: where the next read starts, and its recent decisions. */
interface EgressLog {
  /** The file read: a new one (the bottle's state dir made again) is read from its tail. */
  ino: number;
  offset: number;
  /** The end of a line still being written, read again with what follows it. */
  partial: Buffer;
  /**
   * The decisions of the last minute, counted by the second they were made in: a log written
   * however fast costs at most 61 counts to keep.
   */
  seconds: Map<number, { allowed: number; refused: number }>;
}

/**
 * Each bottle's allowed and refused egress decisions of the last minute, kept by reading only
 * what its log gained since the last read (at most its last EGRESS_TAIL_BYTES): a busy bottle's
 * log is not read again from its tail at every change of every bottle.
 */
export class EgressWindow {
  private readonly logs = new Map<string, EgressLog>();
  /** Each log's last read: reads of one log (overlapping refreshes) run one after another. */
  private readonly reading = new Map<string, Promise<unknown>>();

  counts(stateDir: string, now: Date): Promise<{ allowed: number; refused: number }> {
    const after = this.reading.get(stateDir) ?? Promise.resolve();
    const read = after.then(() => this.read(stateDir, now));
    this.reading.set(
      stateDir,
      read.catch(() => undefined),
    );
    return read;
  }

  private async read(stateDir: string, now: Date): Promise<{ allowed: number; refused: number }> {
    const handle = await open(auditFile(stateDir, "egress"), "r").catch(() => undefined);
    if (!handle) {
      this.logs.delete(stateDir);
      return { allowed: 0, refused: 0 };
    }
    try {
      const { size, ino } = await handle.stat();
      let log = this.logs.get(stateDir);
      if (!log || log.ino !== ino || size < log.offset)
        log = { ino, offset: 0, partial: Buffer.alloc(0), seconds: new Map() };
      // A jump longer than the tail: only the tail matters, from its first whole line.
      const jump = size - log.offset > EGRESS_TAIL_BYTES;
      if (jump) {
        log.offset = size - EGRESS_TAIL_BYTES;
        log.partial = Buffer.alloc(0);
        log.seconds.clear();
      }
      if (size > log.offset) {
        const fresh = Buffer.alloc(size - log.offset);
        await handle.read(fresh, 0, fresh.length, log.offset);
        log.offset = size;
        const joined = Buffer.concat([log.partial, fresh]);
        const bytes = jump ? joined.subarray(joined.indexOf(0x0a) + 1) : joined;
        const end = bytes.lastIndexOf(0x0a) + 1;
        log.partial = Buffer.from(bytes.subarray(end));
        for (const r of parseAuditText("egress", bytes.subarray(0, end).toString("utf8"))) {
          const second = Math.floor(Date.parse(r.time) / 1000);
          if (Number.isNaN(second)) continue;
          const count = log.seconds.get(second) ?? { allowed: 0, refused: 0 };
          count[r.decision === "allow" ? "allowed" : "refused"]++;
          log.seconds.set(second, count);
        }
      }
      const first = Math.floor((now.getTime() - 60_000) / 1000);
      const last = Math.floor(now.getTime() / 1000);
      this.logs.set(stateDir, log);
      const counts = { allowed: 0, refused: 0 };
      for (const [second, count] of log.seconds) {
        if (second < first) log.seconds.delete(second);
        else if (second <= last) {
          counts.allowed += count.allowed;
          counts.refused += count.refused;
        }
      }
      return counts;
    } finally {
      await handle.close();
    }
  }

  /** Forgets the bottles not in `stateDirs` (stopped and gone from the listing). */
  keep(stateDirs: readonly string[]): void {
    const kept = new Set(stateDirs);
    for (const dir of this.logs.keys()) if (!kept.has(dir)) this.logs.delete(dir);
    for (const dir of this.reading.keys()) if (!kept.has(dir)) this.reading.delete(dir);
  }
}

export interface DashboardData {
  bottles: BottleRow[];
  requests: BottleRequest[];
}

/**
 * Every bottle with its last minute of egress, and every running bottle's requests. The bottles
 * come from the engine unless `known` gives the last listing: an audit line changes the files,
 * not what the engine runs, so a busy agent does not make the dashboard list the engine anew.
 */
export async function loadData(
  backends: readonly Backend[],
  env: NodeJS.ProcessEnv,
  egress: EgressWindow,
  known?: readonly BottleSummary[],
  now = new Date(),
): Promise<DashboardData> {
  const [summaries, requests] = await Promise.all([
    known ?? listBottles(backends, env),
    listRequests({ env, now }),
  ]);
  egress.keep(summaries.map((s) => s.stateDir));
  const bottles = await Promise.all(
    summaries.map(async (summary) => ({
      summary,
      egress: await egress.counts(summary.stateDir, now),
    })),
  );
  return { bottles, requests };
}

/**
 * The bottle's egress, git and supervise lines in time order, the latest AUDIT_LINES: read from
 * the end of each file, so a long-lived bottle's trail costs no more to show than a new one's.
 */
export async function loadAudit(stateDir: string): Promise<AuditEntry[]> {
  const entries = await readAuditTail(stateDir, AUDIT_SOURCE_NAMES, AUDIT_TAIL_BYTES);
  return entries.slice(-AUDIT_LINES);
}

/**
 * Calls `onChange` (at most once per SETTLE_MS) when a file in one of the watched audit folders
 * changes (`bottles` false) or a state dir comes or goes (`bottles` true: the engine has news
 * too); `watchDirs` replaces the folders watched. Stops at `close`.
 */
export class StateWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private bottles = false;
  private closed = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly onChange: (bottles: boolean) => void,
  ) {
    this.add(stateRoot(env));
  }

  /** Watches these bottles' audit folders (and the state root), and no others. */
  watchDirs(stateDirs: readonly string[]): void {
    const wanted = new Set([stateRoot(this.env), ...stateDirs.map((d) => `${d}/audit`)]);
    for (const [dir, w] of this.watchers)
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    for (const dir of wanted) this.add(dir);
  }

  private add(dir: string): void {
    if (this.closed || this.watchers.has(dir)) return;
    try {
      const root = dir === stateRoot(this.env);
      const w = watch(dir, { persistent: false }, () => this.changed(root));
      // A folder removed under the watch (a bottle cleaned up) ends it; the next listing says so.
      w.on("error", () => {
        w.close();
        this.watchers.delete(dir);
      });
      this.watchers.set(dir, w);
    } catch {
      // Not there yet (a bottle still starting): the listing every few seconds covers it.
    }
  }

  private changed(bottles: boolean): void {
    this.bottles ||= bottles;
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      const news = this.bottles;
      this.timer = undefined;
      this.bottles = false;
      if (!this.closed) this.onChange(news);
    }, SETTLE_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}

/**
 * Which of overlapping reads count. A read of the engine's listing counts when no later listing
 * landed first; a files-only read reuses the last listing and counts only if it is still the
 * last one, and no later files-only read landed, when it ends: a listing that landed meanwhile is
 * never undone by a read that began before it.
 */
export class ReadOrder<Listing> {
  private readonly started = { engine: 0, files: 0 };
  /** The last listing that landed. */
  listing: Listing | undefined;

  /** A read begins: it lists the engine when asked to, or when nothing was listed yet. */
  begin(engine: boolean): {
    known: Listing | undefined;
    counts(): boolean;
    landed(l?: Listing): void;
  } {
    const known = engine ? undefined : this.listing;
    const kind = known === undefined ? "engine" : "files";
    const read = ++this.started[kind];
    const counts = () =>
      read === this.started[kind] && (kind === "engine" || this.listing === known);
    return {
      known,
      counts,
      landed: (l) => {
        if (kind === "engine" && l !== undefined) this.listing = l;
      },
    };
  }
}
