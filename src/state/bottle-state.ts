/**
 * A bottle's state dir: ${XDG_STATE_HOME:-~/.local/state}/bot-bottle/<slug>/, kept after the
 * bottle stops. It holds metadata.json, the per-bottle CA (key mode 0600), the sidecar config the
 * plan computed, and the logs captured at stop. Every write is atomic.
 */
import { chmod, chown, mkdir, readFile, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { run } from "../exec/run.js";
import { writeFileAtomic, writeJsonAtomic } from "./files.js";

export type BottleStatus = "starting" | "running" | "failed" | "stopped";

export interface BottleMetadata {
  slug: string;
  agent: string;
  bottle: string;
  template: string;
  /** The backend it runs on (plan.backend). */
  backend: string;
  created: string;
  status: BottleStatus;
  /** The CLI process that is starting the bottle, while status is "starting". */
  startPid?: number;
  stopped?: string;
  error?: string;
  workspace: string;
  manifest: { file: string; sha256: string };
  labels: Record<string, string>;
  containers: { agent: string; bundle: string };
  networks: { internal?: string; egress: string };
  /** A forwarded login's file, and the SHA-256 of the refresh token it held at start. */
  login?: { path: string; refreshSha256: string };
  /** The agent's interactive session: what `bot-bottle attach` opens when it is not running. */
  session?: { argv: string[]; workdir: string; user: string };
  /** The cage self-test run by start, from inside the agent, before the agent's command. */
  cage?: CageRecord;
  /** Gitea deploy keys the git gate registers, found again by title at stop and cleanup. */
  deployKeys?: DeployKeyRecord[];
  /** Set once every deploy key is known to be deleted. */
  deployKeysRemoved?: boolean;
}

export interface DeployKeyRecord {
  apiUrl: string;
  repo: string;
  /** The host variable holding a token allowed to delete it. */
  tokenEnv: string;
  title: string;
  extraHosts: Record<string, string>;
}

/** One probe of the cage self-test: where it went, what it should meet, what it met. */
export interface CageProbeRecord {
  name: string;
  target: string;
  expected: "refused" | "answers";
  /** The network error code, "timeout", "connected" or the HTTP answer. */
  result: string;
  ok: boolean;
}

export interface CageRecord {
  checked: string;
  /** Wall time of the self-test's exec, in milliseconds. */
  ms: number;
  passed: boolean;
  /** How many probes out were refused, and how many allowed probes answered. */
  refused: number;
  answered: number;
  probes: CageProbeRecord[];
}

export const METADATA = "metadata.json";

/** The per-bottle CA, made with openssl: an EC P-256 key (0600) and a 30-day CA certificate. */
export async function createCa(dir: string, slug: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, "ca.key");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
    "-out",
    join(dir, "ca.crt"),
    "-days",
    "30",
    "-subj",
    `/CN=bot-bottle ${slug} CA`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  await chmod(key, 0o600);
}

/** What a new state dir holds, as the plan says (BottlePlan has these fields). */
export interface StateSeed {
  slug: string;
  stateDir: string;
  /** Files written, by path relative to the state dir. */
  files: Record<string, string>;
  /** Files copied in: path relative to the state dir -> a host path, or one relative to it. */
  copies: Record<string, string>;
  bundle: { configDir: string; auditDir: string; mirrorDir?: string; uid: number };
}

/** Creates the state dir with the plan's files, the CA and metadata (status "starting"). */
export async function createState(plan: StateSeed, metadata: BottleMetadata): Promise<void> {
  await mkdir(plan.stateDir, { recursive: true, mode: 0o700 });
  await Promise.all([
    createCa(join(plan.stateDir, "ca"), plan.slug),
    ...Object.entries(plan.files).map(([path, text]) =>
      writeFileAtomic(join(plan.stateDir, path), text),
    ),
  ]);
  for (const [path, source] of Object.entries(plan.copies))
    await writeFileAtomic(
      join(plan.stateDir, path),
      await readFile(resolve(plan.stateDir, source)),
    );
  // The bundle runs as an unprivileged user: its config folder must be readable, not writable —
  // and so must the folder the operator's decisions on its requests are written into.
  await chmod(join(plan.stateDir, plan.bundle.configDir), 0o755);
  await mkdir(join(plan.stateDir, plan.bundle.configDir, "decisions"), { mode: 0o755 });
  await chmod(join(plan.stateDir, plan.bundle.configDir, "decisions"), 0o755);
  // …and its audit folder writable by that user alone (by everyone where we cannot chown).
  // (the git gate's mirrors likewise).
  for (const dir of [plan.bundle.auditDir, plan.bundle.mirrorDir]) {
    if (dir === undefined) continue;
    const path = join(plan.stateDir, dir);
    await mkdir(path, { recursive: true, mode: 0o700 });
    await chown(path, plan.bundle.uid, plan.bundle.uid).catch(() => chmod(path, 0o777));
  }
  await writeJsonAtomic(join(plan.stateDir, METADATA), metadata);
}

export async function readMetadata(stateDir: string): Promise<BottleMetadata | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, METADATA), "utf8")) as BottleMetadata;
  } catch {
    return undefined;
  }
}

export async function updateMetadata(
  stateDir: string,
  change: Partial<BottleMetadata>,
): Promise<void> {
  const current = await readMetadata(stateDir);
  if (!current) return;
  const next: BottleMetadata = { ...current, ...change };
  if (next.status !== "starting") delete next.startPid;
  await writeJsonAtomic(join(stateDir, METADATA), next);
}

export async function listStateDirs(root: string): Promise<string[]> {
  try {
    return (await readdir(root, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => join(root, e.name));
  } catch {
    return [];
  }
}
