import assert from "node:assert/strict";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { probeEngine, startEngine } from "../../../src/backends/docker/engine.js";
import { PrerequisiteError } from "../../../src/errors.js";
import { CommandFailedError, type Runner } from "../../../src/exec/run.js";

const quiet = { step: () => {}, detail: () => {}, done: () => {}, warn: () => {} };
const DOWN =
  "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

/**
 * An engine that never answers; dockerd "runs" until `exitAfter` polls, when given, and writes
 * `writes` to its log as it starts.
 */
function silentEngine(exitAfter?: number, log?: string, writes = ""): Runner & { polls: number } {
  const runner = {
    polls: 0,
    run: (command: string, args: readonly string[]) => {
      if (command === "docker") runner.polls++;
      return Promise.reject(
        new CommandFailedError([command, ...args].join(" "), 1, DOWN, "exited with status 1"),
      );
    },
    startDetached: async () => {
      if (log) await appendFile(log, writes);
      return {
        pid: 7,
        exited: () =>
          exitAfter !== undefined && runner.polls >= exitAfter
            ? { code: 1, signal: null }
            : undefined,
      };
    },
  };
  return runner;
}

describe("starting the Docker engine and waiting for it", () => {
  let dir = "";
  let log = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-engine-"));
    log = join(dir, "dockerd.log");
    // An earlier run's lines, which no failure of this run may quote.
    await writeFile(log, 'level=error msg="an earlier run"\n');
  });
  const thisRun =
    Array.from({ length: 30 }, (_, i) => `level=info msg="line ${i}"`).join("\n") +
    '\nlevel=error msg="failed to start daemon: pid file found, ensure docker is not running"\n';
  after(() => rm(dir, { recursive: true, force: true }));

  test("a dockerd that exits before answering fails at once, with its status and the log's last lines", async () => {
    const started = Date.now();
    await assert.rejects(
      startEngine({
        runner: silentEngine(1, log, thisRun),
        env: {},
        method: "dockerd",
        dockerd: "/usr/sbin/dockerd",
        progress: quiet,
        logFile: log,
        deadlineMs: 60_000,
        pollMs: 1,
      }),
      (err: unknown) => {
        assert.ok(err instanceof PrerequisiteError);
        assert.equal(err.exitCode, 3);
        assert.match(
          err.message,
          /^dockerd exited \(status 1\) before the engine answered; `docker info`: Cannot connect/,
        );
        assert.match(err.message, new RegExp(`last lines of ${log}:\\n`));
        assert.match(err.message, /pid file found, ensure docker is not running"$/);
        assert.doesNotMatch(err.message, /"line 19"/, "only the last lines");
        assert.match(err.message, /"line 29"/);
        assert.doesNotMatch(err.message, /an earlier run/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, "did not wait out the deadline");
  });

  test("an engine that does not answer within the deadline is named, with the deadline and the log", async () => {
    await assert.rejects(
      startEngine({
        runner: silentEngine(
          undefined,
          log,
          'level=info msg="API listen on /var/run/docker.sock"\n',
        ),
        env: {},
        method: "dockerd",
        dockerd: "/usr/sbin/dockerd",
        progress: quiet,
        logFile: log,
        deadlineMs: 200,
        pollMs: 20,
      }),
      /^PrerequisiteError: the Docker engine did not answer `docker info` within 0\.2 s after starting dockerd; `docker info`: Cannot connect to the Docker daemon .*; last lines of \S+:\n {2}level=info msg="API listen on \/var\/run\/docker.sock"$/s,
    );
  });

  test("under systemd, a failed `systemctl start docker` quotes the journal", async () => {
    const calls: string[] = [];
    const runner: Runner = {
      run: (command, args) => {
        calls.push([command, ...args].join(" "));
        if (command === "journalctl")
          return Promise.resolve({
            exitCode: 0,
            stdout: "docker.service: Failed with result 'exit-code'.\n",
            stderr: "",
          });
        return Promise.reject(
          new CommandFailedError(
            "systemctl start docker",
            1,
            "Job for docker.service failed.",
            "exited with status 1",
          ),
        );
      },
      startDetached: () => Promise.reject(new Error("not under systemd")),
    };
    await assert.rejects(
      startEngine({ runner, env: {}, method: "systemd", dockerd: "dockerd", progress: quiet }),
      (err: unknown) =>
        err instanceof PrerequisiteError &&
        /^`systemctl start docker` failed: Job for docker\.service failed\.; last lines of `journalctl -u docker`:\n {2}docker\.service: Failed/.test(
          err.message,
        ),
    );
    assert.deepEqual(calls, [
      "systemctl start docker",
      "journalctl -u docker -n 10 --no-pager -o cat",
    ]);
  });

  test("a socket this user may not use is told apart from an engine that is down", async () => {
    const denied: Runner = {
      run: () =>
        Promise.reject(
          new CommandFailedError(
            "docker info",
            1,
            'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get "http://...": dial unix /var/run/docker.sock: connect: permission denied',
            "exited with status 1",
          ),
        ),
      startDetached: () => Promise.reject(new Error("unused")),
    };
    assert.deepEqual(await probeEngine(denied, {}), {
      state: "denied",
      reason: "permission denied on its socket",
    });
    assert.deepEqual(await probeEngine(silentEngine(), {}), { state: "down", reason: DOWN });
  });
});
