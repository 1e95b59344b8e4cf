/**
 * Provisioning the agent's home, through the Bottle handle and as the agent's user (HOME is its
 * home): the template's files (its configuration, the prompt), the skill folders, the git
 * identity. One `exec` runs a script read from its standard input; the script then reports what
 * took effect — each file's SHA-256 and the git identity — and the start fails, naming the step,
 * when anything differs from what was sent.
 */
import { createHash } from "node:crypto";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join, posix } from "node:path";
import type { Bottle } from "../backends/backend.js";
import { withPlaceholders, type AgentProvisionPlan } from "../backends/plan.js";
import { BotBottleError, EXIT, UsageError } from "../errors.js";
import { CommandFailedError } from "../exec/run.js";

/** A skill folder bigger than this is refused: skills are instructions, not data. */
export const SKILL_LIMIT_BYTES = 4 * 1024 * 1024;

export interface ProvisionFile {
  path: string;
  content: Buffer;
  mode: number;
  what: string;
}

export class ProvisionError extends BotBottleError {
  constructor(message: string, hint: string) {
    super("provision_failed", message, { exitCode: EXIT.internal, hint });
    this.name = "ProvisionError";
  }
}

/** A POSIX shell word that stands for exactly `value`. */
export function shellWord(value: string): string {
  const closeEscapeReopen = "'\\''";
  return "'" + value.replaceAll("'", closeEscapeReopen) + "'";
}

/** Every regular file below a skill folder, as files under `container`. Links are refused. */
export async function skillFiles(host: string, container: string): Promise<ProvisionFile[]> {
  const out: ProvisionFile[] = [];
  let total = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const source = join(dir, e.name);
      const target = posix.join(container, rel, e.name);
      if (e.isDirectory()) await walk(source, posix.join(rel, e.name));
      else if (e.isFile()) {
        const content = await readFile(source);
        total += content.length;
        if (total > SKILL_LIMIT_BYTES)
          throw new UsageError(
            `the skill folder ${host} holds more than ${SKILL_LIMIT_BYTES / 1024 / 1024} MiB`,
            "keep a skill to its instructions and small scripts",
          );
        const mode = (await lstat(source)).mode & 0o111 ? 0o755 : 0o644;
        out.push({ path: target, content, mode, what: `the skill ${posix.basename(container)}` });
      } else
        throw new UsageError(
          `${source} in the skill folder ${host} is neither a file nor a folder (a link?)`,
          "skills are copied as plain files: replace the link with the file it names",
        );
    }
  };
  const top = await lstat(host).catch(() => undefined);
  if (!top?.isDirectory())
    throw new UsageError(
      `the skill ${host} is not a folder`,
      "name a folder holding the skill's SKILL.md",
    );
  await walk(host, "");
  return out;
}

/** The files a plan provisions, with the skill folders read from the host. */
export async function provisionFiles(
  plan: AgentProvisionPlan,
  placeholders: Readonly<Record<string, string>> = {},
): Promise<ProvisionFile[]> {
  const seen = new Map<string, string>();
  for (const s of plan.skills) {
    const earlier = seen.get(s.container);
    if (earlier !== undefined)
      throw new UsageError(
        `the skills ${earlier} and ${s.host} have the same folder name, so one would replace the other in the agent`,
        "rename one of the two folders",
      );
    seen.set(s.container, s.host);
  }
  return [
    ...plan.files.map((f) => ({
      ...f,
      content: Buffer.from(withPlaceholders(f.content, placeholders), "utf8"),
    })),
    ...(await Promise.all(plan.skills.map((s) => skillFiles(s.host, s.container)))).flat(),
  ];
}

const GIT_KEYS = { name: "user.name", email: "user.email" } as const;

/** The script: write each file (atomically, with its mode), set the git identity, report. */
export function provisionScript(files: readonly ProvisionFile[], plan: AgentProvisionPlan): string {
  const lines = ["set -eu", "umask 022"];
  for (const f of files) {
    const path = shellWord(f.path);
    const tmp = shellWord(`${f.path}.bot-bottle-tmp`);
    lines.push(
      `mkdir -p "$(dirname ${path})"`,
      `printf '%s' ${shellWord(f.content.toString("base64"))} | base64 -d > ${tmp}`,
      `chmod ${f.mode.toString(8)} ${tmp}`,
      `mv -f ${tmp} ${path}`,
    );
  }
  if (plan.gitUser)
    for (const [field, key] of Object.entries(GIT_KEYS))
      lines.push(
        `git config --global ${key} ${shellWord(plan.gitUser[field as keyof typeof GIT_KEYS])}`,
      );
  // Declared upstreams lead to the git gate, however the agent's git spells them.
  for (const { url, insteadOf } of plan.gitUrls ?? []) {
    const key = shellWord(`url.${url}.insteadOf`);
    lines.push(`git config --global --unset-all ${key} || true`);
    for (const spelling of insteadOf)
      lines.push(`git config --global --add ${key} ${shellWord(spelling)}`);
  }
  // The report: one "sha256  path" line per file, then the git identity as git reads it.
  if (files.length) lines.push(`sha256sum -- ${files.map((f) => shellWord(f.path)).join(" ")}`);
  if (plan.gitUser)
    for (const key of Object.values(GIT_KEYS))
      lines.push(`printf 'git %s %s\\n' ${key} "$(git config --global --get ${key})"`);
  for (const { url } of plan.gitUrls ?? [])
    lines.push(
      `git config --global --get-all ${shellWord(`url.${url}.insteadOf`)} | sed 's/^/gitmap ${url.replaceAll("/", "\\/")} /'`,
    );
  return lines.join("\n") + "\n";
}

export interface ProvisionResult {
  files: number;
  skills: number;
  gitUser: boolean;
}

/** Checks the script's report against what was sent; the first difference fails the start. */
export function checkReport(
  report: string,
  files: readonly ProvisionFile[],
  plan: AgentProvisionPlan,
): void {
  const sums = new Map<string, string>();
  const git = new Map<string, string>();
  const rewrites = new Map<string, string[]>();
  for (const line of report.split("\n")) {
    const r = /^gitmap (\S+) (.*)$/.exec(line);
    if (r) rewrites.set(r[1] ?? "", [...(rewrites.get(r[1] ?? "") ?? []), r[2] ?? ""]);
    const g = /^git (\S+) (.*)$/.exec(line);
    if (g) git.set(g[1] ?? "", g[2] ?? "");
    const m = /^([0-9a-f]{64}) {2}(.*)$/.exec(line);
    if (m) sums.set(m[2] ?? "", m[1] ?? "");
  }
  for (const f of files) {
    const want = createHash("sha256").update(f.content).digest("hex");
    if (sums.get(f.path) !== want)
      throw new ProvisionError(
        `${f.what} (${f.path}) did not take effect in the agent`,
        "the agent's image may lack sha256sum or base64, or its home may not belong to its user; `bot-bottle logs SLUG` shows more",
      );
  }
  if (plan.gitUser)
    for (const [field, key] of Object.entries(GIT_KEYS)) {
      const want = plan.gitUser[field as keyof typeof GIT_KEYS];
      if (git.get(key) !== want)
        throw new ProvisionError(
          `the git identity (${key}) did not take effect in the agent`,
          "the agent's image needs git; check that its user's home is writable",
        );
    }
  checkRewrites(rewrites, plan);
}

function checkRewrites(rewrites: Map<string, string[]>, plan: AgentProvisionPlan): void {
  for (const { url, insteadOf } of plan.gitUrls ?? [])
    if ((rewrites.get(url) ?? []).join("\n") !== insteadOf.join("\n"))
      throw new ProvisionError(
        `the agent's git config does not lead ${insteadOf[0] ?? url} to the git gate (${url})`,
        "the agent's image needs git; check that its user's home is writable",
      );
}

export async function provisionAgent(
  bottle: Bottle,
  plan: AgentProvisionPlan,
  options: { user: string; home: string; placeholders: Readonly<Record<string, string>> },
): Promise<ProvisionResult> {
  const files = await provisionFiles(plan, options.placeholders);
  const result = { files: plan.files.length, skills: plan.skills.length, gitUser: !!plan.gitUser };
  if (files.length === 0 && !plan.gitUser && !plan.gitUrls?.length) return result;
  let stdout: string;
  try {
    ({ stdout } = await bottle.exec(["sh", "-s"], {
      user: options.user,
      env: { HOME: options.home },
      input: provisionScript(files, plan),
      timeoutMs: 30_000,
    }));
  } catch (err) {
    const detail =
      err instanceof CommandFailedError ? (err.stderr.trim().split("\n").pop() ?? "") : String(err);
    throw new ProvisionError(
      `provisioning the agent failed: ${detail}`,
      "the agent's image needs sh, base64, sha256sum and git, and its user's home must be writable",
    );
  }
  checkReport(stdout, files, plan);
  return result;
}

/** "2 files, 1 skill, git identity" for the start's progress. */
export function provisionLine(r: ProvisionResult): string {
  const parts = [
    `${r.files} file${r.files === 1 ? "" : "s"}`,
    ...(r.skills ? [`${r.skills} skill${r.skills === 1 ? "" : "s"}`] : []),
    ...(r.gitUser ? ["git identity"] : []),
  ];
  return parts.join(", ");
}
