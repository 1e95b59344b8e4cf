import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { CLI } from "../../helpers/cli.js";
import { TestBottles } from "../../helpers/bottles.js";

const t = new TestBottles();
const probe = t.agent("probe");
const twin = t.agent("twin");
const killed = t.agent("killed");

describe("bottles on the Docker engine, through the built CLI", { timeout: 15 * 60_000 }, () => {
  before(async () => {
    await t.setup(TestBottles.shellManifest([probe, twin, killed]));
  });
  after(() => t.teardown());

  test("start --dry-run prints the plan and creates nothing", async () => {
    const r = await t.cli(["start", probe, "--dry-run", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as {
      slug: string;
      stateDir: string;
      agentContainer: { user: string };
    };
    assert.match(plan.slug, new RegExp(`^${probe}-[a-z0-9]{6}$`));
    assert.equal(plan.agentContainer.user, "node");
    assert.deepEqual(await t.leftovers(probe), []);
    await assert.rejects(stat(plan.stateDir));
  });

  test("start, exec, logs and stop: a round trip that keeps the state", async () => {
    const slug = await t.start(probe);
    assert.match(slug, new RegExp(`^${probe}-[a-z0-9]{6}$`));

    const ls = JSON.parse((await t.cli(["ls", "--json"])).stdout) as {
      slug: string;
      state: string;
    }[];
    assert.equal(ls.find((b) => b.slug === slug)?.state, "running");

    const who = await t.sh(slug, 'id -un; id -u; echo "$HOME"; pwd; echo made-inside > note.txt');
    assert.equal(who.code, 0, who.stderr);
    assert.deepEqual(who.stdout.trim().split("\n"), [
      "node",
      "1000",
      "/home/node",
      "/home/node/workspace",
    ]);
    assert.equal(await readFile(join(t.workspace, "note.txt"), "utf8"), "made-inside\n");

    const status = await t.sh(slug, "exit 7");
    assert.equal(status.code, 7, "exec passes the exit status through");

    const caps = await t.sh(
      slug,
      "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
    );
    assert.match(caps.stdout, /CapEff:\s+0000000000000000/);
    assert.match(caps.stdout, /NoNewPrivs:\s+1/);
    assert.match(caps.stdout, /^1024$/m);
    // The only host path inside is the workspace (plus the files docker itself provides).
    const mounts = await t.sh(slug, "awk '$1 ~ /^\\// {print $2}' /proc/mounts | sort");
    assert.deepEqual(mounts.stdout.trim().split("\n"), [
      "/etc/hostname",
      "/etc/hosts",
      "/etc/resolv.conf",
      "/home/node/workspace",
      "/usr/sbin/docker-init",
    ]);
    const socket = await t.sh(slug, "test -e /var/run/docker.sock || test -e /run/docker.sock");
    assert.equal(socket.code, 1, "no Docker socket in the agent");

    const logs = await t.cli(["logs", slug]);
    assert.match(logs.stdout, /init\s+ready\s+every daemon is ready/);

    const stopped = await t.cli(["stop", slug]);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(await t.leftovers(probe), [], "containers and networks are gone");

    const stateDir = join(t.env["XDG_STATE_HOME"] as string, "bot-bottle", slug);
    const meta = JSON.parse(await readFile(join(stateDir, "metadata.json"), "utf8")) as Record<
      string,
      unknown
    >;
    assert.equal(meta["status"], "stopped");
    assert.equal(meta["agent"], probe);
    assert.match(String(meta["created"]), /^\d{4}-/);
    assert.match(await readFile(join(stateDir, "logs", "bundle.log"), "utf8"), /"event":"stopped"/);
    assert.equal((await stat(join(stateDir, "ca", "ca.key"))).mode & 0o777, 0o600);
    assert.match(await readFile(join(stateDir, "ca", "ca.crt"), "utf8"), /BEGIN CERTIFICATE/);

    const afterStop = await t.cli(["logs", slug]);
    assert.match(
      afterStop.stdout,
      /init\s+stopped\s+all daemons stopped/,
      "logs of a stopped bottle come from the state dir",
    );
    const gone = await t.cli(["exec", slug, "--", "true"]);
    assert.equal(gone.code, 2);
    assert.match(gone.stderr, /no running bottle/);
  });

  test("two bottles of the same agent run side by side", async () => {
    const [a, b] = await Promise.all([t.start(twin), t.start(twin)]);
    assert.notEqual(a, b);
    const [ra, rb] = await Promise.all([t.sh(a, "hostname"), t.sh(b, "hostname")]);
    assert.equal(ra.stdout.trim(), a);
    assert.equal(rb.stdout.trim(), b);
    const stop = await t.cli(["stop", a, b]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(await t.leftovers(twin), []);
  });

  test("stop: an unknown bottle among known ones fails alone; --all stops every bottle; none named is a usage error", async () => {
    const [a, b, c] = await Promise.all([t.start(twin), t.start(twin), t.start(twin)]);
    const mixed = await t.cli(["stop", a, "nosuch-abc123"]);
    assert.equal(mixed.code, 2, mixed.stderr);
    assert.match(mixed.stdout, new RegExp(`stopped ${a} \\(state kept in `));
    assert.match(mixed.stderr, /there is no running bottle "nosuch-abc123"/);
    assert.doesNotMatch(mixed.stderr, /\n\s+at /, "no stack trace");

    const all = await t.cli(["stop", "--all"]);
    assert.equal(all.code, 0, all.stderr);
    for (const slug of [b, c])
      assert.match(all.stdout, new RegExp(`stopped ${slug} \\(state kept in `));
    assert.deepEqual(await t.leftovers(twin), []);
    const again = await t.cli(["stop", "--all"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /no bottles to stop/);

    const none = await t.cli(["stop"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /which bottles\?/);
    const both = await t.cli(["stop", "--all", a]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give bottles or --all, not both/);
  });

  test("a start killed with SIGKILL midway leaves resources that cleanup removes", async () => {
    const child = spawn(process.execPath, [CLI, "start", killed, "--detach", "--yes"], {
      env: t.env,
      cwd: t.workspace,
      stdio: "ignore",
    });
    // Kill it once the bundle container exists: networks and a container are half made.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const { stdout } = await run("docker", [
        "ps",
        "-a",
        "--filter",
        `label=dev.bot-bottle.agent=${killed}`,
        "--filter",
        "label=dev.bot-bottle.role=bundle",
        "--format",
        "{{.Names}}",
      ]);
      if (stdout.trim()) break;
      assert.ok(Date.now() < deadline, "the start never created its bundle");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    assert.notDeepEqual(await t.leftovers(killed), [], "the killed start left something behind");

    const ls = JSON.parse((await t.cli(["ls", "--json"])).stdout) as {
      agent: string;
      state: string;
    }[];
    assert.equal(ls.find((b) => b.agent === killed)?.state, "broken");

    const cleaned = await t.cli(["cleanup"]);
    assert.equal(cleaned.code, 0, cleaned.stderr);
    assert.match(cleaned.stdout, new RegExp(`removed ${killed}-[a-z0-9]{6}: .*network`));
    assert.deepEqual(await t.leftovers(killed), []);
    assert.equal((await t.cli(["cleanup"])).stdout.trim(), "nothing to clean up");
  });

  test("a start that fails midway rolls back what it created and reports the first error", async () => {
    const agent = t.agent("joiner");
    const joiner = new TestBottles();
    await joiner.setup(
      TestBottles.shellManifest([agent], {
        egress: { network: `bot-bottle-test-missing-${t.id}` },
      }),
    );
    try {
      const r = await joiner.cli(["start", agent, "--detach", "--yes"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        /the sidecar bundle could not join the network "bot-bottle-test-missing-\w+" \(bottles\.box\.egress\.network\)/,
      );
      assert.match(r.stderr, /not found/);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      assert.deepEqual(await joiner.leftovers(agent), [], "networks and the bundle were removed");
      const [dir] = await readdir(join(joiner.env["XDG_STATE_HOME"] as string, "bot-bottle"));
      const meta = JSON.parse(
        await readFile(
          join(joiner.env["XDG_STATE_HOME"] as string, "bot-bottle", dir ?? "", "metadata.json"),
          "utf8",
        ),
      ) as Record<string, unknown>;
      assert.equal(meta["status"], "failed");
      assert.match(String(meta["error"]), /could not join the network/);

      const net = await joiner.network([]);
      await writeFile(
        joiner.manifest,
        JSON.stringify(TestBottles.shellManifest([agent], { egress: { network: net } })),
      );
      const slug = await joiner.start(agent);
      const joined = await run("docker", [
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        `bot-bottle-${slug}-bundle`,
      ]);
      assert.ok(
        net in (JSON.parse(joined.stdout) as Record<string, unknown>),
        "the twin: an existing network is joined",
      );
      const agentNets = await run("docker", [
        "inspect",
        "--format",
        "{{json .NetworkSettings.Networks}}",
        `bot-bottle-${slug}-agent`,
      ]);
      assert.deepEqual(Object.keys(JSON.parse(agentNets.stdout) as Record<string, unknown>), [
        `bot-bottle-${slug}-internal`,
      ]);
      await joiner.cli(["stop", slug]);
    } finally {
      await joiner.teardown();
    }
  });

  test("start refuses a bottle whose token variable is unset, before creating anything", async () => {
    const agent = t.agent("keyed");
    const keyed = new TestBottles();
    await keyed.setup(
      TestBottles.shellManifest([agent], {
        egress: {
          routes: [{ host: "api.example.com", auth: { token_env: "BOT_BOTTLE_TEST_UNSET_TOKEN" } }],
        },
      }),
    );
    try {
      const r = await keyed.cli(["start", agent, "--detach", "--yes"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr,
        /bottles\.box\.egress\.routes\[0\]\.auth\.token_env names an environment variable that is not set/,
      );
      assert.deepEqual(await keyed.leftovers(agent), []);

      const secret = "sk-test-abcdefghijklmnop0123456789";
      keyed.env["BOT_BOTTLE_TEST_UNSET_TOKEN"] = secret;
      const plan = await keyed.cli(["start", agent, "--dry-run", "--json"]);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /BOT_BOTTLE_TEST_UNSET_TOKEN/);
      assert.ok(!plan.stdout.includes(secret), "the plan names the variable, never its value");
    } finally {
      await keyed.teardown();
    }
  });
});
