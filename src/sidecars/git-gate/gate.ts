/**
 * What the git gate's three entry points share: the daemon (main.ts), git daemon's access hook
 * (access.ts, before every fetch and push) and the mirrors' pre-receive hook (pre-receive.ts).
 * The gate's git always runs with the operator's fixed config and never a system or user one, and
 * its SSH with a config of its own: one host alias per repository, pinned to exactly one host key.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  AUDIT_DIR,
  GIT_AUDIT_FILE,
  GIT_GATE_CONFIG_PATH,
  GIT_GATE_HOME,
  GIT_GATE_ROOT,
  gitGrantPath,
} from "../../shared/bundle-paths.js";
import type { GitAuditRecord, GitGateConfig, GitGateRepo } from "../../shared/git-gate-config.js";
import { runCommand, type Ran } from "./process.js";

export { runCommand, type Ran };

/** The gate's own files on the bundle's tmpfs: git and SSH config, keys, SSH control sockets. */
export const GATE_HOME = process.env["BOT_BOTTLE_GIT_GATE_HOME"] ?? GIT_GATE_HOME;
export const MIRRORS = process.env["BOT_BOTTLE_GIT_GATE_ROOT"] ?? GIT_GATE_ROOT;
export const CONFIG_PATH = process.env["BOT_BOTTLE_GIT_GATE_CONFIG"] ?? GIT_GATE_CONFIG_PATH;
const AUDIT_PATH = join(process.env["BOT_BOTTLE_AUDIT_DIR"] ?? AUDIT_DIR, GIT_AUDIT_FILE);

/** The tree with no entries: attributes are read from it, so pushed .gitattributes count for nothing. */
export const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
export const ZERO = /^0+$/;

/**
 * Where a credential an operator handed over when granting a repository live lies: the gate's
 * private home, written there by the host through the engine (never a host file, never the agent).
 */
export function grantFile(repo: Pick<GitGateRepo, "name">, kind: "key" | "token"): string {
  return gitGrantPath(repo.name, kind, GATE_HOME);
}

/** A granted credential's text; a clear error when the host did not hand it over. */
export function readGrant(
  repo: Pick<GitGateRepo, "name">,
  kind: "key" | "token",
  what: string,
): string {
  try {
    return readFileSync(grantFile(repo, kind), "utf8");
  } catch {
    throw new Error(`${what} granted for ${repo.name} is not in ${grantFile(repo, kind)}`);
  }
}

/** The credentials operators granted, by a name for findings: a push carrying one is refused. */
export function grantedSecrets(config: GitGateConfig): { name: string; value: string }[] {
  return config.repos.flatMap((r) => {
    const kinds: ("key" | "token")[] = [];
    if (r.upstream.kind === "ssh" && r.upstream.key.provider === "granted") kinds.push("key");
    if (r.upstream.kind === "https" && r.upstream.tokenGranted) kinds.push("token");
    return kinds.flatMap((kind) => {
      try {
        const value = readFileSync(grantFile(r, kind), "utf8").trim();
        return value ? [{ name: `the ${kind} granted for ${r.name}`, value }] : [];
      } catch {
        return [];
      }
    });
  });
}

/** When an operator's grant of `repo` has ended, the sentence saying so; else undefined. */
export function grantEnded(repo: GitGateRepo, now = Date.now()): string | undefined {
  if (!repo.expires || Date.parse(repo.expires) > now) return undefined;
  return `the operator's grant of ${repo.name} ended at ${repo.expires}: ask again (request_git_repo) if it is still needed`;
}

export function mirrorOf(repo: Pick<GitGateRepo, "name">): string {
  return join(MIRRORS, `${repo.name}.git`);
}

/** The SSH host alias of a repository's upstream in the gate's ssh config. */
export function sshAlias(repo: Pick<GitGateRepo, "name">): string {
  return `upstream-${repo.name}`;
}

/** The remote git dials for a repository: the alias (ssh) or the https URL. */
export function remoteOf(repo: GitGateRepo): string {
  const u = repo.upstream;
  return u.kind === "ssh" ? `${sshAlias(repo)}:${u.path}` : httpsUrl(u);
}

function httpsUrl(u: Extract<GitGateRepo["upstream"], { kind: "https" }>): string {
  const url = new URL(u.url);
  url.username = "";
  url.password = "";
  return url.toString();
}

/**
 * The environment every git the gate runs gets: its own global config only (no system config, no
 * user's), nothing a pushed repository or the agent could have set, no prompt for credentials.
 */
export function gitEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("GIT_") && k !== "GITLEAKS_CONFIG") env[k] = v;
  return {
    ...env,
    HOME: GATE_HOME,
    XDG_CONFIG_HOME: join(GATE_HOME, "xdg"),
    GIT_CONFIG_GLOBAL: join(GATE_HOME, "gitconfig"),
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_ATTR_SOURCE: EMPTY_TREE,
    ...extra,
  };
}

/** git with the gate's environment, in `dir` (a mirror). */
export function git(
  dir: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<Ran> {
  return runCommand(["git", ...args], { cwd: dir, env: options.env ?? gitEnv(), ...options });
}

/** The line of a failed command's output worth showing: the last that says something. */
export function reasonOf(ran: Ran, fallback: string): string {
  if (ran.timedOut) return "no answer in time";
  const lines = (ran.stderr + "\n" + ran.stdout)
    .split("\n")
    .map((l) => l.replace(/^(fatal|error): /, "").trim())
    .filter((l) => l && !/^(hint:|remote: *$|To )/.test(l));
  const fatal = lines.find((l) =>
    /Host key verification failed|Permission denied|Could not read|Connection refused|Connection timed out|Could not resolve|No route|not found|does not exist|unable to access/i.test(
      l,
    ),
  );
  return (fatal ?? lines[lines.length - 1] ?? fallback).slice(0, 300);
}

/** Appends one line to audit/git.jsonl (one write, so concurrent hooks' lines never interleave). */
export function audit(record: Omit<GitAuditRecord, "time">): void {
  const line = JSON.stringify({ time: new Date().toISOString(), ...record }) + "\n";
  try {
    appendFileSync(AUDIT_PATH, line);
  } catch {
    process.stderr.write(`bot-bottle git-gate: could not write the audit log ${AUDIT_PATH}\n`);
  }
}

/** Per mirror, the end of the last task that holds it. */
const holders = new Map<string, Promise<void>>();

/**
 * Runs `body` holding the mirror's lock: one refresh or push at a time per mirror, so a fetch
 * never sees a half-moved mirror and two refreshes never race for a ref. Every hook runs in the
 * gate's daemon, so the lock is the daemon's own; a task that waits longer than `timeoutMs`
 * gives up.
 */
export async function withMirrorLock<T>(
  repo: GitGateRepo,
  timeoutMs: number,
  body: () => Promise<T>,
): Promise<T> {
  const before = holders.get(repo.name) ?? Promise.resolve();
  let release = (): void => undefined;
  const mine = before.then(() => new Promise<void>((done) => (release = done)));
  holders.set(repo.name, mine);
  void mine.then(() => {
    if (holders.get(repo.name) === mine) holders.delete(repo.name);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const turn = await Promise.race([
      before.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs))),
    ]);
    if (!turn) throw new Error("the mirror stayed busy");
    return await body();
  } finally {
    clearTimeout(timer);
    // A task that gave up still takes its turn, empty, so those after it keep their order.
    void before.then(() => release());
  }
}

export type Refreshed = { ok: true } | { ok: false; reason: string };

/**
 * Brings the mirror up to the upstream: every branch and tag (pruned, all or nothing), and HEAD to
 * the upstream's default branch. On any failure the mirror is left as it was.
 */
export async function refresh(repo: GitGateRepo, timeoutMs: number): Promise<Refreshed> {
  const dir = mirrorOf(repo);
  const remote = remoteOf(repo);
  // One round trip tells whether anything moved: the upstream's branches, tags and HEAD, beside
  // the mirror's own refs. Only when they differ does the fetch run.
  const [listed, local] = await Promise.all([
    git(dir, ["ls-remote", "--symref", remote, "HEAD", "refs/heads/*", "refs/tags/*"], {
      timeoutMs,
    }),
    git(dir, ["for-each-ref", "--format=%(objectname)\t%(refname)", "refs/heads", "refs/tags"]),
  ]);
  if (listed.code !== 0) return { ok: false, reason: reasonOf(listed, "ls-remote failed") };
  const upstream = new Set(
    listed.stdout
      .split("\n")
      .filter((l) => /^[0-9a-f]{40,64}\trefs\/(heads|tags)\//.test(l) && !l.endsWith("^{}")),
  );
  const mirror = new Set(local.stdout.split("\n").filter(Boolean));
  const same = upstream.size === mirror.size && [...upstream].every((l) => mirror.has(l));
  if (!same) {
    const fetched = await git(
      dir,
      [
        "fetch",
        "--prune",
        "--atomic",
        "--no-tags",
        "--quiet",
        remote,
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
      ],
      { timeoutMs },
    );
    if (fetched.code !== 0) return { ok: false, reason: reasonOf(fetched, "fetch failed") };
  }
  const symref = /^ref: (refs\/heads\/\S+)\tHEAD$/m.exec(listed.stdout)?.[1];
  if (symref) await git(dir, ["symbolic-ref", "HEAD", symref]);
  return { ok: true };
}

/** The repository a git daemon path (`/app.git`, as the agent asked) names, if declared. */
export function repoAt(config: GitGateConfig, path: string): GitGateRepo | undefined {
  const name = /^\/?([^/]+?)(?:\.git)?\/?$/.exec(
    path.startsWith(MIRRORS) ? path.slice(MIRRORS.length) : path,
  )?.[1];
  return config.repos.find((r) => r.name === name);
}
