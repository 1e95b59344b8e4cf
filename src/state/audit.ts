/**
 * Reading the audit trail the bundle writes under <state dir>/audit/: one JSON line per decision,
 * one file per sidecar. Each file is a source — its name, its file, its record schema, and how a
 * person reads one record — and one reader serves them all: a file alone (`logs --egress`,
 * `logs --git`) or every file interleaved in time order (`logs --audit`). Two views: aligned lines
 * for people, the records themselves for programs. A line that is not a record is skipped.
 */
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { z } from "zod";
import { AUDIT_FILE, AuditRecordSchema, type AuditRecord } from "../shared/egress-config.js";
import {
  GIT_AUDIT_FILE,
  GitAuditRecordSchema,
  type GitAuditRecord,
  type GitRefUpdate,
} from "../shared/git-gate-config.js";
import {
  SUPERVISE_AUDIT_FILE,
  SuperviseRecordSchema,
  type RequestBody,
  type SuperviseRecord,
} from "../shared/supervise.js";
import { formatDuration } from "../shared/duration.js";
import { visible } from "../shared/visible.js";

/** One audit file of the bundle: where it is, what a line holds, how a person reads one. */
export interface AuditSource<R> {
  file: string;
  schema: z.ZodType<R>;
  /** The line for people after the clock and the source's name. */
  render: (record: R) => string;
}

function source<R>(file: string, schema: z.ZodType<R>, render: (r: R) => string) {
  return { file, schema, render } satisfies AuditSource<R>;
}

function bytes(n: number): string {
  return n < 10_000
    ? `${n}B`
    : n < 10_000_000
      ? `${Math.round(n / 1000)}kB`
      : `${Math.round(n / 1e6)}MB`;
}

/** "allow   GET     api.anthropic.com/v1/messages  200 ↑1.2kB ↓3kB 41ms". */
function egressLine(r: AuditRecord): string {
  const where = `${r.host}${r.port && r.port !== 443 && r.port !== 80 ? `:${r.port}` : ""}${r.path}`;
  const head = `${r.decision.padEnd(6)} ${r.method.padEnd(7)} ${where}`;
  if (r.decision === "refuse") return `${head}  [${r.tag}] ${r.reason ?? ""}`.trimEnd();
  const status = r.status !== undefined ? ` ${r.status}` : "";
  return `${head}${status} ↑${bytes(r.bytesOut)} ↓${bytes(r.bytesIn)} ${r.ms}ms${r.tag === "allowed" ? "" : ` [${r.tag}]`}`;
}

const short = (id: string) => (/^0+$/.test(id) ? "" : id.slice(0, 7));

/** "refs/heads/main 1a2b3c4→5d6e7f8"; a created ref "+5d6e7f8", a deleted one "1a2b3c4→(deleted)". */
function refUpdate(u: GitRefUpdate): string {
  const from = short(u.old);
  const to = short(u.new);
  return `${u.ref} ${from === "" ? `+${to}` : to === "" ? `${from}→(deleted)` : `${from}→${to}`}`;
}

/**
 * "push  refuse secret-detected app refs/heads/main 1a2b3c4→5d6e7f8  aws-access-token in
 * config.py:3 (commit 5d6e7f8)"; "fetch allow  served app 38ms".
 */
function gitLine(r: GitAuditRecord): string {
  const refs = r.refs?.length ? ` ${r.refs.map(refUpdate).join(", ")}` : "";
  const head = `${r.op.padEnd(5)} ${r.decision.padEnd(6)} ${r.tag} ${r.repo}${refs}`;
  const upstream = r.upstream ? `upstream: ${r.upstream}` : "";
  if (r.decision === "refuse") {
    const f = r.finding;
    const why = f
      ? `${f.rule} in ${f.file}${f.line > 0 ? `:${f.line}` : ""}${f.commit ? ` (commit ${f.commit.slice(0, 7)})` : ""}`
      : (r.reason ?? "");
    return [head, [why, upstream].filter(Boolean).join(" — ")].join("  ").trimEnd();
  }
  const objects = r.objects !== undefined ? ` ${r.objects} objects` : "";
  return `${head}${objects} ${r.ms}ms${upstream ? `  ${upstream}` : ""}`;
}

/**
 * What a request asks for, in one line: "api.example.com:8443 GET,POST /v1/ /v2/" (a route;
 * "any method", "any path" where it names none), the upstream, or the question (quoted).
 * The agent's text: show it through visible().
 */
export function describeRequest(r: RequestBody): string {
  switch (r.kind) {
    case "egress-route":
      return [
        `${r.host}${r.port !== undefined ? `:${r.port}` : ""}`,
        r.methods ? r.methods.join(",") : "any method",
        ...(r.paths ?? ["any path"]),
      ].join(" ");
    case "git-repo":
      return r.upstream;
    case "question":
      return JSON.stringify(r.question);
  }
}

/** "1h" for an approval's lease from `time` to `until` (to the minute beyond two minutes). */
function lease(time: string, until: string): string {
  const seconds = (Date.parse(until) - Date.parse(time)) / 1000;
  if (Number.isNaN(seconds)) return `until ${until}`;
  return `for ${formatDuration(seconds > 120 ? Math.round(seconds / 60) * 60 : seconds)}`;
}

/**
 * 'request r-7k2m9x4p0q egress-route api.example.com GET /v1/ "reason" [mixed-script host name]',
 * "decided r-7k2m9x4p0q approved for 1h by operator (api.example.com GET /v1/)",
 * "refused request_egress_route: <reason>", "expired r-7k2m9x4p0q (api.example.com GET /v1/)".
 */
function superviseLine(r: SuperviseRecord): string {
  switch (r.event) {
    case "request": {
      const reason = r.request.kind === "question" ? "" : ` ${JSON.stringify(r.request.reason)}`;
      const flags = r.flags.length ? ` [${r.flags.join("; ")}]` : "";
      return `request ${r.id} ${r.request.kind} ${describeRequest(r.request)}${reason}${flags}`;
    }
    case "refused":
      return `refused ${r.kind}: ${r.reason}`;
    case "decided": {
      const head = `decided ${r.id} ${r.outcome}`;
      const until = r.until ? ` ${lease(r.time, r.until)}` : "";
      const why =
        r.reason !== undefined
          ? `: ${r.reason}`
          : r.answer !== undefined
            ? `: ${JSON.stringify(r.answer)}`
            : "";
      const applied = r.applied ? ` (${r.applied})` : "";
      return `${head}${until} by ${r.by}${applied}${why}`;
    }
    case "expired":
      return `expired ${r.id}${r.applied ? ` (${r.applied})` : ""}`;
  }
}

/**
 * Every audit file, in the order ties in time are shown. A new sidecar's trail is one line here
 * (its file, its schema in shared/, its line for people); its name becomes `source` in --json.
 */
export const AUDIT_SOURCES = {
  egress: source(AUDIT_FILE, AuditRecordSchema, egressLine),
  git: source(GIT_AUDIT_FILE, GitAuditRecordSchema, gitLine),
  supervise: source(SUPERVISE_AUDIT_FILE, SuperviseRecordSchema, superviseLine),
};

export type AuditSourceName = keyof typeof AUDIT_SOURCES;
type RecordOf<S extends AuditSourceName> =
  (typeof AUDIT_SOURCES)[S] extends AuditSource<infer R> ? R : never;
/** One record and the file it came from. */
export type AuditEntry = {
  [S in AuditSourceName]: { source: S; record: RecordOf<S> };
}[AuditSourceName];

export const AUDIT_SOURCE_NAMES = Object.keys(AUDIT_SOURCES) as AuditSourceName[];
/** The source column fits "egress" and "git"; a longer name (supervise) pushes its own line. */
const NAME_WIDTH = "egress".length;

export function auditFile(stateDir: string, name: AuditSourceName = "egress"): string {
  return join(stateDir, "audit", AUDIT_SOURCES[name].file);
}

/** The record on one line; undefined for a line that is not JSON or not a record of `schema`. */
function parseLine<R>(line: string, schema: z.ZodType<R>): R | undefined {
  if (!line.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

function entriesOf(name: AuditSourceName, lines: readonly string[]): AuditEntry[] {
  const { schema } = AUDIT_SOURCES[name] as AuditSource<unknown>;
  const out: AuditEntry[] = [];
  for (const line of lines) {
    const record = parseLine(line, schema);
    if (record !== undefined) out.push({ source: name, record } as AuditEntry);
  }
  return out;
}

/** The records of one source's text; lines that are not records are skipped. */
export function parseAuditText<S extends AuditSourceName>(name: S, text: string): RecordOf<S>[] {
  return entriesOf(name, text.split("\n")).map((e) => e.record as RecordOf<S>);
}

/** The egress records of a text. */
export function parseAudit(text: string): AuditRecord[] {
  return parseAuditText("egress", text);
}

/** Time order; entries at the same instant keep their order (the sources', then the files'). */
export function byTime(entries: readonly AuditEntry[]): AuditEntry[] {
  return entries
    .map((entry, i) => ({ entry, i, t: Date.parse(entry.record.time) }))
    .sort((a, b) => a.t - b.t || a.i - b.i)
    .map((x) => x.entry);
}

function clock(time: string): string {
  const t = Date.parse(time);
  return Number.isNaN(t) ? time : new Date(t).toISOString().slice(11, 23);
}

/** For people, in a single source's view: "14:31:29.865 allow  GET …" (no source column). */
export function renderAudit(r: AuditRecord): string {
  return `${clock(r.time)} ${visible(egressLine(r))}`;
}

/** For people, with the source: "14:31:29.865 git    push  refuse secret-detected app …". */
export function renderAuditEntry(e: AuditEntry): string {
  const body = (AUDIT_SOURCES[e.source] as AuditSource<unknown>).render(e.record);
  // Paths, file names and reasons can be the agent's own text.
  return `${clock(e.record.time)} ${e.source.padEnd(NAME_WIDTH)} ${visible(body)}`;
}

export function renderGitAudit(r: GitAuditRecord): string {
  return renderAuditEntry({ source: "git", record: r });
}

/** For programs reading several sources: the record with the file it came from. */
export function auditEntryJson(e: AuditEntry): string {
  return JSON.stringify({ source: e.source, ...e.record });
}

/** What a read found, and where each file's complete lines end (to follow from). */
export interface AuditRead {
  entries: AuditEntry[];
  offsets: Map<AuditSourceName, number>;
}

/**
 * The records of the named sources, in time order. A missing file has none yet. A last line
 * without its newline is still being written: it is left for `followAudit`.
 */
export async function readAuditTrail(
  stateDir: string,
  names: readonly AuditSourceName[],
): Promise<AuditRead> {
  const offsets = new Map<AuditSourceName, number>();
  const entries: AuditEntry[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = await readFile(auditFile(stateDir, name), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      text = "";
    }
    const complete = text.slice(0, text.lastIndexOf("\n") + 1);
    offsets.set(name, Buffer.byteLength(complete));
    entries.push(...entriesOf(name, complete.split("\n")));
  }
  return { entries: byTime(entries), offsets };
}

/**
 * The records in the last `bytes` of each named source, in time order: what a screen of the
 * latest lines needs, read in time that does not grow with the files. A line cut at the start
 * of the window, or still being written at its end, is left out.
 */
export async function readAuditTail(
  stateDir: string,
  names: readonly AuditSourceName[],
  bytes: number,
): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for (const name of names) {
    const handle = await open(auditFile(stateDir, name), "r").catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    });
    if (!handle) continue;
    try {
      const { size } = await handle.stat();
      const from = Math.max(0, size - Math.floor(bytes));
      const buffer = Buffer.alloc(size - from);
      await handle.read(buffer, 0, buffer.length, from);
      const start = from > 0 ? buffer.indexOf(0x0a) + 1 : 0;
      const end = buffer.lastIndexOf(0x0a) + 1;
      if (start === 0 && from > 0) continue; // no whole line in the window
      const text = buffer.subarray(start, Math.max(start, end)).toString("utf8");
      entries.push(...entriesOf(name, text.split("\n")));
    } finally {
      await handle.close();
    }
  }
  return byTime(entries);
}

/**
 * Calls `onEntry` for each record appended to the named sources after `offsets` (0 where
 * absent), until `signal` aborts. Each poll's new records across files are handed over in time
 * order. A file that shrank was replaced: it is read again from its start.
 */
export async function followAudit(
  stateDir: string,
  names: readonly AuditSourceName[],
  offsets: ReadonlyMap<AuditSourceName, number>,
  onEntry: (e: AuditEntry) => void,
  signal: AbortSignal,
  intervalMs = 250,
): Promise<void> {
  const state = new Map(
    names.map((n) => [n, { offset: offsets.get(n) ?? 0, partial: Buffer.alloc(0) }]),
  );
  while (!signal.aborted) {
    const batch: AuditEntry[] = [];
    for (const [name, file] of state) {
      const handle = await open(auditFile(stateDir, name), "r").catch(() => undefined);
      if (!handle) continue;
      try {
        const { size } = await handle.stat();
        if (size < file.offset) Object.assign(file, { offset: 0, partial: Buffer.alloc(0) });
        if (size > file.offset) {
          const buffer = Buffer.alloc(size - file.offset);
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, file.offset);
          file.offset += bytesRead;
          // Split on the newline byte, which never occurs inside a multi-byte character: a read
          // that ends mid-character keeps the character's start for the next one.
          const data = Buffer.concat([file.partial, buffer.subarray(0, bytesRead)]);
          const end = data.lastIndexOf(0x0a) + 1;
          file.partial = data.subarray(end);
          batch.push(...entriesOf(name, data.subarray(0, end).toString("utf8").split("\n")));
        }
      } finally {
        await handle.close();
      }
    }
    for (const entry of byTime(batch)) onEntry(entry);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
