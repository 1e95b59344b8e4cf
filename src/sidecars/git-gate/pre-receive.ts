/**
 * The mirrors' pre-receive hook: decides a push while its objects are still in quarantine, so
 * nothing is accepted before the decision ends. In order: every ref update is judged against the
 * entry's push policy; the new objects (those the mirror lacks) are secret-scanned; then the push
 * is forwarded to the upstream, atomically, each ref leased at the value the agent pushed over —
 * so an upstream that moved since the agent's last fetch refuses it, checked by the upstream
 * itself in the same exchange. Only when the upstream takes it does the hook succeed and the
 * mirror move. Whatever it prints, the agent's git shows.
 */
import { join } from "node:path";
import type { GitAuditRecord, GitRefUpdate } from "../../shared/git-gate-config.js";
import {
  audit,
  git,
  gitEnv,
  grantedSecrets,
  grantEnded,
  MIRRORS,
  mirrorOf,
  reasonOf,
  remoteOf,
  repoAt,
  withMirrorLock,
  ZERO,
} from "./gate.js";
import type { HookCall } from "./hooks.js";
import { judgeUpdates } from "./policy.js";
import { scanPush } from "./scan.js";

function updatesFrom(text: string): GitRefUpdate[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [old = "", next = "", ref = ""] = line.split(" ");
      return { ref, old, new: next };
    });
}

/** The line a ref the upstream refused is shown with: a lease that failed means it moved. */
function rejection(line: string): string {
  const [, ref = "", why = ""] = line.split("\t");
  const name = ref.replace(/^.*:/, "");
  return /\(stale info\)/.test(why)
    ? `${name} has moved upstream since your last fetch: fetch, rebase or merge, and push again`
    : `${name} ${why}`.trim();
}

export async function preReceive(call: HookCall): Promise<number> {
  const started = Date.now();
  const { config } = call;
  const say = (lines: string[]) =>
    call.stderr(lines.map((l) => `bot-bottle git-gate: ${l}\n`).join(""));
  const repo = repoAt(config, call.cwd);
  const updates = updatesFrom(call.stdin.toString("utf8"));
  const steps: Record<string, number> = {};
  let mark = started;
  const step = (name: string) => {
    const now = Date.now();
    steps[name] = now - mark;
    mark = now;
  };
  const record = (r: Omit<GitAuditRecord, "time" | "repo" | "op" | "refs" | "ms">) =>
    audit({
      repo: repo?.name ?? call.cwd,
      op: "push",
      refs: updates,
      ms: Date.now() - started,
      steps,
      ...r,
    });
  if (!repo) {
    say(["this repository is not declared"]);
    record({ decision: "refuse", tag: "undeclared", reason: "not declared" });
    return 1;
  }
  // A grant that ended between the connection and now.
  const ended = grantEnded(repo);
  if (ended) {
    say([`push refused: ${ended}`]);
    record({ decision: "refuse", tag: "grant-ended", reason: ended });
    return 1;
  }
  const limits = config.limits;
  const dir = mirrorOf(repo);
  // The quarantine receive-pack set up, for the commands that must see the pushed objects.
  const quarantine = gitEnv(call.quarantine);

  return withMirrorLock(repo, limits.upstreamTimeoutMs, async () => {
    step("wait");
    const fastForward = new Map<string, boolean>();
    await Promise.all(
      updates
        .filter((u) => !ZERO.test(u.old) && !ZERO.test(u.new))
        .map(async (u) =>
          fastForward.set(
            u.ref,
            (await git(dir, ["merge-base", "--is-ancestor", u.old, u.new], { env: quarantine }))
              .code === 0,
          ),
        ),
    );
    const refused = judgeUpdates(repo.push, updates, (u) => fastForward.get(u.ref) === true).filter(
      (v) => v.refused,
    );
    step("policy");
    if (refused.length > 0) {
      const reasons = refused.map((v) => v.refused as string);
      say(["push refused (nothing was sent upstream):", ...reasons]);
      record({ decision: "refuse", tag: "policy", reason: reasons.join("; ") });
      return 1;
    }

    const secrets = [
      ...config.heldSecretEnv.flatMap((name) => {
        const value = process.env[name];
        return value ? [{ name, value }] : [];
      }),
      ...grantedSecrets(config),
    ];
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
    step("scan");
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
    step("forward");
    if (pushed.code !== 0) {
      const rejected = pushed.stdout
        .split("\n")
        .filter((l) => l.startsWith("!"))
        .map(rejection);
      const moved = rejected.filter((l) => l.includes("has moved upstream"));
      if (moved.length > 0) {
        say(["push refused:", ...moved]);
        record({
          decision: "refuse",
          tag: "stale",
          reason: moved.join("; "),
          objects: scanned.objects,
        });
        return 1;
      }
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
