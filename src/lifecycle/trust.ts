/**
 * Invariant 7 on the host: no file the operator's side trusts (the manifest, `trust_ca`, key
 * files, the agent's Dockerfile) may be writable from a bottle. The workspace is the one host
 * folder an agent writes, and it outlives the bottle, so a trusted file that lies in a workspace —
 * or whose path passes through a directory or symlink there, or that has a second name (a hard
 * link) — may already be the agent's: bot-bottle refuses to read it as the operator's. A
 * read-only mount over a file in a folder of the workspace would not do: the agent can rename
 * the folder around it and leave a file of its own at the path the operator's CLI reads. The one
 * exception is a file directly in the workspace folder (the manifest beside the project): its
 * bottle binds it read-only over itself, and a mount point whose parent is itself a mount point
 * can be neither written, renamed, unlinked nor moved out from under (`shields`).
 */
import { lstat, readFile, readlink, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import type { Backend } from "../backends/backend.js";
import { RefusedError } from "../errors.js";
import type { BottlePlan, TrustedFile } from "../backends/plan.js";
import { shieldedFiles, TRUSTED_FILE } from "../plan/plan.js";
import { readMetadata } from "../state/bottle-state.js";

/** A folder some bottle's agent can write, and whose it is ("this bottle", "the bottle x-1"). */
export interface Workspace {
  path: string;
  owner: string;
  /** Files directly in it that its bottle binds read-only over themselves (plan.ts). */
  shields?: readonly string[];
}

export interface Exposure {
  file: TrustedFile;
  /** Why the agent could change it. */
  why: string;
}

const MAX_SYMLINKS = 40;

/**
 * Every directory entry the kernel walks through to reach `path`, symlinks followed, each as a
 * path free of symlinks. Entries that do not exist end the following; the rest is taken as written.
 */
export async function traversal(path: string): Promise<string[]> {
  const steps: string[] = [];
  let pending = resolve(path).split(sep).filter(Boolean);
  let current: string = sep;
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() ?? "";
    if (part === ".") continue;
    if (part === "..") {
      current = dirname(current);
      continue;
    }
    const next = join(current, part);
    steps.push(next);
    const link = await lstat(next).then(
      (s) => (s.isSymbolicLink() ? readlink(next) : undefined),
      () => undefined,
    );
    if (link === undefined) {
      current = next;
      continue;
    }
    if (++hops > MAX_SYMLINKS) break;
    pending = [...link.split(sep).filter(Boolean), ...pending];
    if (isAbsolute(link)) current = sep;
  }
  return steps;
}

function ancestors(path: string): string[] {
  const out = [path];
  for (let p = dirname(path); p !== out[out.length - 1]; p = dirname(p)) out.push(p);
  return out;
}

interface Known {
  owner: string;
  shown: string;
  paths: string[];
  id: { dev: number; ino: number } | undefined;
  shields: ReadonlySet<string>;
}

async function identify(w: Workspace): Promise<Known> {
  const real = await realpath(w.path).catch(() => resolve(w.path));
  const s = await stat(w.path).catch(() => undefined);
  return {
    owner: w.owner,
    shown: w.path,
    paths: [...new Set([resolve(w.path), real])],
    id: s ? { dev: s.dev, ino: s.ino } : undefined,
    shields: new Set(w.shields ?? []),
  };
}

/** Strictly below `root`: the workspace folder itself is a mount point the agent cannot move. */
const below = (path: string, root: string) =>
  path !== root && path.startsWith(root.endsWith(sep) ? root : root + sep);

/** The trusted files an agent of one of these workspaces could change, and how. */
export async function findExposures(
  files: readonly TrustedFile[],
  workspaces: readonly Workspace[],
): Promise<Exposure[]> {
  const known = await Promise.all(workspaces.map(identify));
  const identities = new Map<string, { dev: number; ino: number } | undefined>();
  const idOf = async (p: string) => {
    if (!identities.has(p))
      identities.set(
        p,
        await lstat(p).then(
          (s) => ({ dev: s.dev, ino: s.ino }),
          () => undefined,
        ),
      );
    return identities.get(p);
  };
  const exposures: Exposure[] = [];
  for (const file of files) {
    const steps = await traversal(file.path);
    let found: Exposure | undefined;
    // The file itself first ("lies inside"), then each folder or symlink on the way to it.
    const last = steps.length - 1;
    for (const i of [last, ...steps.keys()].filter((n) => n >= 0)) {
      const step = steps[i] ?? "";
      // The step is in a workspace when the step or a folder above it lies below one, or when a
      // folder above it is one (under another name: a bind mount, a case-insensitive spelling).
      for (const candidate of ancestors(step)) {
        const id = candidate === step ? undefined : await idOf(candidate);
        // A file directly in a workspace that its bottle binds read-only is out of its reach.
        const shielded = (k: Known) =>
          i === last && k.shields.has(step) && k.paths.includes(dirname(step));
        const w = known.find(
          (k) =>
            !shielded(k) &&
            (k.paths.some((p) => below(candidate, p)) ||
              (id !== undefined && k.id?.dev === id.dev && k.id.ino === id.ino)),
        );
        if (!w) continue;
        const where = `the workspace of ${w.owner} (${w.shown})`;
        found = {
          file,
          why: i === last ? `lies inside ${where}` : `is reached through ${step}, inside ${where}`,
        };
        break;
      }
      if (found) break;
    }
    if (!found) {
      const s = await stat(file.path).catch(() => undefined);
      if (s?.isFile() && s.nlink > 1)
        found = {
          file,
          why: `has ${s.nlink} names (hard links): one of them could be inside a workspace`,
        };
    }
    if (found) exposures.push(found);
  }
  return exposures;
}

export function refuseExposures(exposures: readonly Exposure[]): void {
  if (exposures.length === 0) return;
  throw new RefusedError(
    `bot-bottle will not trust files that a bottle's agent can write:\n${exposures
      .map((e) => `  ${e.file.what} ${e.file.path} ${e.why}`)
      .join("\n")}`,
    "keep the manifest and every file it names outside the workspace: move them out (e.g. to the folder above) and pass -f PATH (or set BOT_BOTTLE_MANIFEST), or pass --cwd a subfolder that contains none of them",
  );
}

/** Before anything is created: none of the plan's trusted files is in its own workspace. */
export async function refuseOwnExposures(plan: BottlePlan): Promise<void> {
  refuseExposures([
    ...(await findExposures(plan.trusted, [ownWorkspace(plan)])),
    ...(await contextExposures(plan, [ownWorkspace(plan)])),
  ]);
}

/**
 * A Dockerfile layer's build context is its whole folder, sent to `docker build`, whose steps run
 * with the host's network: a folder that holds a workspace would let an agent's files into that
 * build (a script a step runs, a file it copies). Each such folder is an exposure.
 */
export async function contextExposures(
  plan: BottlePlan,
  workspaces: readonly Workspace[],
): Promise<Exposure[]> {
  const real = (p: string) => realpath(p).catch(() => resolve(p));
  const out: Exposure[] = [];
  for (const layer of plan.agentContainer.build.layers) {
    const context = await real(dirname(layer.dockerfile));
    for (const w of workspaces) {
      const ws = await real(w.path);
      if (ws === context || ws.startsWith(context + sep))
        out.push({
          file: { what: `the build folder of ${layer.what}`, path: context },
          why: `holds ${w.owner}'s workspace (${w.path}), whose files docker build would be sent — give the Dockerfile a folder of its own`,
        });
    }
  }
  return out;
}

function ownWorkspace(plan: BottlePlan): Workspace {
  return {
    path: plan.workspace.host,
    owner: "this bottle",
    shields: plan.agentContainer.readOnlyFiles.map((f) => f.host),
  };
}

/** A running bottle, as far as trust goes: the folder its agent writes and what it trusts. */
export interface LiveBottle {
  slug: string;
  workspace: string;
  trusted: TrustedFile[];
}

/** The bottles whose bundle is running, with their workspaces and trusted files. */
export async function liveBottles(backends: readonly Backend[]): Promise<LiveBottle[]> {
  const bundles = (await Promise.all(backends.map((b) => b.resources())))
    .flat()
    .filter((r) => r.role === "bundle" && r.state === "running" && r.stateDir);
  const out: LiveBottle[] = [];
  for (const b of bundles) {
    const meta = await readMetadata(b.stateDir);
    if (!meta) continue;
    const trusted = await readFile(join(b.stateDir, TRUSTED_FILE), "utf8").then(
      (t) => JSON.parse(t) as TrustedFile[],
      () => [{ what: "the manifest", path: meta.manifest.file }],
    );
    out.push({ slug: b.slug, workspace: meta.workspace, trusted });
  }
  return out;
}

/**
 * Across bottles: a new bottle may not trust a file that a running bottle's agent can write, nor
 * give its agent a workspace that holds a file a running bottle trusts.
 */
export async function refuseSharedExposures(
  plan: BottlePlan,
  live: readonly LiveBottle[],
): Promise<void> {
  const others = live.filter((b) => b.slug !== plan.slug);
  const exposures = await findExposures(
    plan.trusted,
    others.map((b) => liveWorkspace(b)),
  );
  for (const b of others)
    for (const e of await findExposures(b.trusted, [ownWorkspace(plan)]))
      exposures.push({ ...e, file: { ...e.file, what: `${b.slug}'s ${e.file.what}` } });
  exposures.push(
    ...(await contextExposures(
      plan,
      others.map((b) => liveWorkspace(b)),
    )),
  );
  refuseExposures(exposures);
}

/** A running bottle's workspace, with the files it binds read-only there. */
export function liveWorkspace(b: LiveBottle): Workspace {
  return {
    path: b.workspace,
    owner: `the running bottle ${b.slug}`,
    shields: shieldedFiles(b.trusted, b.workspace),
  };
}
