/**
 * bench/git-gate: what the git gate costs, next to git without it, measured in this run on a
 * generated repository (default 5,000 commits, made with `git fast-import`):
 *  1. a clone inside a real bottle (`bot-bottle exec … git clone <upstream URL>`, served by the
 *     gate, which refreshes its mirror from the upstream first), against a `git daemon` clone of
 *     the same repository from a container of the bench's own plus one `git fetch` over SSH from
 *     the upstream (what the gate's refresh is): both on the same kind of Docker network; for
 *     reference, a clone of a copy without the upstream's reachability bitmap (a mirror has none);
 *  2. a one-commit push through the gate (checks, scan, forward over SSH), against a
 *     `git push` over SSH from a client container straight to the upstream;
 *  3. the gate's scan (scanPush, in process, with the bundle's gitleaks) of a push of N MB of new
 *     text, in MB/s of diff.
 * Each time is taken inside the container that runs git (`date +%s%N` around the command), so
 * neither `bot-bottle exec` nor `docker exec` is in it. The upstream is sshd with git-shell
 * (test/helpers/git-upstream.ts). Prints figures and ratios; never passes or fails.
 *   npm run bench:git-gate [-- --runs N] [--commits N] [--scan-mb N]
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { run } from "../src/exec/run.js";
import { GIT_AUDIT_FILE, parseGitAuditRecord } from "../src/shared/git-gate-config.js";
import type { ScanResult } from "../src/sidecars/git-gate/scan.js";
import { TestBottles } from "../test/helpers/bottles.js";
import { GIT_UPSTREAM_IMAGE, startGitUpstream } from "../test/helpers/git-upstream.js";
import { BUNDLE_IMAGE, gitleaksBinary } from "../test/helpers/gitleaks.js";

const { values: flags } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    commits: { type: "string", default: "5000" },
    "scan-mb": { type: "string", default: "32" },
  },
});
const RUNS = Number(flags.runs);
const COMMITS = Number(flags.commits);
const SCAN_MB = Number(flags["scan-mb"]);
for (const [name, n] of [
  ["--runs", RUNS],
  ["--commits", COMMITS],
  ["--scan-mb", SCAN_MB],
] as const)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a whole number ≥ 1`);

const FILES = 200;
const LINES = 40;
/** Where the bottle's agent finds the repository: its upstream URL, rewritten to the gate. */
const UPSTREAM = "git@github.com:big.git";
/** The fetch the gate's refresh makes into its mirror, made the same way by the baseline. */
const refresh = (dir: string) =>
  `git -C ${dir} fetch --prune --no-tags --quiet git@upstream:big.git '+refs/heads/*:refs/heads/*' '+refs/tags/*:refs/tags/*'`;
/** The bench's own git on the host: no system or user config, a fixed identity. */
const HOST_GIT: NodeJS.ProcessEnv = {
  PATH: process.env["PATH"],
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Bench",
  GIT_AUTHOR_EMAIL: "bench@example.test",
  GIT_COMMITTER_NAME: "Bench",
  GIT_COMMITTER_EMAIL: "bench@example.test",
};

const say = (line: string) => process.stderr.write(`bench/git-gate: ${line}\n`);
const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median =
    s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}

/** A line of code-like text that no secret rule takes for a credential. */
function codeLine(file: number, line: number, revision: number): string {
  return `export const value${line} = compute("module${file}", ${line}, ${revision}); // revision ${revision} of line ${line}`;
}

/**
 * A `git fast-import` stream: `commits` commits on main, the first adding FILES files of LINES
 * lines, each later one changing one line in each of three files.
 */
function fastImportStream(commits: number): string {
  const files = Array.from({ length: FILES }, (_, f) =>
    Array.from({ length: LINES }, (_, l) => codeLine(f, l, 0)),
  );
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  const parts: string[] = [];
  for (let c = 1; c <= commits; c++) {
    const touched =
      c === 1
        ? files.keys()
        : new Set([(c * 7) % FILES, (c * 13 + 1) % FILES, (c * 31 + 2) % FILES]);
    parts.push(
      `commit refs/heads/main\nmark :${c}\ncommitter Bench <bench@example.test> ${1_600_000_000 + c * 60} +0000\n`,
      data(`change ${c}\n`),
      c > 1 ? `from :${c - 1}\n` : "",
    );
    for (const f of touched) {
      const lines = files[f] as string[];
      if (c > 1) lines[c % LINES] = codeLine(f, c % LINES, c);
      parts.push(`M 100644 inline src/mod${f % 10}/file${f}.ts\n`, data(lines.join("\n") + "\n"));
    }
  }
  return parts.join("");
}

/** Seconds a script's timed part took, from the `elapsed_ns=` line it printed. */
function elapsedOf(stdout: string, what: string): number {
  const ns = /^elapsed_ns=(\d+)$/m.exec(stdout)?.[1];
  if (!ns) throw new Error(`${what}: no timing in its output:\n${stdout.slice(-500)}`);
  return Number(ns) / 1e9;
}

/** A shell script that runs `setup`, then `timed` between two clock readings. */
const timedScript = (setup: string, timed: string) =>
  `set -e; ${setup}\ns=$(date +%s%N); ${timed}\ne=$(date +%s%N); echo "elapsed_ns=$((e - s))"`;

/** `later` collects what teardown does not know of, to remove it with the rest. */
async function main(t: TestBottles, later: (() => Promise<unknown>)[]): Promise<void> {
  await t.setup({});
  const agent = t.agent("gitbench");
  const net = await t.network([]);
  const upstream = await startGitUpstream({
    network: net,
    alias: "upstream",
    launch: (a) => t.container(a),
  });
  // Its container is teardown's; its client key folder is not.
  later.push(() => upstream.remove());
  const upstreamIp = await t.ip(upstream.container, net);

  // --- the repository -------------------------------------------------------------------------
  const bare = join(t.dir, "big.git");
  say(`generating a repository of ${COMMITS} commits with git fast-import…`);
  const generating = process.hrtime.bigint();
  await run("git", ["init", "--quiet", "--bare", "--initial-branch=main", bare], { env: HOST_GIT });
  await run("git", ["-C", bare, "fast-import", "--quiet"], {
    env: HOST_GIT,
    input: fastImportStream(COMMITS),
    timeoutMs: 10 * 60_000,
  });
  await run("git", ["-C", bare, "repack", "-a", "-d", "-q"], {
    env: HOST_GIT,
    timeoutMs: 10 * 60_000,
  });
  const generated = seconds(generating);
  const packKb = Number((await run("du", ["-sk", join(bare, "objects")])).stdout.split("\t")[0]);
  const objectCount = (
    await run("git", ["-C", bare, "count-objects", "-v"], { env: HOST_GIT })
  ).stdout.match(/^in-pack: (\d+)$/m)?.[1];
  // The same repository without its reachability bitmap (as a fetched mirror has none), served
  // beside it: what the bitmap is worth to a clone, to read the gate's figure against.
  const plain = join(t.dir, "plain.git");
  await run("cp", ["-a", bare, plain]);
  for (const f of await readdir(join(plain, "objects", "pack")))
    if (f.endsWith(".bitmap")) await rm(join(plain, "objects", "pack", f));
  // A writable copy the baseline daemon takes pushes into: git's own receive, with no hook.
  const sink = join(t.dir, "sink.git");
  await run("cp", ["-a", bare, sink]);
  await run("docker", ["cp", bare, `${upstream.container}:/srv/git/big.git`]);
  await upstream.exec(["chown", "-R", "git:git", "/srv/git/big.git"], "root");

  // --- the baseline: git daemon over the same repository, and a client -------------------------
  const daemon = await t.container([
    "--network",
    net,
    "--network-alias",
    "daemon",
    "--volume",
    `${bare}:/srv/daemon/big.git:ro`,
    "--volume",
    `${plain}:/srv/daemon/plain.git:ro`,
    "--volume",
    `${sink}:/srv/daemon/sink.git`,
    "--entrypoint",
    "git",
    GIT_UPSTREAM_IMAGE,
    "-c",
    "safe.directory=*",
    // As the gate's mirrors: every pushed object checked.
    "-c",
    "receive.fsckObjects=true",
    "daemon",
    "--enable=receive-pack",
    "--reuseaddr",
    "--listen=0.0.0.0",
    "--base-path=/srv/daemon",
    "--export-all",
  ]);
  const keys = join(t.dir, "client-keys");
  await mkdir(keys);
  await run("cp", [upstream.clientKeyPath, join(keys, "id")]);
  await writeFile(join(keys, "known_hosts"), upstream.knownHosts() + "\n");
  // The SSH options the gate's own config gives its upstream (a shared connection included).
  const ssh = [
    "ssh -i /keys/id -o IdentitiesOnly=yes -o UserKnownHostsFile=/keys/known_hosts",
    "-o StrictHostKeyChecking=yes -o BatchMode=yes",
    "-o ControlMaster=auto -o ControlPath=/tmp/cm-%C -o ControlPersist=60",
  ].join(" ");
  const client = await t.container([
    "--network",
    net,
    "--volume",
    `${keys}:/keys:ro`,
    "--env",
    `GIT_SSH_COMMAND=${ssh}`,
    ...["NAME", "EMAIL"].flatMap((k) => [
      "--env",
      `GIT_AUTHOR_${k}=${k === "NAME" ? "Direct" : "direct@example.test"}`,
      "--env",
      `GIT_COMMITTER_${k}=${k === "NAME" ? "Direct" : "direct@example.test"}`,
    ]),
    "--entrypoint",
    "sleep",
    GIT_UPSTREAM_IMAGE,
    "infinity",
  ]);
  const inClient = async (setup: string, timed: string) => {
    const r = await run("docker", ["exec", client, "sh", "-c", timedScript(setup, timed)], {
      timeoutMs: 10 * 60_000,
    });
    return elapsedOf(r.stdout, `client: ${timed}`);
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const probe = await run(
      "docker",
      ["exec", client, "git", "ls-remote", "git://daemon/big.git", "HEAD"],
      { okExitCodes: [0, 128] },
    );
    if (probe.exitCode === 0) break;
    if (Date.now() > deadline)
      throw new Error(`git daemon in ${daemon} did not serve big.git within 20 s: ${probe.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // --- the bottle -------------------------------------------------------------------------------
  await writeFile(
    t.manifest,
    JSON.stringify({
      agents: {
        [agent]: {
          template: "shell",
          bottle: "gated",
          git_user: { name: "Agent", email: "agent@example.test" },
        },
      },
      bottles: {
        gated: {
          egress: { network: net },
          git: [
            {
              name: "big",
              upstream: UPSTREAM,
              known_host_key: upstream.hostKey,
              key: { provider: "static", path: upstream.clientKeyPath },
              extra_hosts: { "github.com": upstreamIp },
              push: { refs: ["refs/heads/*"] },
            },
          ],
        },
      },
    }),
  );
  say("starting the bottle…");
  const slug = await t.start(agent);
  const inAgent = async (setup: string, timed: string) => {
    const r = await t.cli(["exec", slug, "--", "sh", "-c", timedScript(setup, timed)], 10 * 60_000);
    if (r.code !== 0)
      throw new Error(`in the agent: \`${timed}\` failed (${r.code}):\n${r.stderr}`);
    return elapsedOf(r.stdout, `agent: ${timed}`);
  };

  // --- 1. clone -------------------------------------------------------------------------------
  // The first clone: the gate's mirror is empty, so its refresh fetches everything over SSH.
  say("first clone (the gate's mirror empty)…");
  const coldGate = await inAgent("rm -rf ~/c", `git clone -q ${UPSTREAM} ~/c`);
  const coldFetch = await inClient("rm -rf /tmp/m && git init -q --bare /tmp/m", refresh("/tmp/m"));
  const coldDaemon = await inClient("rm -rf /tmp/d", "git clone -q git://daemon/big.git /tmp/d");

  const clone = {
    gate: [] as number[],
    daemon: [] as number[],
    fetch: [] as number[],
    plain: [] as number[],
  };
  const gateClone = async () =>
    clone.gate.push(await inAgent("rm -rf ~/c", `git clone -q ${UPSTREAM} ~/c`));
  const baseClone = async () => {
    clone.daemon.push(await inClient("rm -rf /tmp/d", "git clone -q git://daemon/big.git /tmp/d"));
    clone.fetch.push(await inClient("", refresh("/tmp/m")));
    clone.plain.push(await inClient("rm -rf /tmp/d", "git clone -q git://daemon/plain.git /tmp/d"));
  };
  // Warm-up, not counted: page cache, the gate's SSH connection, docker's.
  await gateClone();
  await baseClone();
  for (const xs of Object.values(clone)) xs.length = 0;
  for (let i = 0; i < RUNS; i++) {
    say(`clone: run ${i + 1}/${RUNS}…`);
    // Alternating which goes first, so neither always follows the other.
    for (const f of i % 2 === 0 ? [gateClone, baseClone] : [baseClone, gateClone]) await f();
  }

  /** The gate's own records (audit/git.jsonl) of its last `n` `op`s with `tag`. */
  const gateRecords = async (op: string, tag: string, n: number) => {
    const text = await readFile(
      join(t.dir, "state", "bot-bottle", slug, "audit", GIT_AUDIT_FILE),
      "utf8",
    );
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => parseGitAuditRecord(l, GIT_AUDIT_FILE))
      .filter((r) => r.op === op && r.tag === tag)
      .slice(-n);
  };
  /** The gate's own times (audit `ms`) of those records, in seconds. */
  const hookTimes = async (op: string, tag: string, n: number): Promise<number[]> =>
    (await gateRecords(op, tag, n)).map((r) => r.ms / 1000);

  const cloneHook = await hookTimes("fetch", "served", RUNS);
  const mirrorPacks = await readdir(
    join(t.dir, "state", "bot-bottle", slug, "git", "big.git", "objects", "pack"),
  ).catch(() => [] as string[]);

  // --- 2. push --------------------------------------------------------------------------------
  // Each side pushes its own branch (created by the warm-up push), so neither makes the other's
  // push stale; each push is one new commit changing one file.
  const push = { gate: [] as number[], direct: [] as number[], sink: [] as number[] };
  await inAgent(
    `rm -rf ~/w && git clone -q ${UPSTREAM} ~/w && cd ~/w && git checkout -qb bench-gate && echo 0 > gate.txt && git add gate.txt && git commit -qm warm`,
    "git push -q origin HEAD:refs/heads/bench-gate",
  );
  await inClient(
    "rm -rf /tmp/w && git clone -q git@upstream:big.git /tmp/w && cd /tmp/w && git checkout -qb bench-direct && echo 0 > direct.txt && git add direct.txt && git commit -qm warm",
    "git -C /tmp/w push -q origin HEAD:refs/heads/bench-direct",
  );
  const gatePush = async (i: number) =>
    push.gate.push(
      await inAgent(
        `cd ~/w && echo ${i} >> gate.txt && git commit -qam "bench ${i}"`,
        "git push -q origin HEAD:refs/heads/bench-gate",
      ),
    );
  const directPush = async (i: number) => {
    push.direct.push(
      await inClient(
        `cd /tmp/w && echo ${i} >> direct.txt && git commit -qam "bench ${i}"`,
        "git push -q origin HEAD:refs/heads/bench-direct",
      ),
    );
    // The same commit into a bare repository over git daemon: the half of the gate's push that
    // is git's own (the agent's push into the mirror), without the hook.
    push.sink.push(
      await inClient("", "git -C /tmp/w push -q git://daemon/sink.git HEAD:refs/heads/bench-sink"),
    );
  };
  for (let i = 0; i < RUNS; i++) {
    say(`push: run ${i + 1}/${RUNS}…`);
    for (const f of i % 2 === 0 ? [gatePush, directPush] : [directPush, gatePush]) await f(i + 1);
  }
  const pushRecords = await gateRecords("push", "forwarded", RUNS);
  const pushHook = pushRecords.map((r) => r.ms / 1000);
  const pushSteps = (name: string) => pushRecords.map((r) => (r.steps?.[name] ?? NaN) / 1000);

  // Parts of a push the hook's own `ms` leaves out or holds, timed in the bottle's bundle: a
  // hook client's start (perl: a push starts two hooks, a clone one; the gate's daemon does the
  // work), and gitleaks' own start over one small file.
  const { stdout: named } = await run("docker", [
    "ps",
    "--filter",
    `label=dev.bot-bottle.slug=${slug}`,
    "--format",
    "{{.Names}}",
  ]);
  const bundle = named.split("\n").find((n) => n.endsWith("-bundle"));
  if (!bundle) throw new Error(`no bundle container of ${slug}`);
  const inBundle = async (setup: string, timed: string) => {
    const r = await run("docker", ["exec", bundle, "sh", "-c", timedScript(setup, timed)]);
    return elapsedOf(r.stdout, `bundle: ${timed}`);
  };
  const parts = { hookStart: [] as number[], gitleaks: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    parts.hookStart.push(await inBundle("", "perl -MCwd -MIO::Socket::UNIX -e 1"));
    parts.gitleaks.push(
      await inBundle(
        "d=$(mktemp -d) && mkdir $d/pushed && echo 'hello' > $d/pushed/a.txt && cd $d",
        "gitleaks detect --no-git --source pushed --no-banner --exit-code 3 --log-level error --report-format json --report-path r.json",
      ),
    );
  }
  const landed = await upstream.refs("big");
  if (!landed["refs/heads/bench-gate"] || !landed["refs/heads/bench-direct"])
    throw new Error("the pushes did not land upstream");

  // --- 3. scan throughput ---------------------------------------------------------------------
  say(`scan: a push of ${SCAN_MB} MB of new text…`);
  const scan = await scanThroughput(t.dir);

  // --- the report -----------------------------------------------------------------------------
  const version = async (argv: string[]) =>
    (await run(argv[0] as string, argv.slice(1), { okExitCodes: [0, 1, 127] })).stdout.trim();
  const agentGit = (await t.sh(slug, "git --version")).stdout.trim();
  const report = {
    docker: await version(["docker", "version", "--format", "{{.Server.Version}}"]),
    hostGit: await version(["git", "--version"]),
    agentGit,
    upstreamGit: (await upstream.exec(["git", "--version"])).stdout.trim(),
    gitleaks: await version([
      "docker",
      "run",
      "--rm",
      "--network",
      "none",
      "--label",
      "dev.bot-bottle.test=1",
      "--entrypoint",
      "dpkg-query",
      BUNDLE_IMAGE,
      "-W",
      "-f",
      "${Version}",
      "gitleaks",
    ]),
  };
  const load = loadavg()[0] ?? 0;

  const s3 = (x: number) => `${x.toFixed(3)} s`;
  const row = (name: string, xs: number[]) => {
    const s = stats(xs);
    console.log(
      `  ${name.padEnd(62)} ${s3(s.median).padStart(9)} ${s3(s.min).padStart(9)} ${s3(s.max).padStart(9)}`,
    );
    return s.median;
  };
  const header = (title: string) =>
    console.log(
      `\n${title.padEnd(64)} ${"median".padStart(9)} ${"min".padStart(9)} ${"max".padStart(9)}`,
    );
  console.log(
    `bench/git-gate — ${RUNS} runs after a warm-up; ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}; ` +
      `Docker engine ${report.docker}; node ${process.version}; agent ${report.agentGit}; ` +
      `upstream ${report.upstreamGit} (sshd); host ${report.hostGit}; gitleaks ${report.gitleaks}; ` +
      `load average (1 min) ${startLoad.toFixed(2)} → ${load.toFixed(2)}`,
  );
  console.log(
    `repository: ${COMMITS} commits over ${FILES} files (3 files changed per commit), ${objectCount ?? "?"} objects, ` +
      `${(packKb / 1024).toFixed(1)} MiB packed; generated with git fast-import in ${generated.toFixed(1)} s`,
  );

  header(`1. git clone of the ${COMMITS}-commit repository`);
  const g = row("through the gate (in the bottle; the mirror refreshed)", clone.gate);
  row("  of which the gate's access hook (refresh; its audit `ms`)", cloneHook);
  row("baseline: git daemon clone (a container on the same network)", clone.daemon);
  row("baseline: one git fetch over SSH from the upstream (no-op)", clone.fetch);
  const b = row(
    "baseline: both",
    clone.daemon.map((d, i) => d + (clone.fetch[i] ?? NaN)),
  );
  row("for reference: git daemon clone of a copy without its bitmap", clone.plain);
  console.log(
    `  the upstream's repository has a reachability bitmap; the gate's mirror has ` +
      `${mirrorPacks.filter((f) => f.endsWith(".pack")).length} pack(s), ` +
      `${mirrorPacks.some((f) => f.endsWith(".bitmap")) ? "with" : "without"} a bitmap`,
  );
  console.log(
    `  gate / baseline: ${(g / b).toFixed(2)}× at the median (target ≤ 1.3×); ` +
      `the gate adds ${s3(g - b)}`,
  );
  console.log(
    `  first clone, the gate's mirror empty: ${s3(coldGate)}; baseline SSH fetch into an empty repository ` +
      `${s3(coldFetch)} + git daemon clone ${s3(coldDaemon)} = ${s3(coldFetch + coldDaemon)}; ` +
      `${(coldGate / (coldFetch + coldDaemon)).toFixed(2)}×`,
  );

  header("2. git push of one commit (one file changed)");
  const gp = row("through the gate (checks, scan, forward over SSH)", push.gate);
  row("  of which the gate's pre-receive hook (its audit `ms`)", pushHook);
  for (const [step, what] of [
    ["policy", "the push policy (fast-forward checks)"],
    ["scan", "the scan (new objects, gitleaks, held secrets)"],
    ["forward", "the forward to the upstream over SSH"],
  ] as const)
    row(`    of which ${what}`, pushSteps(step));
  row("  for reference: one hook client's start (perl)", parts.hookStart);
  row("  for reference: gitleaks over one small file", parts.gitleaks);
  const dp = row("baseline: git push over SSH straight to the upstream", push.direct);
  const sp = row(
    "for reference: the same push over git daemon, no hook (git's own receive)",
    push.sink,
  );
  console.log(
    `  gate / baseline: ${(gp / dp).toFixed(2)}× at the median (target ≤ 2×); the gate adds ${s3(gp - dp)}`,
  );
  console.log(
    `  a gate that receives a push and then forwards it pays both: git's own receive plus the ` +
      `direct push is ${s3(sp + dp)}, ${((sp + dp) / dp).toFixed(2)}× the direct push before any check or scan`,
  );

  header(
    `3. the gate's scan of a push of ${SCAN_MB} MB of new text (${scan.files} files, one commit)`,
  );
  const whole = row("scanPush, in process (host git, the bundle's gitleaks)", scan.whole);
  const without = row("scanPush with gitleaks replaced by /bin/true", scan.withoutGitleaks);
  console.log(
    `  throughput: ${(SCAN_MB / whole).toFixed(1)} MB/s of diff at the median (target ≥ 50 MB/s); ` +
      `without gitleaks ${(SCAN_MB / without).toFixed(1)} MB/s; gitleaks' share ${(100 * (1 - without / whole)).toFixed(0)}%`,
  );
}

/**
 * Times scanPush over a push of SCAN_MB MB of new text (in one commit over a published one), as
 * the gate's pre-receive hook calls it, with the bundle's gitleaks and with /bin/true in its place.
 */
async function scanThroughput(
  parent: string,
): Promise<{ whole: number[]; withoutGitleaks: number[]; files: number }> {
  const dir = await mkdtemp(join(parent, "scan-"));
  // The gate's git runs with its own home (gate.ts reads it once, at import).
  process.env["BOT_BOTTLE_GIT_GATE_HOME"] = join(dir, "gate-home");
  await mkdir(join(dir, "gate-home"));
  const { scanPush } = await import("../src/sidecars/git-gate/scan.js");
  const { gitEnv } = await import("../src/sidecars/git-gate/gate.js");
  const gitleaks = await gitleaksBinary();
  const mirror = join(dir, "mirror.git");
  const git = async (args: string[], input?: string, env: NodeJS.ProcessEnv = {}) =>
    (
      await run("git", ["-C", mirror, ...args], {
        env: { ...HOST_GIT, ...env },
        ...(input === undefined ? {} : { input }),
      })
    ).stdout.trim();
  await run("git", ["init", "--quiet", "--bare", "--initial-branch=main", mirror], {
    env: HOST_GIT,
  });
  const index = { GIT_INDEX_FILE: join(dir, "index") };
  await git(
    [
      "update-index",
      "--add",
      "--cacheinfo",
      `100644,${await git(["hash-object", "-w", "--stdin"], "# app\n")},README.md`,
    ],
    undefined,
    index,
  );
  const published = await git([
    "commit-tree",
    await git(["write-tree"], undefined, index),
    "-m",
    "published",
  ]);
  await git(["update-ref", "refs/heads/main", published]);

  // SCAN_MB MB of code-like text in files of 1 MB at most, written as loose objects.
  const files = Math.max(1, SCAN_MB);
  const perFile = Math.floor((SCAN_MB * 1e6) / files);
  let seed = 1;
  for (let f = 0; f < files; f++) {
    const lines: string[] = [];
    let size = 0;
    for (let l = 0; size < perFile; l++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const line = codeLine(f, l, seed);
      lines.push(line);
      size += line.length + 1;
    }
    const text = (lines.join("\n") + "\n").slice(0, perFile);
    const blob = await git(["hash-object", "-w", "--stdin"], text);
    await git(
      ["update-index", "--add", "--cacheinfo", `100644,${blob},gen/part${f}.ts`],
      undefined,
      index,
    );
  }
  const tip = await git([
    "commit-tree",
    await git(["write-tree"], undefined, index),
    "-p",
    published,
    "-m",
    "generated",
  ]);
  const updates = [{ ref: "refs/heads/main", old: published, new: tip }];
  const once = async (binary: string): Promise<number> => {
    const started = process.hrtime.bigint();
    const r: ScanResult = await scanPush({
      mirror,
      updates,
      secrets: [],
      maxObjects: 200_000,
      maxScanBytes: 1024 * 1024 * 1024,
      timeoutMs: 10 * 60_000,
      env: gitEnv(),
      gitleaks: binary,
    });
    const took = seconds(started);
    if (!r.ok) throw new Error(`the scan of generated text did not pass: ${JSON.stringify(r)}`);
    return took;
  };
  await once(gitleaks); // warm-up
  const whole: number[] = [];
  const withoutGitleaks: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    whole.push(await once(gitleaks));
    withoutGitleaks.push(await once("/bin/true"));
  }
  await rm(dir, { recursive: true, force: true });
  return { whole, withoutGitleaks, files };
}

const startLoad = loadavg()[0] ?? 0;
const t = new TestBottles();
const later: (() => Promise<unknown>)[] = [];
let cleaned: Promise<void> | undefined;
const cleanup = () =>
  (cleaned ??= t.teardown().finally(async () => {
    for (const f of later) await f();
  }));
process.once("SIGINT", () => {
  console.error("bench/git-gate: interrupted; removing what it made");
  void cleanup().finally(() => process.exit(130));
});
try {
  await main(t, later);
} finally {
  await cleanup();
}
