/**
 * Reading the egress audit log (<state dir>/audit/egress.jsonl, written by the bundle): one JSON
 * line per decision. Two views: aligned lines for people, the records themselves for programs.
 */
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { AUDIT_FILE, AuditRecordSchema, type AuditRecord } from "../shared/egress-config.js";

export function auditFile(stateDir: string): string {
  return join(stateDir, "audit", AUDIT_FILE);
}

/** The record on one line; undefined for a line that is not JSON or not an audit record. */
function parse(line: string): AuditRecord | undefined {
  if (!line.startsWith("{")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const result = AuditRecordSchema.safeParse(value);
  return result.success ? result.data : undefined;
}

export function parseAudit(text: string): AuditRecord[] {
  return text
    .split("\n")
    .map(parse)
    .filter((r): r is AuditRecord => r !== undefined);
}

/** The whole log; empty when the bottle has made no request yet. */
export async function readAudit(stateDir: string): Promise<AuditRecord[] | undefined> {
  try {
    return parseAudit(await readFile(auditFile(stateDir), "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

function bytes(n: number): string {
  return n < 10_000
    ? `${n}B`
    : n < 10_000_000
      ? `${Math.round(n / 1000)}kB`
      : `${Math.round(n / 1e6)}MB`;
}

/** For people: "14:31:29.865 allow   GET     api.anthropic.com/v1/messages  200 ↑1.2kB ↓3kB 41ms". */
export function renderAudit(r: AuditRecord): string {
  const clock = r.time.slice(11, 23);
  const where = `${r.host}${r.port && r.port !== 443 && r.port !== 80 ? `:${r.port}` : ""}${r.path}`;
  const head = `${clock} ${r.decision.padEnd(6)} ${r.method.padEnd(7)} ${where}`;
  if (r.decision === "refuse") return `${head}  [${r.tag}] ${r.reason ?? ""}`.trimEnd();
  const status = r.status !== undefined ? ` ${r.status}` : "";
  return `${head}${status} ↑${bytes(r.bytesOut)} ↓${bytes(r.bytesIn)} ${r.ms}ms${r.tag === "allowed" ? "" : ` [${r.tag}]`}`;
}

/** Calls `onRecord` for each record appended after `from` bytes, until `signal` aborts. */
export async function followAudit(
  stateDir: string,
  from: number,
  onRecord: (r: AuditRecord) => void,
  signal: AbortSignal,
  intervalMs = 250,
): Promise<void> {
  let offset = from;
  let partial = "";
  while (!signal.aborted) {
    const handle = await open(auditFile(stateDir), "r").catch(() => undefined);
    if (handle) {
      try {
        const { size } = await handle.stat();
        if (size > offset) {
          const buffer = Buffer.alloc(size - offset);
          await handle.read(buffer, 0, buffer.length, offset);
          offset = size;
          const lines = (partial + buffer.toString("utf8")).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) {
            const record = parse(line);
            if (record) onRecord(record);
          }
        }
      } finally {
        await handle.close();
      }
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
