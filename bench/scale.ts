/**
 * bench/scale: many bottles on one engine, measured in this run through the built CLI:
 *  1. start-to-ready (`start --detach`, which returns when the bottle is ready) of N bottles: the
 *     first half one after another, the rest but one M at a time (separate CLI processes, as from
 *     separate shells), then the Nth alone with the other N-1 up, so it compares with the first;
 *  2. with all N up: `ls` and `ls --json`, each bundle's and agent's memory (`docker stats`, one
 *     call, and the summed RSS of their processes), and the host's memory used against before;
 *  3. placeholders: every bottle holds its own token (the same variable, a value per `start`),
 *     makes one request through its proxy to a fake upstream of the bench's own, and the
 *     upstream must have received that bottle's token and no other's;
 *  4. one `stop` of all N slugs, and what is left of them afterwards.
 * Ends with the figures next to the targets. Prints figures and ratios; never passes or fails.
 *   npm run bench:scale [-- --bottles N] [--parallel M]
 * Touches only what it made: its own bottles (an agent name of this run), its upstream container
 * and network. Never `stop --all` or `cleanup`: other bottles may share the engine.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CommandFailedError, run } from "../src/exec/run.js";
import { PACKAGE_ROOT } from "../src/package-root.js";
import { LABEL_PREFIX, LABELS } from "../src/shared/labels.js";
import { placeholderFor } from "../src/shared/placeholders.js";
import { upstreamCerts, upstreamLog } from "../test/helpers/fake-upstream.js";

const { values: flags } = parseArgs({
  options: {
    bottles: { type: "string", default: "50" },
    parallel: { type: "string", default: "4" },
  },
});
const N = Number(flags.bottles);
const M = Number(flags.parallel);
for (const [name, n] of [
  ["--bottles", N],
  ["--parallel", M],
] as const)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a whole number ≥ 1`);

const CLI = join(PACKAGE_ROOT, "dist", "bot-bottle.js");
const RUN_ID = randomBytes(3).toString("hex");
/** Every bottle of this run is of this agent: the label filter that finds them and no others. */
const AGENT = `scale-${RUN_ID}`;
const OWN_LABEL = `${LABEL_PREFIX}.bench=scale-${RUN_ID}`;
const UPSTREAM_NAME = `bot-bottle-bench-scale-${RUN_ID}-upstream`;
const NETWORK = `bot-bottle-bench-scale-${RUN_ID}`;
const HOST = "upstream.example.test";
const TOKEN_ENV = "BENCH_SCALE_TOKEN";
const LS_RUNS = 5;
const TARGET = { ratio: 1.5, bundleMb: 100, lsSeconds: 0.5 };

// --- figures -----------------------------------------------------------------------------

function sorted(xs: readonly number[]): number[] {
  return xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
}

function median(xs: readonly number[]): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The nearest-rank percentile: the smallest value at least `p` of the values are under. */
function percentile(xs: readonly number[], p: number): number {
  const s = sorted(xs);
  return s[Math.max(0, Math.ceil(s.length * p) - 1)] ?? NaN;
}

function max(xs: readonly number[]): number {
  return sorted(xs).at(-1) ?? NaN;
}

const sec = (s: number) => (Number.isNaN(s) ? "—" : `${s.toFixed(2)} s`);
const mib = (m: number) => (Number.isNaN(m) ? "—" : `${m.toFixed(0)}`);
const ratio = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : "—");
const nth = (n: number) =>
  `${n}${n % 100 >= 11 && n % 100 <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th")}`;

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

/** Runs `job` for 0..count-1, at most `width` at once, results in order. */
async function pool<T>(count: number, width: number, job: (i: number) => Promise<T>) {
  const out: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      out[i] = await job(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return out;
}

/**
 * Why a CLI command failed: its error (the last "bot-bottle: …" on stderr, with the lines that
 * follow it), shortened. Never the environment, which holds the tokens.
 */
function reason(err: unknown): string {
  if (!(err instanceof CommandFailedError)) return err instanceof Error ? err.message : String(err);
  const lines = err.stderr.trim().split("\n");
  const at = lines.findLastIndex((l) => l.startsWith("bot-bottle:"));
  const text = (at >= 0 ? lines.slice(at) : lines.slice(-3)).join(" / ").replace(/\s+/g, " ");
  return `status ${err.exitStatus}: ${text.length > 400 ? `${text.slice(0, 400)}…` : text}`;
}

// --- memory ------------------------------------------------------------------------------

/** Host memory in use (MemTotal - MemAvailable), MiB. */
async function hostUsedMib(): Promise<{ used: number; total: number }> {
  const info = await readFile("/proc/meminfo", "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(info)?.[1]);
  return { used: (kb("MemTotal") - kb("MemAvailable")) / 1024, total: kb("MemTotal") / 1024 };
}

/** "27.5MiB / 23.4GiB" (docker stats' MemUsage): the first figure, in MiB. */
function parseMemUsage(text: string): number {
  const m = /^([\d.]+)\s*([KMG]i?B|B|kB)/.exec(text.trim());
  if (!m) return NaN;
  const unit = m[2] ?? "B";
  const bytes =
    {
      B: 1,
      kB: 1e3,
      KiB: 1024,
      MB: 1e6,
      MiB: 1024 ** 2,
      GB: 1e9,
      GiB: 1024 ** 3,
    }[unit] ?? NaN;
  return (Number(m[1]) * bytes) / 1024 ** 2;
}

/** RSS and PSS (shared pages split among the processes that map them), MiB. */
interface Memory {
  rss: number;
  pss: number;
}

/**
 * The memory of every process in a container's memory cgroup, by program (the script node runs,
 * or the command). Read from the host's /proc and cgroup tree; empty where they are not readable
 * (a remote engine).
 */
async function processMemory(pid: number): Promise<Map<string, Memory>> {
  const out = new Map<string, Memory>();
  const cgroups = await readFile(`/proc/${pid}/cgroup`, "utf8").catch(() => "");
  const v1 = /^\d+:[^:]*\bmemory\b[^:]*:(.+)$/m.exec(cgroups)?.[1];
  const v2 = /^0::(.+)$/m.exec(cgroups)?.[1];
  const dir = v1 ? `/sys/fs/cgroup/memory${v1}` : v2 ? `/sys/fs/cgroup${v2}` : undefined;
  if (!dir) return out;
  const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
  for (const p of procs.split("\n").filter(Boolean)) {
    const [rollup, cmdline] = await Promise.all([
      readFile(`/proc/${p}/smaps_rollup`, "utf8").catch(() => ""),
      readFile(`/proc/${p}/cmdline`, "utf8").catch(() => ""),
    ]);
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(rollup)?.[1]);
    if (Number.isNaN(kb("Rss"))) continue; // a kernel thread, or gone
    const argv = cmdline.split("\0").filter(Boolean);
    const script = argv.find((a) => a.endsWith(".js") || a.endsWith(".mjs"));
    const name = script
      ? script.split("/").slice(-2).join("/")
      : (argv[0]?.split("/").at(-1) ?? "?");
    const had = out.get(name) ?? { rss: 0, pss: 0 };
    out.set(name, { rss: had.rss + kb("Rss") / 1024, pss: had.pss + kb("Pss") / 1024 });
  }
  return out;
}

// --- the run -----------------------------------------------------------------------------

type Phase = "one after another" | "M at a time" | "the Nth, alone";

interface Start {
  phase: Phase;
  seconds: number;
  slug?: string;
  error?: string;
}

/** How a phase reads in the output, with this run's M and N. */
function label(phase: Phase): string {
  switch (phase) {
    case "one after another":
      return phase;
    case "M at a time":
      return `${M} at a time`;
    case "the Nth, alone":
      return `the ${nth(N)}, alone`;
  }
}

/** The host's CPU time, idle and all, from /proc/stat (clock ticks). */
async function cpuTicks(): Promise<{ idle: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  return { idle: (ticks[3] ?? 0) + (ticks[4] ?? 0), total: ticks.reduce((a, b) => a + b, 0) };
}

/**
 * Waits (up to two minutes) until the host's CPUs are at least 80% idle over 3 s; returns how
 * long that took and the last idle share.
 */
async function settle(): Promise<{ seconds: number; idle: number }> {
  const started = Date.now();
  let idle = 0;
  while (Date.now() - started < 120_000) {
    const a = await cpuTicks();
    await new Promise((r) => setTimeout(r, 3000));
    const b = await cpuTicks();
    idle = (100 * (b.idle - a.idle)) / Math.max(1, b.total - a.total);
    if (idle >= 80) break;
  }
  return { seconds: (Date.now() - started) / 1000, idle };
}

async function main(made: { slugs: string[]; dir: string }): Promise<void> {
  const loadBefore = loadavg()[0] ?? 0;
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-bench-scale-"));
  made.dir = dir;
  const workspace = join(dir, "workspace");
  await run("mkdir", ["-p", workspace]);
  await chmod(workspace, 0o777);

  // The fake upstream: a container of the bench's own on a network of its own, which every
  // bundle joins (egress.network), reached by a name extra_hosts maps to its address.
  const certs = join(dir, "certs");
  await upstreamCerts(certs, [HOST]);
  await run("docker", ["network", "create", "--label", OWN_LABEL, NETWORK]);
  await run("docker", [
    "run",
    "--detach",
    "--name",
    UPSTREAM_NAME,
    "--label",
    OWN_LABEL,
    "--network",
    NETWORK,
    "--user",
    "root",
    "-v",
    `${certs}:/certs:ro`,
    "-v",
    `${join(PACKAGE_ROOT, "test", "fixtures")}:/fixtures:ro`,
    "bot-bottle/shell:latest",
    "node",
    "/fixtures/fake-upstream.mjs",
  ]);
  const deadline = Date.now() + 30_000;
  while (!(await upstreamLog(UPSTREAM_NAME)).some((e) => e.event === "listening")) {
    if (Date.now() > deadline)
      throw new Error(`the fake upstream ${UPSTREAM_NAME} did not listen on :443 within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const { stdout: ip } = await run("docker", [
    "inspect",
    "--format",
    `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`,
    UPSTREAM_NAME,
  ]);

  const manifest = join(dir, "bot-bottle.json");
  await writeFile(
    manifest,
    JSON.stringify({
      agents: { [AGENT]: { template: "shell", bottle: "box" } },
      bottles: {
        box: {
          egress: {
            routes: [
              {
                host: HOST,
                paths: ["/scale/"],
                methods: ["GET"],
                auth: { header: "authorization", scheme: "Bearer", token_env: TOKEN_ENV },
              },
            ],
            extra_hosts: { [HOST]: ip.trim() },
            trust_ca: join(certs, "ca", "ca.crt"),
            network: NETWORK,
          },
        },
      },
    }),
  );
  const env = { ...process.env, XDG_STATE_HOME: join(dir, "state"), BOT_BOTTLE_MANIFEST: manifest };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [CLI, ...args], { env: { ...env, ...extra }, cwd: workspace });

  /** Each bottle's real token, by slug: a value of its own, given only to its `start`. */
  const tokens = new Map<string, string>();
  const newToken = () => `bench-scale-${randomBytes(24).toString("hex")}`;

  // Warm-up: images built, page cache warm, the manifest proven. Not counted.
  const warm = (await cli(["start", AGENT, "--detach", "--yes"], { [TOKEN_ENV]: newToken() }))
    .stdout;
  await cli(["stop", warm.trim()]);

  const hostBefore = await hostUsedMib();
  const sequential = N >= 2 ? Math.max(1, Math.floor(N / 2)) : 1;
  const alone = N >= 2 ? 1 : 0;
  const together = N - sequential - alone;
  const starts: Start[] = [];
  const startOne = async (phase: Phase): Promise<Start> => {
    const token = newToken();
    const started = process.hrtime.bigint();
    let result: Start;
    try {
      const { stdout } = await cli(["start", AGENT, "--detach", "--yes"], { [TOKEN_ENV]: token });
      const slug = stdout.trim();
      made.slugs.push(slug);
      tokens.set(slug, token);
      result = { phase, seconds: Number(process.hrtime.bigint() - started) / 1e9, slug };
    } catch (err) {
      result = {
        phase,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        error: reason(err),
      };
    }
    starts.push(result);
    process.stderr.write(
      `${starts.length}/${N} (${label(phase)}): ${result.slug ?? `failed: ${result.error}`} in ${sec(result.seconds)}\n`,
    );
    return result;
  };

  const seq: Start[] = [];
  for (let i = 0; i < sequential; i++) seq.push(await startOne("one after another"));
  const par = await timed(() => pool(together, M, () => startOne("M at a time")));
  // The Nth starts on a quiet machine, as the first did: the parallel starts' own work (their
  // bundles still starting, the engine's bookkeeping) must not be counted as the cost of N-1 up.
  const settled = alone ? await settle() : undefined;
  const last = alone ? await startOne("the Nth, alone") : undefined;
  const first = seq[0];

  // --- with all N up ---
  // ls, next to what it is made of: the CLI's own start (`--version`) and the engine listing
  // it asks for (every bottle's containers and networks by label, two calls side by side).
  const lsRuns: number[] = [];
  const lsJsonRuns: number[] = [];
  const cliFloor: number[] = [];
  const engineFloor: number[] = [];
  let listed: { agent: string; state: string }[] = [];
  for (let i = 0; i < LS_RUNS; i++) {
    cliFloor.push((await timed(() => cli(["--version"]))).seconds);
    engineFloor.push(
      (
        await timed(() =>
          Promise.all([
            run("docker", ["ps", "-a", "--filter", `label=${LABELS.slug}`]),
            run("docker", ["network", "ls", "--filter", `label=${LABELS.slug}`]),
          ]),
        )
      ).seconds,
    );
    lsRuns.push((await timed(() => cli(["ls"]))).seconds);
    const json = await timed(() => cli(["ls", "--json"]));
    lsJsonRuns.push(json.seconds);
    listed = JSON.parse(json.value.stdout) as { agent: string; state: string }[];
  }
  const upAtOnce = listed.filter((b) => b.agent === AGENT && b.state === "running").length;

  const slugs = [...tokens.keys()];
  const names = slugs.flatMap((s) => [`bot-bottle-${s}-bundle`, `bot-bottle-${s}-agent`]);
  const stats = await timed(() =>
    names.length
      ? run("docker", ["stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", ...names])
      : Promise.resolve({ stdout: "" }),
  );
  const mem = new Map(
    stats.value.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [name = "", usage = ""] = l.split("\t");
        return [name, parseMemUsage(usage)] as const;
      }),
  );
  const bundleMem = slugs.map((s) => mem.get(`bot-bottle-${s}-bundle`) ?? NaN);
  const agentMem = slugs.map((s) => mem.get(`bot-bottle-${s}-agent`) ?? NaN);
  const pids = names.length
    ? (await run("docker", ["inspect", "--format", "{{.Name}}\t{{.State.Pid}}", ...names])).stdout
    : "";
  const procs = new Map<string, Map<string, Memory>>();
  for (const line of pids.split("\n").filter(Boolean)) {
    const [name = "", pid = ""] = line.replace(/^\//, "").split("\t");
    procs.set(name, await processMemory(Number(pid)));
  }
  const sum = (name: string, field: keyof Memory) =>
    [...(procs.get(name)?.values() ?? [])].reduce((a, b) => a + b[field], 0) || NaN;
  const bundleRss = slugs.map((s) => sum(`bot-bottle-${s}-bundle`, "rss"));
  const bundlePss = slugs.map((s) => sum(`bot-bottle-${s}-bundle`, "pss"));
  const agentRss = slugs.map((s) => sum(`bot-bottle-${s}-agent`, "rss"));
  const agentPss = slugs.map((s) => sum(`bot-bottle-${s}-agent`, "pss"));
  const bundlePrograms = new Map<string, Memory[]>();
  for (const s of slugs)
    for (const [program, m] of procs.get(`bot-bottle-${s}-bundle`) ?? [])
      bundlePrograms.set(program, [...(bundlePrograms.get(program) ?? []), m]);
  const hostUp = await hostUsedMib();

  // --- placeholders: each bottle's request must reach the upstream with its token alone ---
  const probes = await pool(slugs.length, M, (i) => {
    const slug = slugs[i] as string;
    return timed(() =>
      cli([
        "exec",
        slug,
        "--",
        "sh",
        "-c",
        `printenv ${TOKEN_ENV}; curl -sS -w '\\n%{http_code}\\n' -H "authorization: Bearer $${TOKEN_ENV}" https://${HOST}/scale/${slug}`,
      ]).then(
        (r) => r.stdout,
        (err: unknown) => `\nfailed: ${reason(err)}`,
      ),
    );
  });
  const seen = (await upstreamLog(UPSTREAM_NAME)).filter((e) => e.event === "request");
  const owner = new Map([...tokens].map(([slug, token]) => [`Bearer ${token}`, slug]));
  const problems: string[] = [];
  slugs.forEach((slug, i) => {
    const token = tokens.get(slug) ?? "";
    const lines = (probes[i]?.value ?? "").trimEnd().split("\n");
    const held = lines[0] ?? "";
    const status = lines.at(-1) ?? "";
    const reply = lines.slice(1, -1).join("\n");
    const mine = seen.filter((e) => e.url === `/scale/${slug}`);
    const sent = mine.map((e) => e.headers?.["authorization"] ?? "(none)");
    if (held !== placeholderFor(token, TOKEN_ENV, slug))
      problems.push(`${slug}: the agent does not hold its placeholder`);
    if (status !== "200") problems.push(`${slug}: the request got ${status || "no answer"}`);
    if (mine.length !== 1)
      problems.push(`${slug}: the upstream received ${mine.length} requests, not 1`);
    for (const header of sent)
      if (header !== `Bearer ${token}`)
        problems.push(
          `${slug}: arrived with ${owner.has(header) ? `the token of ${owner.get(header)}` : header.includes(held) ? "its placeholder" : "another value"}`,
        );
    for (const [other, t] of tokens)
      if (reply.includes(t) || held.includes(t))
        problems.push(
          `${slug}: the agent saw the real token of ${other === slug ? "itself" : other}`,
        );
  });
  const own = slugs.filter((s) => !problems.some((p) => p.startsWith(`${s}:`))).length;
  const probeSeconds = probes.map((p) => p.seconds);

  // --- stop: one `stop` of every slug of this run ---
  const stopped = slugs.length
    ? await timed(() =>
        cli(["stop", ...slugs]).then(
          () => "",
          (err: unknown) => reason(err),
        ),
      )
    : { seconds: NaN, value: "" };
  made.slugs = made.slugs.filter((s) => !slugs.includes(s));
  await run("docker", ["rm", "-f", UPSTREAM_NAME], { okExitCodes: [0, 1] });
  await run("docker", ["network", "rm", NETWORK], { okExitCodes: [0, 1] });
  const leftovers = await left();

  // --- report ---
  const { stdout: version } = await run("docker", ["version", "--format", "{{.Server.Version}}"]);
  const out: string[] = [];
  const p = (line = "") => out.push(line);
  p(
    `bench/scale — ${N} bottles (${sequential} one after another, ${together} more ${M} at a time, ${alone ? `then the ${nth(N)} alone with ${N - 1} up` : "none alone"}), after a warm-up start and stop`,
  );
  p(
    `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(hostBefore.total / 1024).toFixed(1)} GiB, Docker engine ${version.trim()}, load average ${loadBefore.toFixed(2)} at the start, ${(loadavg()[0] ?? 0).toFixed(2)} at the end`,
  );
  p();
  p(
    `start-to-ready (start --detach)     ${"n".padStart(3)} ${"median".padStart(8)} ${"p95".padStart(8)} ${"max".padStart(8)}`,
  );
  const startRow = (label: string, xs: Start[]) => {
    const ok = xs.filter((s) => s.slug).map((s) => s.seconds);
    p(
      `  ${label.padEnd(34)}${String(ok.length).padStart(3)} ${sec(median(ok)).padStart(8)} ${sec(percentile(ok, 0.95)).padStart(8)} ${sec(max(ok)).padStart(8)}`,
    );
  };
  startRow("one after another", seq);
  startRow(`${M} at a time`, par.value);
  if (last) startRow(`the ${nth(N)}, alone with ${N - 1} up`, [last]);
  if (settled)
    p(
      `  (before the ${nth(N)}: ${settled.seconds.toFixed(0)} s for the host to settle, to ${settled.idle.toFixed(0)}% CPU idle)`,
    );
  startRow("all", starts);
  const lastRatio = (last?.seconds ?? NaN) / (first?.seconds ?? NaN);
  p(
    `  1st ${sec(first?.seconds ?? NaN)}, ${nth(N)} ${sec(last?.seconds ?? NaN)}: ${ratio(lastRatio)}; last one after another (${nth(sequential)}) ${sec(seq.at(-1)?.seconds ?? NaN)}: ${ratio((seq.at(-1)?.seconds ?? NaN) / (first?.seconds ?? NaN))}`,
  );
  const seqOk = seq.filter((s) => s.slug).map((s) => s.seconds);
  p(
    `  ${M} at a time: ${together} bottles in ${sec(par.seconds)} wall, ${(together / par.seconds).toFixed(2)} bottles/s against ${(1 / median(seqOk)).toFixed(2)} one after another`,
  );
  const failed = starts.filter((s) => s.error);
  for (const f of failed.slice(0, 5))
    p(`  failed (${label(f.phase)}, ${sec(f.seconds)}): ${f.error}`);
  p();
  p(`with ${slugs.length} up (${listed.length} bottles on the engine in all):`);
  p(
    `  ls         median ${sec(median(lsRuns))}, max ${sec(max(lsRuns))} (${LS_RUNS} runs); ls --json median ${sec(median(lsJsonRuns))}`,
  );
  p(
    `             the CLI's start (--version) ${sec(median(cliFloor))}, the engine listing (docker ps + network ls) ${sec(median(engineFloor))}: ls is ${ratio(median(lsRuns) / (median(cliFloor) + median(engineFloor)))} their sum`,
  );
  p(`  memory, MiB                         median      max`);
  const memRow = (label: string, xs: number[]) =>
    p(`  ${label.padEnd(34)}${mib(median(xs)).padStart(7)}  ${mib(max(xs)).padStart(7)}`);
  memRow("bundle (docker stats)", bundleMem);
  memRow("bundle (its processes' RSS)", bundleRss);
  memRow("bundle (its processes' PSS)", bundlePss);
  memRow("agent (docker stats)", agentMem);
  memRow("agent (its processes' RSS)", agentRss);
  memRow("agent (its processes' PSS)", agentPss);
  p(
    `  bundle processes, median RSS / PSS: ${
      [...bundlePrograms]
        .map(
          ([program, xs]) =>
            `${program} ${mib(median(xs.map((x) => x.rss)))} / ${mib(median(xs.map((x) => x.pss)))}`,
        )
        .join(", ") || "—"
    }`,
  );
  p(`  (docker stats of ${names.length} containers, one call: ${sec(stats.seconds)})`);
  const perBottle = (hostUp.used - hostBefore.used) / Math.max(1, slugs.length);
  p(
    `  host memory used: ${mib(hostBefore.used)} MiB before the first start, ${mib(hostUp.used)} MiB with ${slugs.length} up: ${mib(perBottle)} MiB per bottle`,
  );
  p();
  p(
    problems.length
      ? `placeholders: ${own} of ${slugs.length} injected only for their own bottle; ${problems.length} problems:`
      : `placeholders: ${own} of ${slugs.length} injected only for their own bottle (exec + one request each, ${M} at a time: median ${sec(median(probeSeconds))})`,
  );
  for (const problem of problems.slice(0, 10)) p(`  ${problem}`);
  p();
  p(
    `stop (one \`stop\` of ${slugs.length} slugs): ${sec(stopped.seconds)}, ${sec(stopped.seconds / slugs.length)} per bottle${stopped.value ? `; it failed: ${stopped.value}` : ""}`,
  );
  p(
    `left behind: ${leftovers.length ? leftovers.join(", ") : `nothing (containers and networks of agent ${AGENT}, the upstream and its network)`}`,
  );
  p();
  const rows: [string, string, string][] = [
    [`${N} up at once`, `${upAtOnce === N ? "yes" : "no"} (${upAtOnce} of ${N} running)`, "yes"],
    [
      `start-to-ready, ${nth(N)} / 1st`,
      `${ratio(lastRatio)} (${sec(last?.seconds ?? NaN)} / ${sec(first?.seconds ?? NaN)})`,
      `≤${TARGET.ratio}×`,
    ],
    [
      "start-to-ready median / p95",
      `${sec(median(starts.filter((s) => s.slug).map((s) => s.seconds)))} / ${sec(
        percentile(
          starts.filter((s) => s.slug).map((s) => s.seconds),
          0.95,
        ),
      )}`,
      "",
    ],
    [
      "bundle memory median / max",
      `${mib(median(bundleMem))} / ${mib(max(bundleMem))} MiB (RSS ${mib(median(bundleRss))} / ${mib(max(bundleRss))}, PSS ${mib(median(bundlePss))} / ${mib(max(bundlePss))})`,
      `≤${TARGET.bundleMb} MB (${((TARGET.bundleMb * 1e6) / 1024 ** 2).toFixed(0)} MiB)`,
    ],
    ["agent memory median / max", `${mib(median(agentMem))} / ${mib(max(agentMem))} MiB`, ""],
    ["host memory per bottle", `${mib(perBottle)} MiB`, ""],
    [
      `ls with ${listed.length} bottles`,
      `${sec(median(lsRuns))} (${ratio(median(lsRuns) / TARGET.lsSeconds)} the target)`,
      `≤${TARGET.lsSeconds} s`,
    ],
    [
      `stop of ${slugs.length}`,
      `${sec(stopped.seconds)} (${sec(stopped.seconds / slugs.length)} per bottle)`,
      "in parallel",
    ],
    [
      "placeholders own-bottle only",
      `${own} of ${slugs.length}`,
      `${slugs.length} of ${slugs.length}`,
    ],
    ["left behind", leftovers.length ? `${leftovers.length}` : "nothing", "nothing"],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  p(`${"summary".padEnd(w0)}  ${"figure".padEnd(w1)}  target`);
  for (const [a, b, c] of rows) p(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`.trimEnd());
  process.stdout.write(out.join("\n") + "\n");
}

/** Containers and networks of this run's bottles and of the bench itself that still exist. */
async function left(): Promise<string[]> {
  const filters = [`label=${LABELS.agent}=${AGENT}`, `label=${OWN_LABEL}`];
  const found = await Promise.all(
    filters.flatMap((filter) => [
      run("docker", ["ps", "-a", "--filter", filter, "--format", "container {{.Names}}"]),
      run("docker", ["network", "ls", "--filter", filter, "--format", "network {{.Name}}"]),
    ]),
  );
  return found.flatMap((r) => r.stdout.split("\n").filter(Boolean));
}

/**
 * Removes what the run made and did not take down itself (after a failure or an interrupt):
 * its bottles through `stop`, then anything still labelled with its agent or its own label.
 */
async function cleanup(made: { slugs: string[]; dir: string }): Promise<void> {
  const env = { ...process.env, XDG_STATE_HOME: join(made.dir, "state") };
  if (made.dir && made.slugs.length)
    await run(process.execPath, [CLI, "stop", ...made.slugs], { env }).catch(() => undefined);
  const rest = await left().catch(() => []);
  const containers = rest.filter((r) => r.startsWith("container ")).map((r) => r.slice(10));
  const networks = rest.filter((r) => r.startsWith("network ")).map((r) => r.slice(8));
  if (containers.length) await run("docker", ["rm", "-f", ...containers], { okExitCodes: [0, 1] });
  for (const n of networks) await run("docker", ["network", "rm", n], { okExitCodes: [0, 1] });
  if (made.dir) await rm(made.dir, { recursive: true, force: true });
}

const made = { slugs: [] as string[], dir: "" };
let cleaned: Promise<void> | undefined;
const finish = () => (cleaned ??= cleanup(made));
process.once("SIGINT", () => {
  console.error("bench/scale: interrupted; removing what it made");
  void finish().finally(() => process.exit(130));
});
try {
  await main(made);
} catch (err) {
  process.stderr.write(`bench/scale failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await finish();
}
