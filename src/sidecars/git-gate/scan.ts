/**
 * The secret scan of a push: exactly the objects the push brings — everything reachable from the
 * pushed tips and not from the mirror's refs (the upstream's, just refreshed). Every new blob is
 * written out whole, streamed to disk, under a neutral name (files added and removed within the
 * push included; gitleaks skips some paths whatever they hold, so a finding is mapped back to the
 * pushed path), with every new commit and tag object (messages, author and committer) and the
 * ref names beside them; then gitleaks (its own rules only: the folder it scans holds no pushed
 * .gitleaks.toml or .gitleaksignore, and "gitleaks:allow" is defused) and the egress scanner (the
 * exact values of every secret the bundle holds, in every encoding, and credential shapes) read
 * the lot. Bytes that would make a tool call a file binary are blanked, lengths and lines kept.
 */
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { GitRefUpdate } from "../../shared/git-gate-config.js";
import { SecretScanner, type HeldSecret } from "../dlp.js";
import { git, runCommand, ZERO } from "./gate.js";

export interface PushFinding {
  rule: string;
  file: string;
  line: number;
  commit?: string;
}

export type ScanResult =
  | { ok: true; objects: number }
  | { ok: false; tag: "secret-detected"; finding: PushFinding; objects: number }
  | { ok: false; tag: "limit" | "scan-failed"; reason: string; objects: number };

interface Entry {
  /** What a finding in this corpus file is reported as. */
  file: string;
  commit?: string;
  blob?: string;
}

/** Longest text the defusing rewrites, less one: what a chunk keeps back for the next. */
const DEFUSE_CARRY = "gitleaks:allow".length - 1;

/**
 * "gitleaks:allow" spelled so it allows nothing, and NUL (which makes a tool call a file binary)
 * as a space: the same length, so every line and column holds.
 */
function defuse(text: string): string {
  return text.replace(/gitleaks:allow/gi, "gitleaks-allow").replace(/\0/g, " ");
}

/** Every file of the corpus starts with this line, which lines are counted without. */
const LEAD = "\n";

/** Reads a file in windows: memory stays one window however large the file. */
const READ_WINDOW = 1024 * 1024;

/**
 * The first finding of `scanner` in the file at `path`, read in windows (the scanner keeps the
 * overlap a secret needs to be found across two), with the line it is on; undefined: clean. It
 * yields between windows, so the gate's daemon keeps answering other hooks during a long scan.
 */
async function scanFile(
  path: string,
  scanner: SecretScanner,
): Promise<{ rule: string; kind: string; line: number } | undefined> {
  const stream = scanner.stream(new Set());
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(READ_WINDOW);
  let newlines = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, READ_WINDOW, null);
      if (n === 0) return undefined;
      const chunk = buffer.subarray(0, n);
      const { finding } = stream.push(chunk);
      if (finding) {
        const lines = chunk.toString("latin1").split("\n");
        const at = lines.findIndex((l) => scanner.scan(l, new Set()) !== undefined);
        const line = newlines + (at < 0 ? 1 : at + 1) - LEAD.length;
        return { rule: finding.name, kind: finding.kind, line: Math.max(line, 0) };
      }
      for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) newlines++;
      if (n === READ_WINDOW) await new Promise((r) => setImmediate(r));
    }
  } finally {
    closeSync(fd);
  }
}

export async function scanPush(options: {
  mirror: string;
  updates: readonly GitRefUpdate[];
  secrets: readonly HeldSecret[];
  maxObjects: number;
  /** Most bytes the new objects may come to, inflated. */
  maxScanBytes: number;
  timeoutMs: number;
  /** The quarantine environment receive-pack gave the hook: the pushed objects are there. */
  env: NodeJS.ProcessEnv;
  gitleaks?: string;
  /** Where the scan writes the new objects out: on disk, not the bundle's memory-backed /tmp. */
  workDir?: string;
}): Promise<ScanResult> {
  const { mirror, updates, env } = options;
  const deadline = Date.now() + options.timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  const tips = updates.filter((u) => !ZERO.test(u.new)).map((u) => u.new);
  if (tips.length === 0) return { ok: true, objects: 0 };
  const listed = await git(mirror, ["rev-list", "--objects", "--stdin", "--not", "--all"], {
    env,
    input: tips.join("\n") + "\n",
    timeoutMs: left(),
  });
  if (listed.timedOut)
    return { ok: false, tag: "limit", reason: "the scan took longer than its limit", objects: 0 };
  if (listed.code !== 0)
    return {
      ok: false,
      tag: "scan-failed",
      reason: listed.stderr.trim() || "rev-list failed",
      objects: 0,
    };
  // New tag objects are listed too (a pushed annotated tag on a published commit included).
  const rows = listed.stdout.split("\n").filter(Boolean);
  if (rows.length > options.maxObjects)
    return {
      ok: false,
      tag: "limit",
      reason: `the push brings ${rows.length} new objects, more than the ${options.maxObjects} this gate scans`,
      objects: rows.length,
    };
  const paths = new Map<string, string>();
  for (const row of rows) {
    const space = row.indexOf(" ");
    paths.set(space < 0 ? row : row.slice(0, space), space < 0 ? "" : row.slice(space + 1));
  }
  const checked = await git(mirror, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], {
    env,
    input: [...paths.keys()].join("\n") + "\n",
    timeoutMs: left(),
  });
  if (checked.timedOut)
    return { ok: false, tag: "limit", reason: "the scan took longer than its limit", objects: 0 };
  if (checked.code !== 0)
    return {
      ok: false,
      tag: "scan-failed",
      reason: "could not read the pushed objects",
      objects: 0,
    };
  const types = new Map<string, string>();
  for (const line of checked.stdout.split("\n")) {
    const [id, type] = line.split(" ");
    if (id && type && paths.has(id)) types.set(id, type);
  }
  const objects = types.size;

  /** A finding, with the pushed commit that brought its blob when that can be told. */
  const located = async (entry: Entry, rule: string, line: number): Promise<PushFinding> => {
    let commit = entry.commit;
    if (!commit && entry.blob) {
      const log = await git(
        mirror,
        ["log", "--format=%H", `--find-object=${entry.blob}`, ...tips, "--not", "--all"],
        { env, timeoutMs: 5000 },
      );
      commit = log.stdout.split("\n").filter(Boolean).pop();
    }
    return { rule, file: entry.file, line, ...(commit ? { commit } : {}) };
  };

  const workDir = options.workDir ?? tmpdir();
  mkdirSync(workDir, { recursive: true });
  const root = mkdtempSync(join(workDir, "git-gate-scan-"));
  const corpus = join(root, "pushed");
  const entries = new Map<string, Entry>();
  try {
    mkdirSync(corpus);
    const files = new Map<string, string>();
    const place = (rel: string, entry: Entry) => {
      const target = join(corpus, rel);
      mkdirSync(dirname(target), { recursive: true });
      entries.set(rel, entry);
      return target;
    };
    let n = 0;
    for (const [id, type] of types) {
      const path = paths.get(id) ?? "";
      if (type === "blob")
        // A neutral name: gitleaks skips some paths (vendor/, *.pdf, …) whatever they hold.
        files.set(id, place(join("blobs", String(n++)), { file: path || id, blob: id }));
      else if (type === "commit")
        files.set(
          id,
          place(join("commits", id), {
            file: `commit ${id.slice(0, 12)} (message and author)`,
            commit: id,
          }),
        );
      else if (type === "tag")
        files.set(id, place(join("tags", id), { file: `tag object ${id.slice(0, 12)}` }));
    }
    const written = await writeObjects(mirror, files, env, left(), options.maxScanBytes);
    if (!written.ok) return { ok: false, tag: written.tag, reason: written.reason, objects };
    writeFileSync(
      place("refs", { file: "the pushed ref names" }),
      LEAD + defuse(updates.map((u) => u.ref).join("\n") + "\n"),
    );

    // gitleaks reads the corpus while the bundle's own scanner (the exact values of its secrets,
    // and credential shapes, as the egress proxy looks for them) reads it here: a finding of
    // the latter stops the former. The latter's finding is the one reported, when both find.
    const report = join(root, "report.json");
    const stop = new AbortController();
    const gitleaks = runCommand(
      [
        options.gitleaks ?? "gitleaks",
        "detect",
        "--no-git",
        "--source",
        "pushed",
        "--no-banner",
        "--redact",
        "--exit-code",
        "3",
        "--report-format",
        "json",
        "--report-path",
        report,
        "--log-level",
        "error",
      ],
      {
        cwd: root,
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: root },
        timeoutMs: left(),
        signal: stop.signal,
      },
    );
    const held = await (async () => {
      const scanner = new SecretScanner(options.secrets, []);
      for (const [rel, entry] of entries) {
        if (Date.now() > deadline) return "limit" as const;
        const found = await scanFile(join(corpus, rel), scanner);
        if (found?.kind === "budget") return "limit" as const;
        if (found) return { entry, found };
      }
      return undefined;
    })();
    if (held) stop.abort();
    const leaks = await gitleaks;
    if (held === "limit")
      return { ok: false, tag: "limit", reason: "the scan took longer than its limit", objects };
    if (held)
      return {
        ok: false,
        tag: "secret-detected",
        finding: await located(held.entry, held.found.rule, held.found.line),
        objects,
      };
    if (leaks.timedOut)
      return { ok: false, tag: "limit", reason: "the scan took longer than its limit", objects };
    if (leaks.code === 3) {
      const first = (
        JSON.parse(readFileSync(report, "utf8")) as {
          RuleID: string;
          File: string;
          StartLine: number;
        }[]
      )[0];
      const rel = (first?.File ?? "").replace(/^(\.\/)?pushed\//, "");
      const entry = entries.get(rel) ?? { file: rel };
      return {
        ok: false,
        tag: "secret-detected",
        finding: await located(
          entry,
          first?.RuleID ?? "gitleaks",
          Math.max((first?.StartLine ?? 0) - LEAD.length, 0),
        ),
        objects,
      };
    }
    if (leaks.code !== 0)
      return {
        ok: false,
        tag: "scan-failed",
        reason: `gitleaks failed: ${leaks.stderr.trim().split("\n").pop() ?? leaks.code}`,
        objects,
      };
    return { ok: true, objects };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

type Written =
  { ok: true; bytes: number } | { ok: false; tag: "limit" | "scan-failed"; reason: string };

/**
 * Writes each object to the file `files` names for it, defused, from one streaming
 * `cat-file --batch`: never more than a chunk in memory, and no more than `maxBytes` in all (a
 * small pack can hold a great deal once inflated) — past that the push is refused.
 */
async function writeObjects(
  mirror: string,
  files: ReadonlyMap<string, string>,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  maxBytes: number,
): Promise<Written> {
  if (files.size === 0) return { ok: true, bytes: 0 };
  let header = "";
  let remaining = -1;
  let fd: number | undefined;
  let carry = "";
  let total = 0;
  let failure: Written | undefined;
  const finish = () => {
    if (fd === undefined) return;
    writeSync(fd, Buffer.from(defuse(carry), "latin1"));
    closeSync(fd);
    fd = undefined;
    carry = "";
  };
  const ran = await runCommand(["git", "cat-file", "--batch"], {
    cwd: mirror,
    env,
    input: [...files.keys()].join("\n") + "\n",
    timeoutMs,
    onStdout: (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        if (remaining < 0) {
          const eol = chunk.indexOf(0x0a, at);
          header += chunk.subarray(at, eol < 0 ? chunk.length : eol).toString("latin1");
          if (eol < 0) return true;
          at = eol + 1;
          const [id = "", , size] = header.split(" ");
          header = "";
          remaining = Number(size);
          const target = files.get(id);
          if (!target || !Number.isFinite(remaining)) {
            failure = { ok: false, tag: "scan-failed", reason: `could not read object ${id}` };
            return false;
          }
          total += remaining;
          if (total > maxBytes) {
            failure = {
              ok: false,
              tag: "limit",
              reason: `the push's new objects come to more than ${Math.round(maxBytes / 1024 / 1024)} MiB, more than this gate scans`,
            };
            return false;
          }
          fd = openSync(target, "w");
          // A first line of its own: no file starts with magic bytes gitleaks takes for binary.
          writeSync(fd, LEAD);
          continue;
        }
        if (remaining === 0) {
          finish();
          at += 1; // the newline after each object
          remaining = -1;
          continue;
        }
        const take = Math.min(remaining, chunk.length - at);
        const text = carry + chunk.subarray(at, at + take).toString("latin1");
        const keep = Math.min(DEFUSE_CARRY, text.length);
        const out = defuse(text);
        // What is kept back is re-read with the next chunk, so a split word is still seen.
        if (fd !== undefined) writeSync(fd, Buffer.from(out.slice(0, out.length - keep), "latin1"));
        // The defused text is what is kept: raw, a word cut at the object's end would survive.
        carry = out.slice(out.length - keep);
        remaining -= take;
        at += take;
      }
      return true;
    },
  });
  if (remaining === 0) finish();
  if (fd !== undefined) closeSync(fd);
  if (failure) return failure;
  if (ran.timedOut)
    return { ok: false, tag: "limit", reason: "the scan took longer than its limit" };
  if (ran.code !== 0)
    return { ok: false, tag: "scan-failed", reason: `cat-file failed: ${ran.stderr.trim()}` };
  return { ok: true, bytes: total };
}
