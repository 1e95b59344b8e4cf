/**
 * End-to-end bottles for tests: a private state root and manifest per test file, agents with
 * unique names (so label filters see only this test's resources), and removal of everything the
 * test created, even when it fails.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/exec/run.js";
import { runCli, type CliResult } from "./cli.js";
import { startFakeModel, type FakeModel } from "./fake-model.js";

export class TestBottles {
  readonly id = randomBytes(3).toString("hex");
  dir = "";
  workspace = "";
  manifest = "";
  env: NodeJS.ProcessEnv = {};
  private readonly extraContainers: string[] = [];
  private readonly extraNetworks: string[] = [];

  /** An agent name unique to this run: `<base>-<id>`. */
  agent(base: string): string {
    return `${base}-${this.id}`;
  }

  async setup(manifest: Record<string, unknown>): Promise<void> {
    // The offline base (built, or reused when present): bottles' images build FROM it.
    const base = await runCli(["images", "base"], { timeoutMs: 20 * 60_000 });
    if (base.code !== 0) throw new Error(`images base failed:\n${base.stderr}`);
    this.dir = await mkdtemp(join(tmpdir(), "bot-bottle-e2e-"));
    this.workspace = join(this.dir, "workspace");
    await run("mkdir", ["-p", this.workspace]);
    await chmod(this.workspace, 0o777); // the agent is uid 1000
    this.manifest = join(this.dir, "bot-bottle.json");
    await writeFile(this.manifest, JSON.stringify(manifest, null, 2));
    this.env = {
      ...process.env,
      XDG_STATE_HOME: join(this.dir, "state"),
      BOT_BOTTLE_MANIFEST: this.manifest,
    };
  }

  /** A manifest with one shell agent per name, each in an empty bottle. */
  static shellManifest(
    agents: string[],
    bottle: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      agents: Object.fromEntries(agents.map((a) => [a, { template: "shell", bottle: "box" }])),
      bottles: { box: bottle },
    };
  }

  cli(args: string[], timeoutMs = 180_000): Promise<CliResult> {
    return runCli(args, { env: this.env, cwd: this.workspace, timeoutMs });
  }

  /** `start AGENT --detach --yes`; returns the slug, failing loudly when the start fails. */
  async start(agent: string): Promise<string> {
    const r = await this.cli(["start", agent, "--detach", "--yes"]);
    if (r.code !== 0) throw new Error(`start ${agent} failed (${r.code}):\n${r.stderr}`);
    return r.stdout.trim();
  }

  /** Runs a shell script inside the agent through `bot-bottle exec`. */
  sh(slug: string, script: string): Promise<CliResult> {
    return this.cli(["exec", slug, "--", "sh", "-c", script], 60_000);
  }

  /**
   * Where in the agent `secret` can be found — its home, /tmp, /etc, every process's environment
   * and command line, `ps` — as a list of places (empty: nowhere). The search looks for the
   * secret's last 24 characters, written from two halves to a file outside the searched folders,
   * so no command line of the search holds them whole.
   */
  async secretPlaces(slug: string, secret: string): Promise<string[]> {
    const tail = secret.slice(-24);
    const probe = await this.cli(
      [
        "exec",
        "--user",
        "root",
        slug,
        "--",
        "sh",
        "-c",
        `printf '%s%s' '${tail.slice(0, 12)}' '${tail.slice(12)}' > /dev/shm/needle; ` +
          "grep -rlsF -f /dev/shm/needle /home/node /tmp /etc /proc/[0-9]*/environ /proc/[0-9]*/cmdline; " +
          "ps auxww | grep -F -f /dev/shm/needle | grep -v grep | sed 's/^/ps: /'; echo checked",
      ],
      60_000,
    );
    if (!probe.stdout.trim().endsWith("checked"))
      throw new Error(`the search failed: ${probe.stderr}`);
    return probe.stdout.trim().split("\n").slice(0, -1);
  }

  /** A container of the test's own (a fake server), removed at teardown. */
  async container(args: string[]): Promise<string> {
    const name = `bot-bottle-test-${this.id}-${randomBytes(3).toString("hex")}`;
    this.extraContainers.push(name);
    await run("docker", [
      "run",
      "--detach",
      "--name",
      name,
      "--label",
      "dev.bot-bottle.test=1",
      ...args,
    ]);
    return name;
  }

  /**
   * A server of test/fixtures/ (`script`) in a container of the test's own on `network`, as root,
   * serving the certificates in `certs` (mounted at /certs).
   */
  fixtureServer(script: string, certs: string, network: string): Promise<string> {
    return this.container([
      "--network",
      network,
      "--user",
      "root",
      "-v",
      `${certs}:/certs:ro`,
      "-v",
      `${join(import.meta.dirname, "..", "fixtures")}:/fixtures:ro`,
      "bot-bottle/shell:latest",
      "node",
      `/fixtures/${script}`,
    ]);
  }

  /**
   * The fake HTTPS upstream (test/fixtures/fake-upstream.mjs) on `network`, serving the
   * certificates in `certs` (see fake-upstream.ts upstreamCerts).
   */
  fakeUpstream(certs: string, network: string): Promise<string> {
    return this.fixtureServer("fake-upstream.mjs", certs, network);
  }

  /**
   * The fake model API (test/fixtures/fake-model.mjs) in a container of the test's own on
   * `network`, serving the certificates in `certs` (see fake-model.ts fakeModelCerts); resolves
   * once it listens, with its container name and address.
   */
  fakeModel(certs: string, network: string): Promise<FakeModel> {
    return startFakeModel(() => this.fixtureServer("fake-model.mjs", certs, network), network);
  }

  async network(args: string[]): Promise<string> {
    const name = `bot-bottle-test-${this.id}-${randomBytes(3).toString("hex")}`;
    this.extraNetworks.push(name);
    await run("docker", ["network", "create", "--label", "dev.bot-bottle.test=1", ...args, name]);
    return name;
  }

  async ip(container: string, network: string): Promise<string> {
    const { stdout } = await run("docker", [
      "inspect",
      "--format",
      `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`,
      container,
    ]);
    return stdout.trim();
  }

  /** Names of containers and networks bot-bottle labelled with one of this run's agents. */
  async leftovers(agent: string): Promise<string[]> {
    const filter = `label=dev.bot-bottle.agent=${agent}`;
    const [c, n] = await Promise.all([
      run("docker", ["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]),
      run("docker", ["network", "ls", "--filter", filter, "--format", "{{.Name}}"]),
    ]);
    return [...c.stdout.split("\n"), ...n.stdout.split("\n")].filter((l) => l.trim());
  }

  /** Removes everything this test made: its bottles (by label), fake servers, networks, temp dir. */
  async teardown(): Promise<void> {
    const ids = await run("docker", ["ps", "-aq", "--filter", "label=dev.bot-bottle.slug"]);
    const ours: string[] = [];
    for (const id of ids.stdout.split("\n").filter(Boolean)) {
      const { stdout } = await run("docker", [
        "inspect",
        "--format",
        '{{index .Config.Labels "dev.bot-bottle.agent"}}',
        id,
      ]);
      if (stdout.trim().endsWith(`-${this.id}`)) ours.push(id);
    }
    const containers = [...ours, ...this.extraContainers];
    if (containers.length)
      await run("docker", ["rm", "-f", ...containers], { okExitCodes: [0, 1] });
    const nets = await run("docker", [
      "network",
      "ls",
      "--filter",
      "label=dev.bot-bottle.slug",
      "--format",
      "{{.Name}}",
    ]);
    const ourNets = nets.stdout.split("\n").filter((n) => n.includes(`-${this.id}-`));
    for (const n of [...ourNets, ...this.extraNetworks])
      await run("docker", ["network", "rm", n], { okExitCodes: [0, 1] });
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
