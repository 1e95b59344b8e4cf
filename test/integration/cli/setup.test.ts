import assert from "node:assert/strict";
import { access, chmod, constants, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { CLI, runCli, STACK_LINE } from "../../helpers/cli.js";

/** The first executable `program` on PATH or in the sbin folders, found here, not by setup. */
async function located(program: string): Promise<string | undefined> {
  const dirs = [
    ...(process.env["PATH"] ?? "").split(delimiter),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
  ];
  for (const dir of dirs.filter(Boolean)) {
    const path = join(dir, program);
    if (
      await access(path, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return undefined;
}

describe("bot-bottle setup, on this machine (its engine already running)", () => {
  let dir = "";
  let env: NodeJS.ProcessEnv = {};
  let calls = "";
  let version = "";
  const tools: Record<string, string> = {};

  before(async () => {
    // The integration tier provisions this machine with `setup` itself (scripts/test.sh), so
    // everything is in place here; these tests prove that a ready machine is left alone.
    version = (await run("docker", ["info", "--format", "{{.ServerVersion}}"])).stdout.trim();
    for (const program of ["docker", "dockerd", "debootstrap", "setfacl"]) {
      const path = await located(program);
      assert.ok(path, `${program} is missing: scripts/test.sh runs \`setup\` before this tier`);
      tools[program] = path;
    }
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-setup-"));
    // apt-get and systemctl stand-ins ahead of the real ones, so anything setup runs of them
    // is recorded, and changes nothing.
    // Open to every user: the test run as nobody must reach the stand-ins and their log too.
    await chmod(dir, 0o755);
    calls = join(dir, "calls.log");
    await writeFile(calls, "");
    await chmod(calls, 0o666);
    for (const program of ["apt-get", "systemctl"]) {
      const path = join(dir, program);
      await writeFile(path, `#!/bin/sh\necho "${program} $*" >> "${calls}"\nexit 1\n`);
      await chmod(path, 0o755);
    }
    env = {
      ...process.env,
      PATH: `${dir}${delimiter}${process.env["PATH"] ?? ""}`,
      XDG_STATE_HOME: join(dir, "state"),
    };
    delete env["DOCKER_HOST"];
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const ranNothing = async () =>
    assert.equal(await readFile(calls, "utf8").catch(() => ""), "", "apt-get or systemctl ran");

  const present = () => [
    `docker.io already installed (${tools["docker"]}, ${tools["dockerd"]})`,
    `debootstrap already installed (${tools["debootstrap"]})`,
    `acl already installed (${tools["setfacl"]})`,
    `Docker engine already running: server ${version} at unix:///var/run/docker.sock`,
  ];

  test("finds everything in place, installs and starts nothing, and ends with doctor's checks", async () => {
    const r = await runCli(["setup"], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await ranNothing();
    const steps = r.stderr.split("\n").filter((l) => !/^\s+\(\d+\.\d s\)$/.test(l));
    assert.deepEqual(steps, [
      "[1/3] packages: docker.io, debootstrap, acl",
      ...present().slice(0, 3),
      "[2/3] Docker engine",
      present()[3],
      "[3/3] checks, as `bot-bottle doctor`",
      "this machine can run bottles",
      "",
    ]);
    assert.match(r.stdout, /^ok\s+docker engine\s+running: server \S+ \(API [\d.]+/m);
    assert.match(
      r.stdout,
      /^ok\s+host isolation\s+the agent's internal bridge holds no host address/m,
    );
    assert.doesNotMatch(r.stdout, /^FAIL/m);

    const json = await runCli(["setup", "--json"], { env });
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as {
      present: string[];
      done: string[];
      checks: { name: string }[];
    };
    assert.deepEqual(report.present, present());
    assert.deepEqual(report.done, []);
    assert.equal(report.checks[0]?.name, "docker engine");
    await ranNothing();
  });

  test("--dry-run says what is in place and that nothing would be done, and checks nothing", async () => {
    const r = await runCli(["setup", "--dry-run"], { env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, [...present(), "nothing to install or start", ""].join("\n"));
    assert.equal(r.stderr, "");
    await ranNothing();

    const json = await runCli(["setup", "--dry-run", "--json"], { env });
    assert.deepEqual(JSON.parse(json.stdout), {
      present: { packages: present().slice(0, 3), engine: present().slice(3) },
      install: [],
      actions: [],
    });
  });

  test("as a user the engine refuses, says to join the docker group, runs nothing, and exits 3", async () => {
    // nobody may not use the engine's socket; setup, run as nobody, must say so and stop. It may
    // read bot-bottle wherever it is checked out (a folder only root can enter, say): read and
    // search, never write, which the socket needs.
    assert.equal(process.getuid?.(), 0, "this tier runs as root (it provisions the machine)");
    const r = await run(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+dac_read_search",
        "--ambient-caps=+dac_read_search",
        process.execPath,
        CLI,
        "setup",
      ],
      { env: { ...env, HOME: dir }, okExitCodes: [0, 1, 2, 3] },
    );
    assert.equal(r.exitCode, 3, r.stdout + r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      "bot-bottle: setup cannot use the Docker engine here: the engine at unix:///var/run/docker.sock refuses this user (permission denied on its socket). Run:\n" +
        '  sudo usermod -aG docker "$USER"   # then log in again; the docker group is as powerful as root here\n' +
        "hint: then run `bot-bottle setup` again to check\n",
    );
    assert.doesNotMatch(r.stderr, STACK_LINE);
    await ranNothing();
  });
});
