/**
 * The mirrors' pre-receive hook: decides a push while its objects are still in quarantine, so
 * nothing is accepted before the decision ends. In order: the mirror is refreshed from the
 * upstream; every ref update is judged against the entry's push policy and against the upstream's
 * current value; the new objects are secret-scanned; then the push is forwarded to the upstream
 * (atomically, each ref leased at the value the agent pushed over). Only when the upstream takes
 * it does the hook succeed and the mirror move. Whatever it prints, the agent's git shows.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { GitAuditRecord, GitRefUpdate } from "../../shared/git-gate-config.js";
import {
  audit,
  git,
  gitEnv,
  MIRRORS,
  mirrorOf,
  readGateConfig,
  reasonOf,
  refresh,
  remoteOf,
  repoAt,
  withMirrorLock,
  ZERO,
} from "./gate.js";
import { judgeUpdates } from "./policy.js";
import { scanPush } from "./scan.js";

const started = Date.now();

function say(lines: string[]): void {
  process.stderr.write(lines.map((l) => `bot-bottle git-gate: ${l}\n`).join(""));
}

function updatesFrom(text: string): GitRefUpdate[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [old = "", next = "", ref = ""] = line.split(" ");
      return { ref, old, new: next };
    });
}

/** The quarantine receive-pack set up, kept for the commands that must see the pushed objects. */
function quarantineEnv(): NodeJS.ProcessEnv {
  const keep = ["GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH"];
  return gitEnv(Object.fromEntries(keep.map((k) => [k, process.env[k]])));
}

async function main(): Promise<number> {
  const config = readGateConfig();
  const repo = repoAt(config, process.cwd());
  const updates = updatesFrom(readFileSync(0, "utf8"));
  const record = (r: Omit<GitAuditRecord, "time" | "repo" | "op" | "refs" | "ms">) =>
    audit({
      repo: repo?.name ?? process.cwd(),
      op: "push",
      refs: updates,
      ms: Date.now() - started,
      ...r,
    });
  if (!repo) {
    say(["this repository is not declared"]);
    record({ decision: "refuse", tag: "undeclared", reason: "not declared" });
    return 1;
  }
  const limits = config.limits;
  const dir = mirrorOf(repo);
  const quarantine = quarantineEnv();

  return withMirrorLock(repo, limits.upstreamTimeoutMs, async () => {
    const refreshed = await refresh(repo, limits.upstreamTimeoutMs);
    if (!refreshed.ok) {
      const reason = `upstream ${repo.name} unreachable: ${refreshed.reason}`;
      say([`push refused: ${reason}`]);
      record({
        decision: "refuse",
        tag: "upstream-unreachable",
        reason,
        upstream: refreshed.reason,
      });
      return 1;
    }

    // The agent pushed over what it had fetched; the upstream may have moved since.
    const moved: string[] = [];
    for (const u of updates) {
      const now = await git(dir, ["rev-parse", "--verify", "--quiet", u.ref]);
      const current = now.code === 0 ? now.stdout.trim() : "0".repeat(u.old.length);
      if (current !== u.old)
        moved.push(
          `${u.ref} has moved upstream since your last fetch: fetch, rebase or merge, and push again`,
        );
    }
    if (moved.length > 0) {
      say(["push refused:", ...moved]);
      record({ decision: "refuse", tag: "stale", reason: moved.join("; ") });
      return 1;
    }

    const fastForward = new Map<string, boolean>();
    for (const u of updates)
      if (!ZERO.test(u.old) && !ZERO.test(u.new))
        fastForward.set(
          u.ref,
          (await git(dir, ["merge-base", "--is-ancestor", u.old, u.new], { env: quarantine }))
            .code === 0,
        );
    const refused = judgeUpdates(repo.push, updates, (u) => fastForward.get(u.ref) === true).filter(
      (v) => v.refused,
    );
    if (refused.length > 0) {
      const reasons = refused.map((v) => v.refused as string);
      say(["push refused (nothing was sent upstream):", ...reasons]);
      record({ decision: "refuse", tag: "policy", reason: reasons.join("; ") });
      return 1;
    }

    const secrets = config.heldSecretEnv.flatMap((name) => {
      const value = process.env[name];
      return value ? [{ name, value }] : [];
    });
    const scanned = await scanPush({
      mirror: dir,
      updates,
      secrets,
      maxObjects: limits.maxObjects,
      maxScanBytes: limits.maxScanBytes,
      workDir: join(MIRRORS, ".scan"),
      timeoutMs: limits.scanTimeoutMs,
      env: quarantine,
    });
    if (!scanned.ok && scanned.tag === "secret-detected") {
      const f = scanned.finding;
      const where = `${f.file}${f.line ? ` line ${f.line}` : ""}${f.commit ? ` (commit ${f.commit.slice(0, 12)})` : ""}`;
      const reason = `a secret (${f.rule}) in ${where}`;
      say([
        `push refused: ${reason}`,
        "remove it from every commit of the push (git rebase -i, git commit --amend) and push again; nothing was sent upstream",
      ]);
      record({
        decision: "refuse",
        tag: "secret-detected",
        reason,
        finding: f,
        objects: scanned.objects,
      });
      return 1;
    }
    if (!scanned.ok) {
      say([`push refused: ${scanned.reason}; nothing was sent upstream`]);
      record({
        decision: "refuse",
        tag: scanned.tag,
        reason: scanned.reason,
        objects: scanned.objects,
      });
      return 1;
    }

    // Forward, all refs or none, each leased at the value the agent pushed over.
    const specs = updates.flatMap((u) => [
      `--force-with-lease=${u.ref}:${ZERO.test(u.old) ? "" : u.old}`,
    ]);
    const refspecs = updates.map((u) =>
      ZERO.test(u.new)
        ? `:${u.ref}`
        : `${fastForward.get(u.ref) === false ? "+" : ""}${u.new}:${u.ref}`,
    );
    const pushed = await git(
      dir,
      ["push", "--atomic", "--porcelain", "--no-verify", ...specs, remoteOf(repo), ...refspecs],
      { env: quarantine, timeoutMs: limits.upstreamTimeoutMs },
    );
    if (pushed.code !== 0) {
      const rejected = pushed.stdout
        .split("\n")
        .filter((l) => l.startsWith("!"))
        .map((l) => l.split("\t").slice(1).join(" ").trim());
      const upstream = rejected.length > 0 ? rejected.join("; ") : reasonOf(pushed, "push failed");
      const remoteLines = pushed.stderr
        .split("\n")
        .filter((l) => l.startsWith("remote:"))
        .map((l) => l.replace(/^remote: ?/, "  upstream: "));
      say([`upstream ${repo.name} refused the push: ${upstream}`, ...remoteLines]);
      record({
        decision: "refuse",
        tag: "upstream-rejected",
        reason: `upstream refused: ${upstream}`,
        upstream,
        objects: scanned.objects,
      });
      return 1;
    }
    record({ decision: "allow", tag: "forwarded", objects: scanned.objects });
    return 0;
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say([`push refused: internal error: ${err instanceof Error ? err.message : String(err)}`]);
    process.exit(1);
  },
);
