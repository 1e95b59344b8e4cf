import assert from "node:assert/strict";
import { constants } from "node:fs";
import { access, mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CommandNotFoundError, run } from "../../../src/exec/run.js";
import { runCli, STACK_LINE } from "../../helpers/cli.js";

interface Check {
  name: string;
  status: string;
  detail: string;
  remedy?: string;
}

const LOW_DISK_BYTES = 5 * 1024 ** 3;

/** A disk row: "ok" with plenty of room, "warn" below 5 GiB, measured on `path` itself. */
/** What doctor must say of /dev/kvm on this machine: usable or not, measured here. */
async function kvmRow(): Promise<(c: Check) => void> {
  const usable = await access("/dev/kvm", constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  return (c) => {
    assert.equal(c.status, usable ? "ok" : "info", c.detail);
    assert.match(
      c.detail,
      usable ? /^\/dev\/kvm is usable$/ : /^\/dev\/kvm (does not exist|is not usable)/,
    );
  };
}

async function diskRow(path: string): Promise<(c: Check) => void> {
  const s = await statfs(path);
  const free = s.bavail * s.bsize;
  return (c) => {
    assert.match(
      c.detail,
      new RegExp(`^[\\d.]+ GiB free on ${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`),
    );
    assert.equal(c.status, free < LOW_DISK_BYTES ? "warn" : "ok", c.detail);
  };
}

describe("bot-bottle doctor, against the real engine", () => {
  test("reports each check's exact state on this machine", async () => {
    // Every expectation is worked out here, independently of doctor: the engine's root dir and
    // images from docker itself, free space from statfs, smolvm from PATH.
    const dir = await mkdtemp(join(tmpdir(), "bot-bottle-doctor-"));
    try {
      const env = { ...process.env, XDG_STATE_HOME: join(dir, "state") };
      const r = await runCli(["doctor"], { env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^ok\s+docker engine\s+running: server \S+ \(API [\d.]+/m);

      const json = await runCli(["doctor", "--json"], { env });
      const checks = JSON.parse(json.stdout) as Check[];
      const rootDir = (
        await run("docker", ["info", "--format", "{{.DockerRootDir}}"])
      ).stdout.trim();
      const smolvm = await run("smolvm", ["--version"]).then(
        () => true,
        (err: unknown) => {
          if (err instanceof CommandNotFoundError) return false;
          throw err;
        },
      );
      const expected: Record<string, (c: Check) => void> = {
        "docker engine": (c) => {
          assert.equal(c.status, "ok");
          assert.match(c.detail, /^running: server \S+ \(API [\d.]+, linux\/\w+\), client /);
        },
        "host isolation": (c) =>
          assert.deepEqual(c, {
            name: "host isolation",
            status: "ok",
            detail:
              "the agent's internal bridge holds no host address: host services are out of reach",
          }),
        "address pool": (c) => {
          assert.equal(c.status, "ok", c.detail);
          assert.match(
            c.detail,
            /^10\.213\.0\.0\/16 \(the default, a \/28 per network\): room for \d+ more of 2048 bottles, \d+ on this engine$/,
          );
        },
        "disk (docker)": await diskRow(rootDir),
        // The state root does not exist yet: doctor measures its nearest existing parent.
        "disk (state)": await diskRow(dir),
        smolvm: (c) =>
          smolvm
            ? assert.equal(c.status, "ok")
            : assert.deepEqual(c, {
                name: "smolvm",
                status: "info",
                detail: "not installed",
                remedy:
                  "optional: only the smolmachines (microVM) backend needs it; Docker bottles work without it",
              }),
        kvm: await kvmRow(),
      };
      for (const [name, ref] of [
        ["base", "bot-bottle/base:trixie"],
        ["shell", "bot-bottle/shell:latest"],
        ["bundle", "bot-bottle/bundle:latest"],
      ] as const) {
        const present =
          (await run("docker", ["image", "inspect", ref], { okExitCodes: [0, 1] })).exitCode === 0;
        expected[`image ${name}`] = (c) => {
          assert.equal(c.status, present ? "ok" : "warn", `${ref}: ${c.detail}`);
          assert.ok(
            c.detail.startsWith(present ? `${ref} present, ` : `${ref} is missing (`),
            c.detail,
          );
        };
      }
      // The agent templates: start builds them, so a missing one is only info; a present one
      // names the CLI it pins, read from its label.
      for (const [name, ref, cli] of [
        ["claude", "bot-bottle/claude:latest", "@anthropic-ai/claude-code@"],
        ["codex", "bot-bottle/codex:latest", "@openai/codex@"],
      ] as const) {
        const label = (
          await run(
            "docker",
            [
              "image",
              "inspect",
              "--format",
              '{{index .Config.Labels "dev.bot-bottle.agent-version"}}',
              ref,
            ],
            { okExitCodes: [0, 1] },
          )
        ).stdout.trim();
        expected[`image ${name}`] = (c) => {
          if (!label) return assert.equal(c.status, "info", `${ref}: ${c.detail}`);
          assert.ok(["ok", "info"].includes(c.status), `${ref}: ${c.detail}`);
          assert.ok(label.startsWith(cli), label);
          assert.ok(c.detail.includes(label), `${c.detail} names ${label}`);
        };
      }
      // Grouped by backend (Docker's checks, then smolvm's), then the state dir's disk.
      const order = [
        "docker engine",
        "host isolation",
        "address pool",
        "disk (docker)",
        "image base",
        "image shell",
        "image claude",
        "image codex",
        "image bundle",
        "smolvm",
        "kvm",
        "disk (state)",
      ];
      assert.deepEqual(
        order.toSorted(),
        Object.keys(expected).toSorted(),
        "the test covers every row",
      );
      assert.deepEqual(
        checks.map((c) => c.name),
        order,
        "doctor reports these rows, in this order",
      );
      for (const c of checks) expected[c.name]?.(c);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("reports a stopped engine as a failure, says what to do, and exits 3", async () => {
    // The socket of an engine that is not running: the path exists, nothing listens there.
    const dir = await mkdtemp(join(tmpdir(), "bot-bottle-doctor-"));
    try {
      const env = { ...process.env, DOCKER_HOST: `unix://${join(dir, "docker.sock")}` };
      const r = await runCli(["doctor"], { env });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stdout, /^FAIL\s+docker engine\s+not reachable at unix:\/\/.*docker\.sock/m);
      assert.match(
        r.stdout,
        /→ `bot-bottle setup` starts it \(Debian, as root\); elsewhere `sudo systemctl start docker`/,
      );
      assert.match(
        r.stdout,
        /image base\s+bot-bottle\/base:\S+: cannot check while the engine is down/,
      );
      assert.match(r.stderr, /a required check failed: docker engine/);
      assert.doesNotMatch(r.stderr, STACK_LINE);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
