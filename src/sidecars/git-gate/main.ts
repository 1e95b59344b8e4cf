/**
 * The git gate, as init starts it inside the bundle: prepares its own git and SSH config (fixed,
 * the operator's: no hooks, filters or attributes from pushed content), writes each upstream's key
 * to the bundle's tmpfs (0600), creates the mirrors, and runs `git daemon` serving exactly the
 * declared repositories. Every fetch first refreshes its mirror from the upstream (access hook);
 * every push is scanned and forwarded before the mirror takes it (pre-receive hook). Both hooks
 * run here, in this process, called over a unix socket (hooks.ts).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ConfigFileError } from "../../shared/config-file.js";
import {
  parseGitGateConfig,
  type GitGateConfig,
  type GitGateRepo,
} from "../../shared/git-gate-config.js";
import { addDeployKey, deleteDeployKeys, type GiteaTarget } from "../../shared/gitea.js";
import { BUNDLE_ROOT } from "../../shared/init-config.js";
import { createLogger } from "../log.js";
import {
  EMPTY_TREE,
  GATE_HOME,
  git,
  grantFile,
  readGrant,
  gitEnv,
  MIRRORS,
  mirrorOf,
  audit,
  CONFIG_PATH,
  remoteOf,
  sshAlias,
} from "./gate.js";
import { access } from "./access.js";
import { serveHooks } from "./hooks.js";
import { preReceive } from "./pre-receive.js";
import { runCommand, startDaemon, type ChildProcess } from "./process.js";

type GiteaKey = Extract<
  Extract<GitGateRepo["upstream"], { kind: "ssh" }>["key"],
  { provider: "gitea" }
>;

const HOOKS = process.env["BOT_BOTTLE_GIT_GATE_HOOKS"] ?? `${BUNDLE_ROOT}/git-gate-hooks`;
/** Where the hooks call the gate: in its private home, so only the gate's user can. */
const HOOK_SOCKET = join(GATE_HOME, "hooks.sock");

function readConfig(): GitGateConfig {
  try {
    return parseGitGateConfig(readFileSync(CONFIG_PATH, "utf8"), CONFIG_PATH);
  } catch (err) {
    const slug = process.env["BOT_BOTTLE_SLUG"] ?? "unknown";
    createLogger(slug, "git-gate", (line) => {
      writeSync(1, line);
      return true;
    })("config-invalid", `${err instanceof Error ? err.message : String(err)}: serving nothing`, {
      ...(err instanceof ConfigFileError ? { problems: err.problems } : {}),
    });
    process.exit(1);
  }
}

/** What the gate serves now: replaced, whole, by a reload (SIGHUP) that succeeds. */
let config = readConfig();
const log = createLogger(config.slug, "git-gate");

/** A config-file string value: git's quoting, so no value can open a section or a new key. */
function quoted(value: string): string {
  if (/[\n\r\0]/.test(value)) throw new Error("a config value holds a line break");
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** The gate's only git config: what every git it runs reads (GIT_CONFIG_NOSYSTEM, no user file). */
function gitConfig(): string {
  const https = config.repos.flatMap((r) => (r.upstream.kind === "https" ? [r] : []));
  const lines = [
    "[core]",
    `\thooksPath = ${quoted(HOOKS)}`,
    `\tattributesFile = ${quoted("/dev/null")}`,
    `\tsshCommand = ${quoted(`ssh -F ${join(GATE_HOME, "ssh_config")}`)}`,
    "\tfsmonitor = false",
    "[attr]",
    `\ttree = ${EMPTY_TREE}`,
    "[receive]",
    "\tfsckObjects = true",
    `\tmaxInputSize = ${config.limits.maxPackBytes}`,
    "\tautogc = false",
    "\tadvertisePushOptions = false",
    "\tshallowUpdate = false",
    "[transfer]",
    "\tfsckObjects = true",
    "[fetch]",
    "\tfsckObjects = false",
    "[gc]",
    "\tauto = 0",
    "[protocol]",
    "\tallow = never",
    '[protocol "ssh"]',
    "\tallow = always",
    '[protocol "https"]',
    "\tallow = always",
    "[credential]",
    "\tinteractive = never",
    // Each HTTPS repository has its own token: credentials are matched on the whole URL.
    "\tuseHttpPath = true",
    "[http]",
    ...(config.trustCaFile ? [`\tsslCAInfo = ${quoted(config.trustCaFile)}`] : []),
    "\tsslVerify = true",
    ...Object.entries(config.extraHosts).flatMap(([host, ip]) =>
      https
        .filter((r) => r.upstream.host === host)
        .map((r) => `\tcurloptResolve = ${quoted(`${host}:${r.upstream.port}:${ip}`)}`),
    ),
    // An HTTPS upstream's token: read when git asks, from the bundle's environment or, for one
    // an operator granted, from the gate's private home; never written into this config.
    ...https.flatMap((r) => {
      if (r.upstream.kind !== "https") return [];
      const value = r.upstream.tokenGranted
        ? `"$(cat ${grantFile(r, "token")})"`
        : r.upstream.tokenEnv
          ? `"$${r.upstream.tokenEnv}"`
          : undefined;
      return value
        ? [
            `[credential ${quoted(remoteOf(r))}]`,
            `\tusername = ${quoted(r.upstream.username)}`,
            `\thelper = ${quoted(`!f() { test "$1" = get && printf 'password=%s\\n' ${value}; }; f`)}`,
          ]
        : [];
    }),
  ];
  return lines.join("\n") + "\n";
}

/** One host alias per SSH upstream: its key, exactly its pinned host key, never a prompt. */
function sshConfig(): string {
  const blocks = config.repos.flatMap((r) => {
    const u = r.upstream;
    if (u.kind !== "ssh") return [];
    return [
      [
        `Host ${sshAlias(r)}`,
        `  HostName ${config.extraHosts[u.host] ?? u.host}`,
        `  Port ${u.port}`,
        `  User ${u.user}`,
        `  IdentityFile ${join(GATE_HOME, "keys", r.name)}`,
        "  IdentitiesOnly yes",
        `  HostKeyAlias bot-bottle-${r.name}`,
        `  UserKnownHostsFile ${join(GATE_HOME, "known_hosts", r.name)}`,
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  UpdateHostKeys no",
        "  CheckHostIP no",
        "  BatchMode yes",
        "  PasswordAuthentication no",
        "  KbdInteractiveAuthentication no",
        "  ConnectTimeout 10",
        "  ServerAliveInterval 15",
        "  ControlMaster auto",
        `  ControlPath ${join(GATE_HOME, "cm-%C")}`,
        "  ControlPersist 60",
      ].join("\n"),
    ];
  });
  return ["# bot-bottle git gate: one alias per declared upstream", ...blocks, ""].join("\n\n");
}

/** Where a Gitea-provided key is registered, with the bundle's token for it. */
function giteaTarget(key: GiteaKey): GiteaTarget {
  const token = process.env[key.tokenEnv];
  if (!token)
    throw new Error(`${key.tokenEnv} (the Gitea token for ${key.repo}) is unset in the bundle`);
  return {
    apiUrl: key.apiUrl,
    repo: key.repo,
    token,
    extraHosts: config.extraHosts,
    ...(config.trustCaFile ? { ca: readFileSync(config.trustCaFile, "utf8") } : {}),
  };
}

/** Gitea deploy keys this run registered: deleted at stop. */
const registered: GiteaKey[] = [];

/**
 * Writes the private key an SSH upstream is reached with: the operator's, from the bundle's
 * environment; or, for Gitea, a key pair made now whose public half becomes the repository's
 * deploy key (any left by an earlier run of this gate are deleted first).
 */
async function writeKey(r: GitGateRepo): Promise<void> {
  if (r.upstream.kind !== "ssh") return;
  const file = join(GATE_HOME, "keys", r.name);
  const key = r.upstream.key;
  if (key.provider === "static" || key.provider === "granted") {
    const value = key.provider === "static" ? process.env[key.env] : readGrant(r, "key", "the key");
    if (!value)
      throw new Error(
        key.provider === "static"
          ? `${key.env} (the key for ${r.name}) is unset in the bundle`
          : `the key granted for ${r.name} is empty`,
      );
    writeFileSync(file, value.endsWith("\n") ? value : value + "\n", { mode: 0o600 });
    return;
  }
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  const made = await runCommand(
    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.title, "-f", file],
    { env: gitEnv() },
  );
  if (made.code !== 0) throw new Error(`ssh-keygen: ${made.stderr.trim()}`);
  const target = giteaTarget(key);
  await deleteDeployKeys(target, key.title);
  const id = await addDeployKey(target, key.title, readFileSync(`${file}.pub`, "utf8").trim());
  registered.push(key);
  log("deploy-key", `registered deploy key ${id} ("${key.title}") on ${key.repo}`);
}

async function removeDeployKeys(): Promise<void> {
  for (const key of registered.splice(0))
    try {
      const n = await deleteDeployKeys(giteaTarget(key), key.title);
      log("deploy-key", `deleted ${n} deploy key(s) "${key.title}" from ${key.repo}`);
    } catch (err) {
      log(
        "deploy-key-failed",
        `could not delete the deploy key "${key.title}" from ${key.repo}: ${(err as Error).message} (\`bot-bottle cleanup\` tries again)`,
      );
    }
}

async function prepareMirror(r: GitGateRepo): Promise<void> {
  const dir = mirrorOf(r);
  if (!existsSync(join(dir, "HEAD"))) {
    mkdirSync(dir, { recursive: true });
    const made = await git(dir, ["init", "--quiet", "--bare", "--initial-branch=main", "."]);
    if (made.code !== 0) throw new Error(`git init ${dir}: ${made.stderr.trim()}`);
  }
  // The mirror's own config holds nothing but what the gate needs; rewritten at every start.
  writeFileSync(
    join(dir, "config"),
    [
      "[core]",
      "\trepositoryformatversion = 0",
      "\tbare = true",
      "\tlogallrefupdates = false",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "git-daemon-export-ok"), "");
}

/** Writes the gate's git and SSH config for what it serves now, and readies `repos`. */
async function prepare(repos: readonly GitGateRepo[]): Promise<void> {
  for (const sub of ["", "keys", "known_hosts", "xdg"])
    mkdirSync(join(GATE_HOME, sub), { recursive: true, mode: 0o700 });
  writeFileSync(join(GATE_HOME, "gitconfig"), gitConfig(), { mode: 0o600 });
  writeFileSync(join(GATE_HOME, "ssh_config"), sshConfig(), { mode: 0o600 });
  for (const r of repos) {
    if (r.upstream.kind !== "ssh") continue;
    await writeKey(r);
    writeFileSync(
      join(GATE_HOME, "known_hosts", r.name),
      `bot-bottle-${r.name} ${r.upstream.knownHostKey.trim()}\n`,
      { mode: 0o600 },
    );
  }
  mkdirSync(MIRRORS, { recursive: true });
  await Promise.all(repos.map(prepareMirror));
}

/** The times grants end: each one's end is audited as it comes. */
let grantTimers: NodeJS.Timeout[] = [];

/** Audits the grants `next` begins (against `previous`), and schedules the audit of their ends. */
function auditGrants(previous: GitGateConfig | undefined, next: GitGateConfig): void {
  for (const t of grantTimers) clearTimeout(t);
  grantTimers = [];
  const before = new Map(previous?.repos.map((r) => [r.name, r]));
  for (const r of next.repos) {
    if (!r.grant) continue;
    if (before.get(r.name)?.grant !== r.grant || before.get(r.name)?.expires !== r.expires)
      audit({
        repo: r.name,
        op: "grant",
        decision: "allow",
        tag: "granted",
        reason: `${r.display} granted by request ${r.grant}${r.expires ? ` until ${r.expires}` : ""}`,
        ms: 0,
      });
    if (r.expires) {
      const end = Date.parse(r.expires);
      const ended = () =>
        audit({
          repo: r.name,
          op: "grant",
          decision: "refuse",
          tag: "grant-ended",
          reason: `the grant of ${r.display} (request ${r.grant}) ended at ${r.expires}`,
          ms: 0,
        });
      const wait = (): void => {
        const left = end - Date.now();
        if (left <= 0) return ended();
        grantTimers.push(setTimeout(wait, Math.min(left, 2 ** 31 - 1)));
      };
      if (end > Date.now()) wait();
    }
  }
}

/** The running git daemon; replaced when a reload changes what is served. */
let daemon: ChildProcess | undefined;
let stopping = false;

/** Starts git daemon serving exactly the mirrors of what the gate serves now. */
function startGitDaemon(): ChildProcess {
  const child = startDaemon(
    [
      "git",
      "daemon",
      "--reuseaddr",
      "--listen=0.0.0.0",
      `--port=${config.port}`,
      "--strict-paths",
      `--base-path=${MIRRORS}`,
      "--enable=receive-pack",
      "--forbid-override=receive-pack",
      "--forbid-override=upload-pack",
      "--disable=upload-archive",
      `--access-hook=${join(HOOKS, "access")}`,
      "--informative-errors",
      "--max-connections=32",
      "--init-timeout=30",
      "--timeout=600",
      // With --strict-paths only these exact folders are served (the root alone is no repository).
      ...(config.repos.length > 0 ? config.repos.map(mirrorOf) : [MIRRORS]),
    ],
    { ...gitEnv(), BOT_BOTTLE_GIT_GATE_SOCKET: HOOK_SOCKET },
  );
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (text: string) => {
    for (const raw of text.split("\n").filter((l) => l.trim())) {
      const line = raw.replace(/^\[\d+\] /, "");
      log("daemon", line);
      // git daemon refuses a path it does not serve before any hook runs: audited here.
      // Its lines about a path ("'/x.git': aliased", "'/x.git': not in whitelist", "… at '…'")
      // are each a refusal.
      const refused =
        /^'([^']*)'[: ]/.exec(line) ?? /(?:repository|directory) at '([^']*)'/.exec(line);
      if (refused)
        audit({
          repo: (refused[1] ?? "").replace(/^.*\//, "").replace(/\.git$/, "") || "(none)",
          op: "connect",
          decision: "refuse",
          tag: "undeclared",
          reason: `${refused[1] ?? ""} is not a repository of this bottle`,
          ms: 0,
        });
    }
  });
  child.on("exit", (code, signal) => {
    // A git daemon replaced by a reload ends here too; only the current one's end is the gate's.
    if (child !== daemon) return;
    log("exit", `git daemon ended (${signal ?? code})`);
    process.exit(stopping ? 0 : (code ?? 1));
  });
  return child;
}

function serving(): string {
  return config.repos.map((r) => `${r.name} (${r.display})`).join(", ") || "nothing";
}

async function serve(): Promise<void> {
  await serveHooks(
    HOOK_SOCKET,
    () => config,
    { access, "pre-receive": preReceive },
    (message) => log("hook-refused", message),
  );
  daemon = startGitDaemon();
  auditGrants(undefined, config);
  const stop = () => {
    stopping = true;
    void removeDeployKeys().finally(() => daemon?.kill("SIGTERM"));
  };
  process.removeAllListeners("SIGTERM");
  process.removeAllListeners("SIGINT");
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  let reloads = Promise.resolve();
  process.on("SIGHUP", () => {
    reloads = reloads.then(reload);
  });
  log("listen", `git gate serving ${serving()} on :${config.port}`, {
    generation: config.generation ?? 0,
  });
}

/**
 * SIGHUP: the config is read again and, when valid and every new repository is ready (its key,
 * its pinned host key, its mirror), served from then on; git daemon is restarted only when the
 * set of repositories changed (connections in flight finish on the old one). Otherwise the gate
 * keeps serving what it served, and says why.
 */
async function reload(): Promise<void> {
  const previous = config;
  let next: GitGateConfig;
  try {
    next = parseGitGateConfig(readFileSync(CONFIG_PATH, "utf8"), CONFIG_PATH);
  } catch (err) {
    log("reload-failed", `${(err as Error).message}: still serving ${serving()}`);
    return;
  }
  const had = new Set(previous.repos.map((r) => r.name));
  const added = next.repos.filter((r) => !had.has(r.name));
  config = next;
  try {
    await prepare(added);
  } catch (err) {
    config = previous;
    await prepare([]).catch(() => undefined);
    log("reload-failed", `${(err as Error).message}: still serving ${serving()}`, {
      generation: next.generation ?? 0,
    });
    return;
  }
  auditGrants(previous, next);
  const same =
    next.repos.length === previous.repos.length && next.repos.every((r) => had.has(r.name));
  if (!same) {
    const old = daemon;
    daemon = undefined;
    old?.kill("SIGTERM");
    await new Promise((r) => (old && old.exitCode === null ? old.once("exit", r) : r(undefined)));
    daemon = startGitDaemon();
  }
  log("reload", `git gate serving ${serving()} on :${config.port}`, {
    generation: config.generation ?? 0,
  });
}

// Stopped while preparing: what was registered goes before the process does.
const early = () => void removeDeployKeys().finally(() => process.exit(0));
process.on("SIGTERM", early);
process.on("SIGINT", early);

prepare(config.repos)
  .then(serve)
  .catch(async (err: unknown) => {
    log("start-failed", err instanceof Error ? err.message : String(err));
    await removeDeployKeys();
    process.exit(1);
  });
