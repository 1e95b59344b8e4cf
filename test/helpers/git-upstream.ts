/**
 * A real SSH git upstream for the git-gate tests (test/fixtures/git-upstream): the distribution's
 * sshd, user `git` with git-shell as its login shell, bare repositories under /srv/git, in a
 * container of the test's own on a test network. Its ed25519 host key is made when the container
 * first starts (kept across stop and start); the client key pair is made per upstream on the host.
 * The test reads sshd's VERBOSE log back with `docker logs` to show what reached authentication.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { baseImageRef, DEFAULT_SUITE } from "../../src/backends/docker/images.js";
import { run, type RunResult } from "../../src/exec/run.js";

export const GIT_UPSTREAM_IMAGE = "bot-bottle/test-git-upstream:latest";
const FIXTURE = join(import.meta.dirname, "..", "fixtures", "git-upstream");
/** The image label holding the hash of the fixture's files and the base image's id. */
const RECIPE_LABEL = "dev.bot-bottle.test.recipe";

/**
 * sshd (OpenSSH 10, LogLevel VERBOSE) lines that only a client which got past host-key
 * verification can cause. A key login logs `Accepted key ED25519 SHA256:… found at
 * /srv/git/.ssh/authorized_keys:1`, `Postponed publickey for git … [preauth]` (the key offered,
 * not yet signed), the first line again, then `Accepted publickey for git …`. An unknown key logs
 * `Failed publickey for git …` and `Connection closed by authenticating user git …`; a user not
 * allowed `User root … not allowed because …` or `Invalid user nosuch …`, then `… by invalid user
 * …`. A client that refuses the host key (changed or unknown) leaves only `Connection from …` and
 * `Connection closed by <ip> port <port> [preauth]`, which match none of these.
 */
export const AUTH_ATTEMPT =
  /Accepted key |Accepted publickey|Failed publickey|Postponed publickey|Invalid user |invalid user |not allowed because|authenticating user |maximum authentication attempts/;

/** What `createRepo` and `commit` write: paths (may hold `/`) to file contents. */
export type Files = Record<string, string>;

export interface GitUpstreamOptions {
  /** The Docker network it joins. */
  network: string;
  /** Another name it answers to on `network` (e.g. "upstream"); url() and sshUrl() use it. */
  alias?: string;
  /**
   * Runs the container from `docker run` arguments and returns its name, e.g.
   * `(args) => t.container(args)` so TestBottles.teardown removes it. Default: `docker run` here
   * under `name` (else a random one), labelled dev.bot-bottle.test=1; remove() removes it.
   */
  launch?: (args: string[]) => Promise<string>;
  /** The container's name when it is not launched by `launch`. */
  name?: string;
  /**
   * A Docker volume (or a root-owned host folder) mounted read-only at /srv/keys: sshd lets in
   * the keys in its `authorized_keys` too, e.g. the deploy keys a fake Gitea
   * (test/helpers/fake-gitea.ts) writes there.
   */
  keysVolume?: string;
  /** How long the first start may take to listen. */
  timeoutMs?: number;
}

/** The image, built from the offline base unless one from the same fixture and base exists. */
export async function gitUpstreamImage(): Promise<string> {
  const base = baseImageRef(DEFAULT_SUITE);
  const baseId = await inspectImage(base, "{{.Id}}");
  if (!baseId)
    throw new Error(
      `${base} is missing: run \`bot-bottle images base\` first (as TestBottles.setup does)`,
    );
  const hash = createHash("sha256").update(baseId);
  for (const file of (await readdir(FIXTURE)).sort())
    hash.update(`\0${file}\0`).update(await readFile(join(FIXTURE, file)));
  const recipe = hash.digest("hex").slice(0, 16);
  const label = `{{index .Config.Labels "${RECIPE_LABEL}"}}`;
  if ((await inspectImage(GIT_UPSTREAM_IMAGE, label)) === recipe) return GIT_UPSTREAM_IMAGE;
  await run(
    "docker",
    [
      "build",
      "--force-rm",
      "--build-arg",
      `BASE_IMAGE=${base}`,
      "--label",
      "dev.bot-bottle.test=1",
      "--label",
      `${RECIPE_LABEL}=${recipe}`,
      "--tag",
      GIT_UPSTREAM_IMAGE,
      FIXTURE,
    ],
    { timeoutMs: 10 * 60_000 },
  );
  return GIT_UPSTREAM_IMAGE;
}

/** `docker image inspect --format <format>` of `ref`, or "" when there is no such image. */
async function inspectImage(ref: string, format: string): Promise<string> {
  const r = await run("docker", ["image", "inspect", "--format", format, ref], {
    okExitCodes: [0, 1],
  });
  return r.exitCode === 0 ? r.stdout.trim() : "";
}

/**
 * Starts an upstream on `options.network` that lets in a client key made here, and resolves once
 * sshd listens. A start that fails is rolled back (container and key removed).
 */
export async function startGitUpstream(options: GitUpstreamOptions): Promise<GitUpstream> {
  const image = await gitUpstreamImage();
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-git-upstream-"));
  let container = "";
  try {
    // ssh-keygen writes the private key with mode 0600; no comment, so no host name leaks in.
    const clientKeyPath = join(dir, "id_ed25519");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "", "-f", clientKeyPath]);
    const clientPublicKey = (await readFile(`${clientKeyPath}.pub`, "utf8")).trim();
    const args = [
      "--network",
      options.network,
      ...(options.alias ? ["--network-alias", options.alias] : []),
      ...(options.keysVolume ? ["--volume", `${options.keysVolume}:/srv/keys:ro`] : []),
      // A public key: nothing secret rides on argv.
      "--env",
      `AUTHORIZED_KEYS=${clientPublicKey}`,
      image,
    ];
    if (options.launch) container = await options.launch(args);
    else {
      container = options.name ?? `bot-bottle-test-upstream-${randomBytes(3).toString("hex")}`;
      await run("docker", [
        "run",
        "--detach",
        "--name",
        container,
        "--label",
        "dev.bot-bottle.test=1",
        ...args,
      ]);
    }
    await waitListening(container, 0, options.timeoutMs ?? 20_000);
    const { stdout } = await run("docker", ["logs", container]);
    const hostKey = /^HOSTKEY (ssh-ed25519 \S+)$/m.exec(stdout)?.[1];
    if (!hostKey) throw new Error(`the git upstream ${container} printed no HOSTKEY line`);
    return new GitUpstream(
      container,
      options.alias ?? container,
      hostKey,
      clientKeyPath,
      clientPublicKey,
      dir,
    );
  } catch (err) {
    if (container) await run("docker", ["rm", "-f", container], { okExitCodes: [0, 1] });
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** How many times sshd in `container` has said it listens (once per start: AddressFamily inet). */
async function listenCount(container: string): Promise<number> {
  const { stderr } = await run("docker", ["logs", container]);
  return stderr.split("\n").filter((l) => l.startsWith("Server listening on ")).length;
}

/** Waits until sshd in `container` has said it listens more than `seen` times. */
async function waitListening(container: string, seen: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await listenCount(container)) > seen) return;
    const { stdout: state } = await run("docker", [
      "inspect",
      "--format",
      "{{.State.Status}}",
      container,
    ]);
    if (state.trim() !== "running" || Date.now() > deadline) {
      const { stdout, stderr } = await run("docker", ["logs", container]);
      const last = [...stdout.split("\n"), ...stderr.split("\n")].filter((l) => l.trim()).pop();
      throw new Error(
        `the git upstream in ${container} did not listen on :22 within ${timeoutMs / 1000} s ` +
          `(container ${state.trim()}); last log line: ${last ?? "(none)"}`,
      );
    }
    await sleep(100);
  }
}

/**
 * A running upstream. Repository `name` is the bare repo /srv/git/<name>.git, reached as
 * url(name) (`git@<host>:<name>.git`, relative to git's home) or sshUrl(name)
 * (`ssh://git@<host>/srv/git/<name>.git`); both name the same repo.
 */
export class GitUpstream {
  constructor(
    /** The container's name. */
    readonly container: string,
    /** The name other containers on the network dial: the alias when one was asked for. */
    readonly host: string,
    /** The host key to pin: `ssh-ed25519 AAAA…`, no comment. */
    readonly hostKey: string,
    /** The client's private key on the host (mode 0600), which the upstream lets in as git. */
    readonly clientKeyPath: string,
    /** Its public key line, as in authorized_keys. */
    readonly clientPublicKey: string,
    private readonly dir: string,
  ) {}

  url(repo: string): string {
    return `git@${this.host}:${repo}.git`;
  }

  sshUrl(repo: string): string {
    return `ssh://git@${this.host}/srv/git/${repo}.git`;
  }

  /** A known_hosts line pinning hostKey under host. */
  knownHosts(): string {
    return `${this.host} ${this.hostKey}`;
  }

  /** Runs `argv` in the container as `user` (git by default, who owns the repos). */
  exec(argv: string[], user = "git", okExitCodes: readonly number[] = [0]): Promise<RunResult> {
    return run("docker", ["exec", "--user", user, this.container, ...argv], { okExitCodes });
  }

  /** A bare repo with one commit of `files` on `branch`, which HEAD names; its commit id. */
  async createRepo(
    name: string,
    options: { branch?: string; files?: Files } = {},
  ): Promise<string> {
    const branch = options.branch ?? "main";
    await this.exec([
      "git",
      "init",
      "--quiet",
      "--bare",
      "--initial-branch",
      branch,
      this.path(name),
    ]);
    return this.commit(name, {
      branch,
      files: options.files ?? { "README.md": `# ${name}\n` },
      message: "initial commit",
    });
  }

  /**
   * Adds a commit of `files` (over the branch's tree) to `branch` as if someone else had pushed;
   * its commit id. A missing branch starts from HEAD's commit (from nothing in an empty repo).
   * Made with plumbing on a temporary index: no work tree.
   */
  async commit(
    name: string,
    options: { branch?: string; files: Files; message?: string },
  ): Promise<string> {
    const { stdout } = await this.exec([
      "sh",
      "-c",
      COMMIT_SCRIPT,
      "commit",
      this.path(name),
      options.branch ?? "main",
      options.message ?? "upstream change",
      ...Object.entries(options.files).flat(),
    ]);
    return stdout.trim();
  }

  /** Every ref and its object id, and `HEAD`: `ref: refs/heads/<branch>` (its symref). */
  async refs(name: string): Promise<Record<string, string>> {
    const repo = this.path(name);
    const [refs, head] = await Promise.all([
      this.exec(["git", "-C", repo, "for-each-ref", "--format=%(refname) %(objectname)"]),
      this.exec(["git", "-C", repo, "symbolic-ref", "--quiet", "HEAD"], "git", [0, 1]),
    ]);
    const out: Record<string, string> = {};
    if (head.stdout.trim()) out["HEAD"] = `ref: ${head.stdout.trim()}`;
    for (const line of refs.stdout.split("\n").filter(Boolean)) {
      const [ref = "", id = ""] = line.split(" ");
      out[ref] = id;
    }
    return out;
  }

  /**
   * Every object id in the repo, reachable or not, sorted: the same list before and after a
   * refused push means nothing of it landed.
   */
  async objects(name: string): Promise<string[]> {
    const { stdout } = await this.exec([
      "git",
      "-C",
      this.path(name),
      "cat-file",
      "--batch-all-objects",
      "--batch-check=%(objectname)",
    ]);
    return stdout.split("\n").filter(Boolean).sort();
  }

  /** sshd's log (the container's stderr), across every start. */
  async authLog(): Promise<string> {
    return (await run("docker", ["logs", this.container])).stderr;
  }

  /**
   * The log lines that prove a client reached authentication (AUTH_ATTEMPT), in order; compare
   * its length before and after to show a refused host key stopped a client before it.
   */
  async authAttempts(): Promise<string[]> {
    return (await this.authLog()).split("\n").filter((l) => AUTH_ATTEMPT.test(l));
  }

  /** The log lines `Connection from <ip> port <port> on …`: one per TCP connection sshd took. */
  async connections(): Promise<string[]> {
    return (await this.authLog()).split("\n").filter((l) => l.startsWith("Connection from "));
  }

  /** `docker stop`: the name stops resolving and nothing listens, until start(). */
  async stop(): Promise<void> {
    await run("docker", ["stop", "--time", "10", this.container]);
  }

  /** `docker start` with the same host key and repos; resolves once sshd listens again. */
  async start(timeoutMs = 20_000): Promise<void> {
    const seen = await listenCount(this.container);
    await run("docker", ["start", this.container]);
    await waitListening(this.container, seen, timeoutMs);
  }

  /** Removes the container and the client key. */
  async remove(): Promise<void> {
    await run("docker", ["rm", "-f", this.container], { okExitCodes: [0, 1] });
    await rm(this.dir, { recursive: true, force: true });
  }

  private path(name: string): string {
    return `/srv/git/${name}.git`;
  }
}

/**
 * `sh -c` script of commit(): args repo, branch, message, then path and content pairs. Contents
 * go through argv, not a shell string, so any text is written as it is.
 */
const COMMIT_SCRIPT = `set -eu
repo=$1 branch=$2 message=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GIT_DIR="$repo" GIT_INDEX_FILE="$tmp/index"
parent=$(git rev-parse --quiet --verify "refs/heads/$branch^{commit}" ||
  git rev-parse --quiet --verify "HEAD^{commit}" || true)
if [ -n "$parent" ]; then git read-tree "$parent"; else git read-tree --empty; fi
while [ $# -gt 1 ]; do
  blob=$(printf '%s' "$2" | git hash-object -w --stdin)
  git update-index --add --cacheinfo "100644,$blob,$1"
  shift 2
done
tree=$(git write-tree)
if [ -n "$parent" ]; then
  commit=$(git commit-tree "$tree" -p "$parent" -m "$message")
else
  commit=$(git commit-tree "$tree" -m "$message")
fi
git update-ref "refs/heads/$branch" "$commit"
echo "$commit"
`;
