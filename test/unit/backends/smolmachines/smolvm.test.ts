import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  hasExecUser,
  isTransportDrop,
  parseVersion,
  SmolvmCli,
  type SmolvmVersion,
} from "../../../../src/backends/smolmachines/smolvm.js";
import { CommandFailedError } from "../../../../src/exec/run.js";

function version(text: string): SmolvmVersion {
  const v = parseVersion(text);
  assert.ok(v, `${text} parses`);
  return v;
}

describe("reading smolvm's version", () => {
  test("reads major, minor and patch from `smolvm --version`", () => {
    assert.deepEqual(parseVersion("smolvm 1.9.3\n"), {
      text: "smolvm 1.9.3",
      major: 1,
      minor: 9,
      patch: 3,
    });
  });

  test("reads a two-digit minor and ignores a build suffix", () => {
    const v = version("smolvm 1.14.0 (abc1234)");
    assert.deepEqual([v.major, v.minor, v.patch], [1, 14, 0]);
  });

  test("gives no version for output that holds none", () => {
    assert.equal(parseVersion("smolvm: command not understood"), undefined);
    assert.equal(parseVersion(""), undefined);
  });
});

describe("whether smolvm can run an exec as a user (-u)", () => {
  test("versions before 1.14 cannot", () => {
    assert.equal(hasExecUser(version("smolvm 1.9.3")), false);
    assert.equal(hasExecUser(version("smolvm 1.13.9")), false);
    assert.equal(hasExecUser(version("smolvm 0.99.0")), false);
  });

  test("1.14 and later can, across a major version", () => {
    assert.equal(hasExecUser(version("smolvm 1.14.0")), true);
    assert.equal(hasExecUser(version("smolvm 1.20.1")), true);
    assert.equal(hasExecUser(version("smolvm 2.0.0")), true);
  });
});

describe("recognising an exec whose transport dropped", () => {
  const line = "smolvm machine exec --name m -- true";

  test("status 137 with stderr ending in 'client disconnected' is a dropped transport", () => {
    assert.equal(
      isTransportDrop(
        new CommandFailedError(line, 137, "Error: client disconnected\n", "exited with status 137"),
      ),
      true,
    );
  });

  test("status 137 with any other stderr is a real failure (the command was killed)", () => {
    assert.equal(
      isTransportDrop(new CommandFailedError(line, 137, "Killed\n", "exited with status 137")),
      false,
    );
    assert.equal(
      isTransportDrop(
        new CommandFailedError(
          line,
          137,
          "client disconnected\nthen the command went on and failed\n",
          "exited with status 137",
        ),
      ),
      false,
      "the words must end stderr, not merely appear in it",
    );
  });

  test("'client disconnected' with another status is a real failure", () => {
    assert.equal(
      isTransportDrop(
        new CommandFailedError(line, 1, "Error: client disconnected\n", "exited with status 1"),
      ),
      false,
    );
    assert.equal(
      isTransportDrop(
        new CommandFailedError(line, null, "Error: client disconnected", "was killed by SIGKILL"),
      ),
      false,
    );
  });

  test("an error that is not a failed command is never a dropped transport", () => {
    const plain = Object.assign(new Error("client disconnected"), {
      exitStatus: 137,
      stderr: "client disconnected",
    });
    assert.equal(isTransportDrop(plain), false);
    assert.equal(isTransportDrop(undefined), false);
  });
});

describe("the argv of `smolvm machine exec`", () => {
  const cli = new SmolvmCli({});

  test("names the machine long-form and puts the command after --", () => {
    assert.deepEqual(cli.execArgs("bb-agent", ["id", "-u"], {}), [
      "machine",
      "exec",
      "--name",
      "bb-agent",
      "--",
      "id",
      "-u",
    ]);
  });

  test("passes -u only when a user is given", () => {
    assert.deepEqual(cli.execArgs("m", ["true"], { user: "node" }), [
      "machine",
      "exec",
      "--name",
      "m",
      "-u",
      "node",
      "--",
      "true",
    ]);
    assert.ok(!cli.execArgs("m", ["true"], { user: "" }).includes("-u"));
  });

  test("passes each environment entry as its own -e K=V", () => {
    const args = cli.execArgs("m", ["env"], { env: { A: "1", B: "x=y z" } });
    assert.deepEqual(args.slice(4, 8), ["-e", "A=1", "-e", "B=x=y z"]);
  });

  test("passes the working directory with -w", () => {
    const args = cli.execArgs("m", ["pwd"], { workdir: "/home/node/workspace" });
    assert.deepEqual(args.slice(4, 6), ["-w", "/home/node/workspace"]);
  });

  test("gives --timeout in whole seconds, rounded up, never below 1s", () => {
    const timeout = (timeoutMs: number) => {
      const args = cli.execArgs("m", ["true"], { timeoutMs });
      return args[args.indexOf("--timeout") + 1];
    };
    assert.equal(timeout(30_000), "30s");
    assert.equal(timeout(1_001), "2s");
    assert.equal(timeout(999), "1s");
    assert.equal(timeout(0), "1s");
    assert.ok(!cli.execArgs("m", ["true"], {}).includes("--timeout"));
  });

  test("puts the interactive flag last before --, and only when asked", () => {
    const args = cli.execArgs("m", ["bash"], { user: "node" }, "-it");
    assert.deepEqual(args.slice(-3), ["-it", "--", "bash"]);
    assert.ok(!cli.execArgs("m", ["bash"], {}).includes("-it"));
  });

  test("keeps every option before -- so the command's own flags reach the command", () => {
    const args = cli.execArgs("m", ["ls", "-w", "--timeout", "-e"], {
      user: "node",
      env: { K: "V" },
      workdir: "/w",
      timeoutMs: 5_000,
    });
    assert.deepEqual(args, [
      "machine",
      "exec",
      "--name",
      "m",
      "-u",
      "node",
      "-e",
      "K=V",
      "-w",
      "/w",
      "--timeout",
      "5s",
      "--",
      "ls",
      "-w",
      "--timeout",
      "-e",
    ]);
  });
});
