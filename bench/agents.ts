/**
 * bench/agents: what the bottle adds to a real agent's first answer. `bot-bottle run AGENT --
 * "SAY: ready"` for claude and codex against a fake model API (a container of the bench's own,
 * reached as api.anthropic.com / api.openai.com through the bottle's egress), timed from spawn to
 * the answer on stdout and to exit; beside it, in the same run, the same CLI from the same image
 * in a plain `docker run --rm` on the fake's network, timed the same way. Also the image builds,
 * cold (`--force`, the shell image reused) and cached. Prints figures; never passes or fails.
 *   npm run bench:agents [-- --runs N] [--no-builds]
 * The fake's network is internal: neither the bottle's bundle nor the plain container can reach
 * anything but the fake. The model keys are random values made here (the fake accepts any).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { BuildResult } from "../src/backends/docker/build.js";
import { run } from "../src/exec/run.js";
import { TestBottles } from "../test/helpers/bottles.js";
import { CLI } from "../test/helpers/cli.js";
import { fakeModelCerts, modelRequests } from "../test/helpers/fake-model.js";
import { BASE_HOME, PROMPT, baselineArgs, codexConfig, type Agent } from "./agents-baseline.js";

const { values: flags } = parseArgs({
  options: { runs: { type: "string", default: "5" }, "no-builds": { type: "boolean" } },
});
const RUNS = Number(flags.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs takes a whole number ≥ 1`);
const ANSWER = /\bready\b/;
const RUN_TIMEOUT_MS = 5 * 60_000;
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** One timed process: seconds from spawn to the answer on stdout, to exit, to named stderr lines. */
interface Timing {
  answer: number;
  exit: number;
  marks: Record<string, number>;
  /** The requests the fake received during the run (read after it, outside the timing). */
  requests: string[];
}

/** One `images build`: what was asked, the CLI's wall time, what it reports per image. */
interface Build {
  what: string;
  wall: number;
  said: string;
}

/** `run`'s progress lines on stderr that open each part of a start, in order. */
const MARKS: [string, RegExp][] = [
  ["networks", /^- creating the internal and egress networks/],
  ["bundle", /^- starting the sidecar bundle/],
  ["agent", /^- starting the agent /],
  ["ready", / is ready$/],
];

const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;

/**
 * Runs a command, noting when ANSWER first shows on its stdout, when each MARK's line shows on
 * its stderr, and when it exits. Fails, with the output's tail, unless it exits 0 having answered.
 */
function timed(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; cwd: string },
): Promise<Omit<Timing, "requests">> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let pending = "";
    let answer: number | undefined;
    const marks: Record<string, number> = {};
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
      if (answer === undefined && ANSWER.test(stdout)) answer = seconds(started);
    });
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines)
        for (const [name, re] of MARKS)
          if (marks[name] === undefined && re.test(line)) marks[name] = seconds(started);
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), RUN_TIMEOUT_MS);
    const tail = () =>
      `\n--- stderr (last lines)\n${stderr.trim().split("\n").slice(-15).join("\n")}` +
      `\n--- stdout\n${stdout.trim().slice(-2000)}`;
    const line = [command, ...args].join(" ");
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`\`${line}\` could not run: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const exit = seconds(started);
      if (code !== 0)
        reject(
          new Error(
            `\`${line}\` exited with ${code ?? signal} after ${exit.toFixed(1)} s${tail()}`,
          ),
        );
      else if (answer === undefined)
        reject(new Error(`\`${line}\` exited 0 without answering ${String(ANSWER)}${tail()}`));
      else resolve({ answer, exit, marks });
    });
  });
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median =
    s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}

async function main(t: TestBottles): Promise<void> {
  // Random keys of the real shapes: the bottle's routes need them set; the fake takes any.
  process.env["ANTHROPIC_API_KEY"] = `sk-ant-api03-${randomBytes(60).toString("base64url")}AA`;
  process.env["OPENAI_API_KEY"] = `sk-proj-${randomBytes(48).toString("base64url")}`;
  await t.setup({ agents: {}, bottles: {} });
  const agents: Agent[] = [
    {
      template: "claude",
      name: t.agent("claude"),
      image: "bot-bottle/claude:latest",
      host: "api.anthropic.com",
    },
    {
      template: "codex",
      name: t.agent("codex"),
      image: "bot-bottle/codex:latest",
      host: "api.openai.com",
    },
  ];
  /** `images build … --json`: the CLI's wall time, and what it says it built or reused. */
  const build = async (what: string, args: string[]): Promise<Build> => {
    console.error(`bench/agents: bot-bottle ${args.join(" ")}…`);
    const started = process.hrtime.bigint();
    const r = await t.cli([...args, "--json"], BUILD_TIMEOUT_MS);
    const wall = seconds(started);
    if (r.code !== 0)
      throw new Error(`\`bot-bottle ${args.join(" ")}\` failed (${r.code}):\n${r.stderr}`);
    const images = JSON.parse(r.stdout.trim().split("\n").pop() ?? "[]") as BuildResult[];
    const said = images.map((i) =>
      i.reused ? `${i.name} reused` : `${i.name} built in ${i.seconds.toFixed(1)} s`,
    );
    return { what: `${args.join(" ")}  (${what})`, wall, said: said.join(", ") };
  };

  // Image builds: each template cold (every step of its own, without docker's cache; the shell
  // image it is built on reused), then both cached. The runs below use the images just built.
  const builds: Build[] = [];
  if (!flags["no-builds"])
    for (const a of agents)
      builds.push(await build("cold", ["images", "build", "--force", a.template]));
  builds.push(await build("cached", ["images", "build", ...agents.map((a) => a.template)]));

  // The fake model API on an internal network of the bench's own.
  const certs = join(t.dir, "certs");
  await fakeModelCerts(certs);
  const network = await t.network(["--internal"]);
  const fake = await t.fakeModel(certs, network);
  await writeFile(
    t.manifest,
    JSON.stringify({
      agents: {
        [agents[0]?.name ?? ""]: { template: "claude", bottle: "box" },
        [agents[1]?.name ?? ""]: { template: "codex", bottle: "box", model: "gpt-fake" },
      },
      bottles: {
        box: {
          egress: {
            routes: [],
            extra_hosts: { "api.anthropic.com": fake.ip, "api.openai.com": fake.ip },
            trust_ca: join(certs, "ca", "ca.crt"),
            network,
          },
        },
      },
    }),
  );
  // What the baseline containers read: the fake's CA and codex's configuration, as node.
  const bench = join(t.dir, "baseline");
  await mkdir(bench);
  await copyFile(join(certs, "ca", "ca.crt"), join(bench, "ca.crt"));
  await writeFile(join(bench, "config.toml"), codexConfig(`${BASE_HOME}/workspace`));
  for (const f of ["", "ca.crt", "config.toml"]) await chmod(join(bench, f), f ? 0o644 : 0o755);

  // Each run, then what the fake received meanwhile: proof that it answered, and what each asks.
  let seen = (await modelRequests(fake.container)).length;
  const counted = async (work: Promise<Omit<Timing, "requests">>): Promise<Timing> => {
    const timing = await work;
    const all = await modelRequests(fake.container);
    const requests = all.slice(seen).map((q) => `${q.method} ${q.url.split("?")[0] ?? ""}`);
    seen = all.length;
    return { ...timing, requests };
  };
  const bottled = (a: Agent) =>
    counted(
      timed(process.execPath, [CLI, "run", a.name, "--yes", "--cwd", t.workspace, "--", PROMPT], {
        env: t.env,
        cwd: t.workspace,
      }),
    );
  const baseline = (a: Agent) =>
    counted(
      timed("docker", baselineArgs(a, network, fake, bench), { env: t.env, cwd: t.workspace }),
    );

  const results = new Map<Agent, { bottled: Timing[]; baseline: Timing[] }>();
  // Other work on this machine shows in the figures: the load is printed beside them.
  const load = [loadavg()[0] ?? 0];
  for (const a of agents) {
    // Warm-up, not counted: page cache, the CLI's first start in this image, docker's.
    console.error(`bench/agents: ${a.template}: warm-up…`);
    await bottled(a);
    await baseline(a);
    results.set(a, { bottled: [], baseline: [] });
  }
  for (let i = 0; i < RUNS; i++)
    for (const a of agents) {
      console.error(`bench/agents: ${a.template}: run ${i + 1}/${RUNS}…`);
      const r = results.get(a);
      // Alternating which goes first, so neither always follows the other's teardown.
      if (i % 2 === 0) {
        r?.bottled.push(await bottled(a));
        r?.baseline.push(await baseline(a));
      } else {
        r?.baseline.push(await baseline(a));
        r?.bottled.push(await bottled(a));
      }
    }

  const docker = (
    await run("docker", ["version", "--format", "{{.Server.Version}}"])
  ).stdout.trim();
  const versions: string[] = [];
  for (const a of agents) {
    const { stdout } = await run("docker", [
      "image",
      "inspect",
      "--format",
      '{{index .Config.Labels "dev.bot-bottle.agent-version"}}',
      a.image,
    ]);
    versions.push(stdout.trim());
  }
  load.push(loadavg()[0] ?? 0);
  report({ builds, results, docker, versions, load });
}

function report(r: {
  builds: Build[];
  results: Map<Agent, { bottled: Timing[]; baseline: Timing[] }>;
  docker: string;
  versions: string[];
  load: number[];
}): void {
  // A part whose progress line was not seen (its wording changed) shows as "?".
  const s3 = (x: number) => (Number.isNaN(x) ? "?" : `${x.toFixed(3)} s`);
  const s1 = (x: number) => `${x.toFixed(1)} s`;
  console.log(
    `bench/agents — ${RUNS} runs per agent after a warm-up; ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}; ` +
      `Docker engine ${r.docker}; node ${process.version}; ${r.versions.join(", ")}; ` +
      `load average (1 min) ${r.load.map((l) => l.toFixed(2)).join(" → ")} over the runs`,
  );
  console.log("");
  console.log("image builds (wall time of the CLI)");
  for (const b of r.builds)
    console.log(`  ${b.what.padEnd(44)} ${s1(b.wall).padStart(9)}   ${b.said}`);

  for (const [a, { bottled, baseline }] of r.results) {
    console.log("");
    console.log(
      `${a.template}: "${PROMPT}" → "ready" on stdout    ${"median".padStart(9)} ${"min".padStart(9)} ${"max".padStart(9)}`,
    );
    const row = (name: string, xs: number[]) => {
      const s = stats(xs);
      console.log(
        `  ${name.padEnd(44)} ${s3(s.median).padStart(9)} ${s3(s.min).padStart(9)} ${s3(s.max).padStart(9)}`,
      );
      return s.median;
    };
    const bAnswer = row(
      "bottled: bot-bottle run, to first answer",
      bottled.map((x) => x.answer),
    );
    const bExit = row(
      "bottled: bot-bottle run, to exit",
      bottled.map((x) => x.exit),
    );
    const pAnswer = row(
      "baseline: docker run --rm, to first answer",
      baseline.map((x) => x.answer),
    );
    row(
      "baseline: docker run --rm, to exit",
      baseline.map((x) => x.exit),
    );
    const stop = row(
      "bottled: answer → exit (stop)",
      bottled.map((x) => x.exit - x.answer),
    );
    const added = bAnswer - pAnswer;
    console.log(
      `  added by the bottle to the first answer: ${added >= 0 ? "+" : ""}${s3(added)} at the median (target ≤ 1.5 s); ` +
        `${(bAnswer / pAnswer).toFixed(2)}× baseline; stop ${s3(stop)} = ${((100 * stop) / bExit).toFixed(0)}% of the bottled run to exit`,
    );
    // Where the bottled run's time goes, from `run`'s progress lines (medians of each part).
    const part = (from: string | undefined, to: string | undefined) =>
      stats(
        bottled.map((x) => {
          const end = to === undefined ? x.answer : x.marks[to];
          const start = from === undefined ? 0 : x.marks[from];
          return end === undefined || start === undefined ? NaN : end - start;
        }),
      ).median;
    const parts: [string, number][] = [
      ["plan, images, checks", part(undefined, "networks")],
      ["networks", part("networks", "bundle")],
      ["bundle", part("bundle", "agent")],
      ["agent container, cage, provision", part("agent", "ready")],
      ["agent CLI to answer", part("ready", undefined)],
      ["stop", stop],
    ];
    // What the fake received per run (the last run of each), so a difference in calls shows.
    const calls = (xs: Timing[]) => {
      const counts = new Map<string, number>();
      for (const q of xs[xs.length - 1]?.requests ?? []) counts.set(q, (counts.get(q) ?? 0) + 1);
      return [...counts].map(([q, n]) => (n > 1 ? `${q} ×${n}` : q)).join(", ") || "none";
    };
    console.log(
      `  the fake received, per run: bottled ${calls(bottled)}; baseline ${calls(baseline)}`,
    );
    console.log(
      `  bottled, by part (medians): ${parts.map(([n, s]) => `${n} ${s3(s)}`).join("; ")}`,
    );
  }
}

const t = new TestBottles();
let cleaned: Promise<void> | undefined;
const cleanup = () => (cleaned ??= t.teardown());
process.once("SIGINT", () => {
  console.error("bench/agents: interrupted; removing what it made");
  void cleanup().finally(() => process.exit(130));
});
try {
  await main(t);
} finally {
  await cleanup();
}
