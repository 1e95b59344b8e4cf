/**
 * bench/dashboard: what one refresh of the dashboard's files costs with many busy bottles — each
 * bottle's egress counts of the last minute and the selected bottle's trail — as the dashboard
 * reads them (only what each log gained, the ends of the trail's files) against reading every
 * log's last 256 KiB again and the whole trail at each refresh, on the same files in this run.
 * Prints figures; never passes or fails.
 *   npm run bench:dashboard [-- --bottles N --lines-per-refresh M --refreshes R]
 */
import { appendFile, mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { EgressWindow, loadAudit } from "../src/dashboard/source.js";
import {
  AUDIT_SOURCE_NAMES,
  auditFile,
  parseAuditText,
  readAuditTrail,
} from "../src/state/audit.js";

const { values } = parseArgs({
  options: {
    bottles: { type: "string", default: "50" },
    "log-mib": { type: "string", default: "20" },
    "lines-per-refresh": { type: "string", default: "20" },
    refreshes: { type: "string", default: "30" },
  },
});
const BOTTLES = Number(values.bottles);
const LOG_MIB = Number(values["log-mib"]);
const LINES = Number(values["lines-per-refresh"]);
const REFRESHES = Number(values.refreshes);
const TAIL_BYTES = 256 * 1024;

function record(time: Date, i: number): string {
  return `${JSON.stringify({
    time: time.toISOString(),
    kind: "https",
    method: "POST",
    host: "api.anthropic.com",
    port: 443,
    path: `/v1/messages?n=${i}`,
    decision: i % 7 === 0 ? "refuse" : "allow",
    tag: i % 7 === 0 ? "not-in-routes" : "allowed",
    route: "api.anthropic.com",
    status: 200,
    bytesOut: 1200,
    bytesIn: 34_000,
    ms: 41.2,
  })}\n`;
}

/** The baseline: each log's last 256 KiB read and parsed again (what a refresh did before). */
async function tailCounts(stateDir: string, now: Date): Promise<number> {
  const handle = await open(auditFile(stateDir, "egress"), "r");
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const text = buffer.toString("utf8");
    const from = size > length ? text.indexOf("\n") + 1 : 0;
    const since = now.getTime() - 60_000;
    return parseAuditText("egress", text.slice(from)).filter((r) => Date.parse(r.time) >= since)
      .length;
  } finally {
    await handle.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "bot-bottle-bench-dashboard-"));
  try {
    const dirs: string[] = [];
    const line = record(new Date(), 0);
    const filler = line.repeat(Math.ceil((LOG_MIB * 1024 * 1024) / line.length));
    for (let b = 0; b < BOTTLES; b++) {
      const dir = join(root, `bottle-${b}`);
      await mkdir(join(dir, "audit"), { recursive: true });
      await writeFile(auditFile(dir, "egress"), filler);
      dirs.push(dir);
    }
    console.log(
      `${BOTTLES} bottles, each egress log ${LOG_MIB} MiB; per refresh every bottle gains ${LINES} lines; ${REFRESHES} refreshes`,
    );

    const window = new EgressWindow();
    for (const d of dirs) await window.counts(d, new Date()); // the dashboard's first read
    const ours: number[] = [];
    const baseline: number[] = [];
    const trailOurs: number[] = [];
    const trailBaseline: number[] = [];
    let n = 1;
    for (let r = 0; r < REFRESHES; r++) {
      const now = new Date();
      let text = "";
      for (let i = 0; i < LINES; i++) text += record(now, n++);
      for (const d of dirs) await appendFile(auditFile(d, "egress"), text);

      let t = process.hrtime.bigint();
      await Promise.all(dirs.map((d) => window.counts(d, now)));
      ours.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      await Promise.all(dirs.map((d) => tailCounts(d, now)));
      baseline.push(Number(process.hrtime.bigint() - t) / 1e6);

      const selected = dirs[0] as string;
      t = process.hrtime.bigint();
      await loadAudit(selected);
      trailOurs.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      const whole = await readAuditTrail(selected, AUDIT_SOURCE_NAMES);
      whole.entries.slice(-500);
      trailBaseline.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const row = (what: string, a: number[], b: number[]) =>
      console.log(
        `${what.padEnd(58)} ${median(a).toFixed(1).padStart(8)} ms  baseline ${median(b).toFixed(1).padStart(8)} ms  ${(median(b) / median(a)).toFixed(1)}× less`,
      );
    console.log("median per refresh:");
    row(`egress counts of ${BOTTLES} bottles (what the logs gained)`, ours, baseline);
    row("the selected bottle's trail (ends of its files)", trailOurs, trailBaseline);
    console.log(
      "baselines: every log's last 256 KiB read and parsed again; the selected bottle's whole trail read",
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
