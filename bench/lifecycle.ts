/**
 * bench/lifecycle: how long a bottle takes to start, exec and stop, next to what Docker itself
 * needs for the same parts, all measured in this run. Prints figures; never passes or fails.
 *   npm run bench:lifecycle [-- RUNS]
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, chmod, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../src/exec/run.js";
import { PACKAGE_ROOT } from "../src/package-root.js";

const RUNS = Number(process.argv[2] ?? 7);
const CLI = join(PACKAGE_ROOT, "dist", "bot-bottle.js");
const AGENT_IMAGE = "bot-bottle/shell:latest";
const BUNDLE_IMAGE = "bot-bottle/bundle:latest";

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function stats(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median =
    s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, min: s[0] as number, max: s[s.length - 1] as number };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bot-bottle-bench-"));
  const workspace = join(dir, "workspace");
  await run("mkdir", ["-p", workspace]);
  await chmod(workspace, 0o777);
  const manifest = join(dir, "bot-bottle.json");
  await writeFile(
    manifest,
    JSON.stringify({
      agents: { bench: { template: "shell", bottle: "box" } },
      bottles: { box: {} },
    }),
  );
  const env = { ...process.env, XDG_STATE_HOME: join(dir, "state"), BOT_BOTTLE_MANIFEST: manifest };
  const cli = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: workspace });

  // Warm-up: images built, page cache warm.
  const warm = (await cli("start", "bench", "--detach", "--yes")).stdout.trim();
  await cli("stop", warm);
  await run("docker", ["run", "--rm", AGENT_IMAGE, "true"]);

  const start: number[] = [];
  const exec: number[] = [];
  const stop: number[] = [];
  const bare: number[] = [];
  const floorUp: number[] = [];
  const floorDown: number[] = [];

  for (let i = 0; i < RUNS; i++) {
    let slug = "";
    start.push(
      await timed(
        async () => (slug = (await cli("start", "bench", "--detach", "--yes")).stdout.trim()),
      ),
    );
    exec.push(await timed(() => cli("exec", slug, "--", "true")));
    stop.push(await timed(() => cli("stop", slug)));

    bare.push(await timed(() => run("docker", ["run", "--rm", AGENT_IMAGE, "true"])));

    // The raw Docker floor: the same two networks and two containers, plain docker commands.
    const id = randomBytes(3).toString("hex");
    const n = { internal: `bench-${id}-i`, egress: `bench-${id}-e` };
    const c = { bundle: `bench-${id}-bundle`, agent: `bench-${id}-agent` };
    floorUp.push(
      await timed(async () => {
        await Promise.all([
          run("docker", [
            "network",
            "create",
            "--internal",
            "--opt",
            "com.docker.network.bridge.inhibit_ipv4=true",
            n.internal,
          ]),
          run("docker", ["network", "create", n.egress]),
        ]);
        await run("docker", [
          "run",
          "-d",
          "--name",
          c.bundle,
          "--network",
          n.egress,
          "-v",
          `${join(dir, "state", "bot-bottle", warm, "bundle")}:/etc/bot-bottle:ro`,
          BUNDLE_IMAGE,
        ]);
        await run("docker", ["network", "connect", "--alias", "egress", n.internal, c.bundle]);
        await run("docker", [
          "run",
          "-d",
          "--init",
          "--name",
          c.agent,
          "--network",
          n.internal,
          AGENT_IMAGE,
          "sleep",
          "infinity",
        ]);
      }),
    );
    floorDown.push(
      await timed(async () => {
        await run("docker", ["rm", "-f", c.bundle, c.agent]);
        await Promise.all([
          run("docker", ["network", "rm", n.internal]),
          run("docker", ["network", "rm", n.egress]),
        ]);
      }),
    );
  }
  await rm(dir, { recursive: true, force: true });

  const { stdout: version } = await run("docker", ["version", "--format", "{{.Server.Version}}"]);
  console.log(
    `bench/lifecycle — ${RUNS} runs after a warm-up; ${cpus().length} cores, ${cpus()[0]?.model ?? "?"}; Docker engine ${version.trim()}`,
  );
  const fmt = (s: number) => `${s.toFixed(3)} s`;
  const rows: [string, number[], number[] | undefined][] = [
    ["bot-bottle start --detach (to ready)", start, floorUp],
    ["raw floor up (2 networks, 2 containers)", floorUp, undefined],
    ["bot-bottle exec -- true", exec, bare],
    ["bare docker run --rm <agent image> true", bare, undefined],
    ["bot-bottle stop", stop, floorDown],
    ["raw floor down (rm -f, network rm)", floorDown, undefined],
  ];
  console.log(
    `${"".padEnd(42)} ${"median".padStart(9)} ${"min".padStart(9)} ${"max".padStart(9)}  ratio`,
  );
  for (const [name, xs, base] of rows) {
    const s = stats(xs);
    const ratio = base
      ? `${(s.median / stats(base).median).toFixed(2)}× ${base === floorUp ? "floor up" : base === floorDown ? "floor down" : "bare run"}`
      : "";
    console.log(
      `${name.padEnd(42)} ${fmt(s.median).padStart(9)} ${fmt(s.min).padStart(9)} ${fmt(s.max).padStart(9)}  ${ratio}`,
    );
  }
}

await main();
