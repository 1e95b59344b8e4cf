/**
 * The secret scan of a push: exactly the objects the push brings — everything reachable from the
 * pushed tips and not from the mirror's refs (the upstream's, just refreshed). Every new blob is
 * written out whole under the path it was pushed at (files added and removed within the push
 * included), with every new commit and tag object (messages, author and committer) and the ref
 * names beside them; then gitleaks (its own rules: the folder it scans never holds a pushed
 * .gitleaks.toml or .gitleaksignore at its top, and "gitleaks:allow" is defused) and the egress
 * scanner (the exact values of every secret the bundle holds, in every encoding, and credential
 * shapes) read the lot. Bytes that would make a tool call a file binary are blanked, lengths kept.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/** "gitleaks:allow" spelled so it allows nothing; the same length, so lines and columns hold. */
function defused(bytes: Buffer): Buffer {
  const text = bytes.toString("latin1").replace(/gitleaks:allow/gi, "gitleaks-allow");
  // NUL makes a file binary to some tools: a space keeps every offset.
  return Buffer.from(text.replace(/\0/g, " "), "latin1");
}

/** The line (1-based) of `text` where `scanner` finds something, or 0. */
function lineOf(text: string, scanner: SecretScanner): number {
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++)
    if (scanner.scan(lines[i] as string, new Set())) return i + 1;
  return 0;
}

export async function scanPush(options: {
  mirror: string;
  updates: readonly GitRefUpdate[];
  secrets: readonly HeldSecret[];
  maxObjects: number;
  timeoutMs: number;
  /** The quarantine environment receive-pack gave the hook: the pushed objects are there. */
  env: NodeJS.ProcessEnv;
  gitleaks?: string;
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
  if (listed.code !== 0)
    return {
      ok: false,
      tag: "scan-failed",
      reason: listed.stderr.trim() || "rev-list failed",
      objects: 0,
    };
  const rows = listed.stdout.split("\n").filter(Boolean);
  // A pushed annotated tag on an already published commit: rev-list starts from the commit, so
  // the tag object itself is listed only when it is new; name it from the update.
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
  // Every pushed tip that is a tag object is new by construction (rev-list lists it only then).
  for (const tip of tips) if (!paths.has(tip)) paths.set(tip, "");
  const checked = await git(mirror, ["cat-file", "--batch-check=%(objectname) %(objecttype)"], {
    env,
    input: [...paths.keys()].join("\n") + "\n",
    timeoutMs: left(),
  });
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

  const root = mkdtempSync(join(tmpdir(), "git-gate-scan-"));
  const corpus = join(root, "pushed");
  const entries = new Map<string, Entry>();
  try {
    mkdirSync(corpus);
    const put = (rel: string, bytes: Buffer, entry: Entry) => {
      const target = join(corpus, rel);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, defused(bytes));
      entries.set(rel, entry);
    };
    const ids = [...types.keys()];
    const contents = await readObjects(mirror, ids, env, left());
    let n = 0;
    for (const id of ids) {
      const type = types.get(id);
      const bytes = contents.get(id) ?? Buffer.alloc(0);
      const path = paths.get(id) ?? "";
      if (type === "blob")
        put(join(`b${n++}`, safePath(path || id)), bytes, { file: path || id, blob: id });
      else if (type === "commit")
        put(join("commits", id), bytes, {
          file: `commit ${id.slice(0, 12)} (message and author)`,
          commit: id,
        });
      else if (type === "tag")
        put(join("tags", id), bytes, { file: `tag object ${id.slice(0, 12)}` });
    }
    put("refs", Buffer.from(updates.map((u) => u.ref).join("\n") + "\n"), {
      file: "the pushed ref names",
    });

    // The bundle's own secrets and credential shapes, as the egress proxy looks for them.
    const scanner = new SecretScanner(options.secrets, []);
    for (const [rel, entry] of entries) {
      if (Date.now() > deadline)
        return { ok: false, tag: "limit", reason: "the scan took longer than its limit", objects };
      const text = readFileSync(join(corpus, rel)).toString("latin1");
      const found = scanner.scan(text, new Set());
      if (found)
        return {
          ok: false,
          tag: "secret-detected",
          finding: await located(entry, found.name, lineOf(text, scanner)),
          objects,
        };
    }

    const report = join(root, "report.json");
    const leaks = await runCommand(
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
      },
    );
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
        finding: await located(entry, first?.RuleID ?? "gitleaks", first?.StartLine ?? 0),
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

/** A pushed path as a path below the corpus: no "..", no absolute start. */
function safePath(path: string): string {
  return (
    path
      .split("/")
      .filter((s) => s && s !== "." && s !== "..")
      .join("/") || "unnamed"
  );
}

/** The raw contents of `ids`, read in one `cat-file --batch`. */
async function readObjects(
  mirror: string,
  ids: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  if (ids.length === 0) return out;
  const { bytes: all } = await git(mirror, ["cat-file", "--batch"], {
    env,
    input: ids.join("\n") + "\n",
    timeoutMs,
  });
  let at = 0;
  while (at < all.length) {
    const eol = all.indexOf(0x0a, at);
    if (eol < 0) break;
    const [id, , size] = all.subarray(at, eol).toString("latin1").split(" ");
    const length = Number(size);
    if (!id || !Number.isFinite(length)) break;
    out.set(id, all.subarray(eol + 1, eol + 1 + length));
    at = eol + 1 + length + 1;
  }
  return out;
}
