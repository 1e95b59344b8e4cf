import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PrerequisiteError } from "../../../src/errors.js";
import { CommandFailedError, CommandNotFoundError, type Runner } from "../../../src/exec/run.js";
import {
  describeActions,
  prepareSetup,
  setupHost,
  type HostPlatform,
} from "../../../src/lifecycle/setup.js";
import type { Progress } from "../../../src/shared/progress.js";

const PATHS: Record<string, string> = {
  docker: "/usr/bin/docker",
  dockerd: "/usr/sbin/dockerd",
  debootstrap: "/usr/sbin/debootstrap",
  setfacl: "/usr/bin/setfacl",
  "apt-get": "/usr/bin/apt-get",
  systemctl: "/usr/bin/systemctl",
};
const PACKAGE_PROGRAMS: Record<string, string[]> = {
  "docker.io": ["docker", "dockerd"],
  debootstrap: ["debootstrap"],
  acl: ["setfacl"],
};

/**
 * A machine that only exists in memory: the programs on it, whether its engine answers, and what
 * installing a package or starting the engine changes. Every command run is recorded.
 */
class FakeMachine {
  readonly calls: string[] = [];
  readonly programs: Set<string>;
  engineUp: boolean;
  denied = false;
  /** docker.io's package scripts start the engine (as they do under systemd). */
  engineStartsOnInstall = false;
  debian = true;
  root = true;
  systemd = true;

  constructor(options: { programs?: string[]; engineUp?: boolean } = {}) {
    this.programs = new Set(options.programs ?? ["apt-get", "systemctl"]);
    this.engineUp = options.engineUp ?? false;
  }

  platform(): HostPlatform {
    return {
      debian: this.debian,
      root: this.root,
      systemd: this.systemd,
      which: (program) => Promise.resolve(this.programs.has(program) ? PATHS[program] : undefined),
    };
  }

  runner(): Runner {
    return {
      run: (command, args) => {
        const line = [command, ...args].join(" ");
        this.calls.push(line);
        const ok = (stdout = "") => Promise.resolve({ exitCode: 0, stdout, stderr: "" });
        if (!this.programs.has(command) && !Object.values(PATHS).includes(command))
          return Promise.reject(new CommandNotFoundError(command));
        if (command === "docker") {
          if (this.denied)
            return Promise.reject(
              new CommandFailedError(
                line,
                1,
                "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: Get ...: connect: permission denied",
                "exited with status 1",
              ),
            );
          if (this.engineUp) return ok("27.5.1\n");
          return Promise.reject(
            new CommandFailedError(
              line,
              1,
              "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
              "exited with status 1",
            ),
          );
        }
        if (command === "apt-get" && args[0] === "install") {
          for (const pkg of args.slice(2))
            for (const p of PACKAGE_PROGRAMS[pkg] ?? []) this.programs.add(p);
          if (this.engineStartsOnInstall && args.includes("docker.io")) this.engineUp = true;
        }
        if (command === "systemctl" && args.join(" ") === "start docker") this.engineUp = true;
        return ok();
      },
      startDetached: (command, args, options) => {
        this.calls.push(`detached ${[command, ...args].join(" ")} > ${options.logFile}`);
        this.engineUp = true;
        return Promise.resolve({ pid: 4242, exited: () => undefined });
      },
    };
  }

  options(progress: Progress, env: NodeJS.ProcessEnv = {}) {
    return {
      runner: this.runner(),
      platform: this.platform(),
      env,
      progress,
      logFile: "/tmp/dockerd-test.log",
      pollMs: 1,
      deadlineMs: 1000,
    };
  }
}

function recorder(): Progress & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    step: (t) => lines.push(`step ${t}`),
    detail: () => undefined,
    done: (t) => lines.push(`done ${t}`),
    warn: (t) => lines.push(`warn ${t}`),
  };
}

const INFO = "docker info --format {{.ServerVersion}}";
const EVERYTHING = ["apt-get", "systemctl", "docker", "dockerd", "debootstrap", "setfacl"];

describe("bot-bottle setup, on a machine it can provision (Debian, root)", () => {
  test("with nothing installed, installs from Debian's archive, then starts the engine with systemd", async () => {
    const m = new FakeMachine();
    const progress = recorder();
    const report = await setupHost(m.options(progress));
    assert.deepEqual(m.calls, [
      INFO,
      "apt-get update",
      "apt-get install -y docker.io debootstrap acl",
      INFO,
      "systemctl start docker",
      INFO,
    ]);
    assert.deepEqual(report.done, [
      "installed docker.io, debootstrap, acl from Debian's archive",
      "Docker engine running: server 27.5.1 (systemctl start docker)",
    ]);
    assert.deepEqual(progress.lines, [
      "step packages: docker.io, debootstrap, acl",
      "done installed docker.io, debootstrap, acl from Debian's archive",
      "step Docker engine",
      "done Docker engine running: server 27.5.1 (systemctl start docker)",
    ]);
  });

  test("without systemd, starts dockerd in the background with its log in a file, and says so", async () => {
    const m = new FakeMachine();
    m.systemd = false;
    const report = await setupHost(m.options(recorder()));
    assert.deepEqual(m.calls, [
      INFO,
      "apt-get update",
      "apt-get install -y docker.io debootstrap acl",
      INFO,
      "detached /usr/sbin/dockerd > /tmp/dockerd-test.log",
      INFO,
    ]);
    assert.equal(report.engine?.pid, 4242);
    assert.match(
      report.done[1] ?? "",
      /^Docker engine running: server 27\.5\.1 \(dockerd pid 4242 in the background, log \/tmp\/dockerd-test\.log; it does not come back after a reboot/,
    );
  });

  test("with everything installed and the engine running, runs nothing but the check and says why", async () => {
    const m = new FakeMachine({ programs: EVERYTHING, engineUp: true });
    const progress = recorder();
    const report = await setupHost(m.options(progress));
    assert.deepEqual(m.calls, [INFO]);
    assert.deepEqual(report.done, []);
    assert.deepEqual(progress.lines, [
      "step packages: docker.io, debootstrap, acl",
      "done docker.io already installed (/usr/bin/docker, /usr/sbin/dockerd)",
      "done debootstrap already installed (/usr/sbin/debootstrap)",
      "done acl already installed (/usr/bin/setfacl)",
      "step Docker engine",
      "done Docker engine already running: server 27.5.1 at unix:///var/run/docker.sock",
    ]);
  });

  test("is idempotent: a second run after a full setup does nothing", async () => {
    const m = new FakeMachine();
    m.systemd = false;
    await setupHost(m.options(recorder()));
    m.calls.length = 0;
    const again = await setupHost(m.options(recorder()));
    assert.deepEqual(m.calls, [INFO]);
    assert.deepEqual(again.done, []);
  });

  test("installs only what is missing, and starts an engine that is installed but stopped", async () => {
    const m = new FakeMachine({ programs: ["apt-get", "systemctl", "docker", "dockerd"] });
    await setupHost(m.options(recorder()));
    assert.deepEqual(m.calls, [
      INFO,
      "apt-get update",
      "apt-get install -y debootstrap acl",
      INFO,
      "systemctl start docker",
      INFO,
    ]);
  });

  test("does not start an engine that installing docker.io already started", async () => {
    const m = new FakeMachine();
    m.engineStartsOnInstall = true;
    const report = await setupHost(m.options(recorder()));
    assert.ok(!m.calls.includes("systemctl start docker"), m.calls.join("\n"));
    assert.equal(
      report.done[1],
      "Docker engine running: server 27.5.1 (started when docker.io was installed)",
    );
  });

  test("an apt-get that fails is a prerequisite error naming the packages, and nothing is started", async () => {
    const m = new FakeMachine();
    const runner = m.runner();
    const failing: Runner = {
      ...runner,
      run: (command, args, options) =>
        command === "apt-get" && args[0] === "update"
          ? Promise.reject(
              new CommandFailedError(
                "apt-get update",
                100,
                "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease",
                "exited with status 100",
              ),
            )
          : runner.run(command, args, options),
    };
    await assert.rejects(
      setupHost({ ...m.options(recorder()), runner: failing }),
      (err: unknown) =>
        err instanceof PrerequisiteError &&
        /^could not install docker\.io, debootstrap, acl: `apt-get update` exited with status 100:\n {2}E: Failed to fetch/.test(
          err.message,
        ) &&
        /sources\.list/.test(err.hint ?? ""),
    );
    assert.ok(!m.calls.some((c) => c.startsWith("systemctl")), m.calls.join("\n"));
  });
});

describe("bot-bottle setup, where it cannot act: it installs nothing and says what to run", () => {
  const refusal = async (m: FakeMachine, env: NodeJS.ProcessEnv = {}) => {
    const progress = recorder();
    let caught: unknown;
    await setupHost(m.options(progress, env)).catch((err: unknown) => (caught = err));
    assert.ok(caught instanceof PrerequisiteError, String(caught));
    assert.equal(caught.exitCode, 3);
    // Only the read-only look at the engine ran; no step began.
    assert.deepEqual(m.calls, [INFO]);
    assert.deepEqual(progress.lines, []);
    return caught;
  };

  test("not root, with systemd: the apt-get and systemctl commands, with sudo", async () => {
    const m = new FakeMachine();
    m.root = false;
    const err = await refusal(m);
    assert.equal(
      err.message,
      "setup cannot install docker.io, debootstrap, acl from Debian's archive and start the Docker engine here: setup is not running as root. Run:\n" +
        "  sudo apt-get update\n" +
        "  sudo apt-get install -y docker.io debootstrap acl\n" +
        "  sudo systemctl start docker",
    );
    assert.match(err.hint ?? "", /sudo bot-bottle setup/);
  });

  test("not root, without systemd: dockerd in the background with its log in a file", async () => {
    const m = new FakeMachine({ programs: EVERYTHING });
    m.root = false;
    m.systemd = false;
    const err = await refusal(m);
    assert.match(
      err.message,
      /^setup cannot start the Docker engine here: setup is not running as root\. Run:\n {2}sudo sh -c 'nohup dockerd >>\/var\/log\/bot-bottle-dockerd\.log 2>&1 <\/dev\/null &'$/,
    );
  });

  test("not Debian: Docker's install documentation, and the tools by name", async () => {
    const m = new FakeMachine({ programs: ["systemctl"] });
    m.debian = false;
    const err = await refusal(m);
    assert.match(err.message, /: this is not Debian or Ubuntu \(no \/etc\/debian_version\)\. Run:/);
    assert.match(err.message, /https:\/\/docs\.docker\.com\/engine\/install\//);
    assert.match(
      err.message,
      /install debootstrap, setfacl with this system's package manager \(Debian's packages: debootstrap, acl\)/,
    );
    assert.match(err.message, /\n {2}systemctl start docker$/);
    assert.doesNotMatch(err.message, /apt-get/);
  });

  test("offers `sudo bot-bottle setup` only where root is all that is missing", async () => {
    const m = new FakeMachine({ programs: ["systemctl"] });
    m.debian = false;
    m.root = false;
    const err = await refusal(m);
    assert.match(err.message, /: setup is not running as root; this is not Debian or Ubuntu/);
    assert.equal(err.hint, "then run `bot-bottle setup` again to check");
  });

  test("Debian without apt-get says so", async () => {
    const m = new FakeMachine({ programs: ["systemctl", "docker", "dockerd", "debootstrap"] });
    const err = await refusal(m);
    assert.match(err.message, /: apt-get is not installed\. Run:/);
  });

  test("an engine elsewhere (DOCKER_HOST) that does not answer is not replaced by a local one", async () => {
    const m = new FakeMachine({ programs: EVERYTHING });
    const err = await refusal(m, { DOCKER_HOST: "tcp://10.0.0.5:2376" });
    assert.match(
      err.message,
      /DOCKER_HOST=tcp:\/\/10\.0\.0\.5:2376 does not answer \(Cannot connect to the Docker daemon/,
    );
    assert.match(err.message, /start the engine at tcp:\/\/10\.0\.0\.5:2376, or unset DOCKER_HOST/);
  });

  test("an engine that refuses this user: the docker group, said to be as good as root", async () => {
    const m = new FakeMachine({ programs: EVERYTHING, engineUp: true });
    m.root = false;
    m.denied = true;
    const err = await refusal(m);
    assert.match(
      err.message,
      /the engine at unix:\/\/\/var\/run\/docker\.sock refuses this user \(permission denied on its socket\)\. Run:\n {2}sudo usermod -aG docker "\$USER" {3}# then log in again; the docker group is as powerful as root here$/,
    );
  });
});

describe("bot-bottle setup --dry-run's plan", () => {
  test("lists the actions and changes nothing", async () => {
    const m = new FakeMachine({ programs: ["apt-get", "docker", "dockerd", "debootstrap"] });
    m.systemd = false;
    const { plan } = await prepareSetup({ runner: m.runner(), platform: m.platform(), env: {} });
    assert.deepEqual(m.calls, [INFO]);
    assert.deepEqual(describeActions(plan), [
      "install acl from Debian's archive: apt-get update; apt-get install -y acl",
      "start the Docker engine: dockerd in the background, log in /var/log/bot-bottle-dockerd.log; wait for `docker info` to answer",
    ]);
    assert.equal(plan.blocked, undefined);
  });

  test("an engine that answers from elsewhere makes docker.io unnecessary", async () => {
    const m = new FakeMachine({ programs: [...EVERYTHING].filter((p) => p !== "dockerd") });
    m.engineUp = true;
    const { plan } = await prepareSetup({
      runner: m.runner(),
      platform: m.platform(),
      env: { DOCKER_HOST: "ssh://build-host" },
    });
    assert.deepEqual(plan.install, []);
    assert.equal(plan.start, undefined);
    assert.deepEqual(
      plan.present.packages[0],
      "docker.io not needed: an engine answers at ssh://build-host",
    );
  });
});
