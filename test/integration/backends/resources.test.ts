/**
 * Listing bot-bottle's containers and networks, on the real engine: over the engine's socket
 * (what `ls` does where the operator's `docker` talks to that socket) and through the `docker`
 * CLI (where a context is chosen) the same resources come back, labels, states and health
 * included; and a socket that does not answer is left to the CLI, whose words the error keeps.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DockerCli } from "../../../src/backends/docker/cli.js";
import { socketOf } from "../../../src/backends/docker/engine-api.js";
import { baseImageRef, DEFAULT_SUITE } from "../../../src/backends/docker/images.js";
import { dockerResources } from "../../../src/backends/docker/resources.js";
import type { Resource } from "../../../src/backends/backend.js";
import { CommandFailedError, run, type RunOptions } from "../../../src/exec/run.js";
import { LABELS } from "../../../src/shared/labels.js";

/** The engine client, counting the `docker` processes it runs. */
class CountingDocker extends DockerCli {
  calls = 0;
  override run(args: readonly string[], options: RunOptions = {}) {
    this.calls++;
    return super.run(args, options);
  }
}

const id = randomBytes(3).toString("hex");
const slug = `test-res-${id}`;
const labels = (role: string) =>
  [
    [LABELS.slug, slug],
    [LABELS.role, role],
    [LABELS.agent, "lister"],
    [LABELS.bottle, "box"],
    [LABELS.stateDir, `/tmp/state/${slug}`],
    ...(role === "bundle" ? [[LABELS.ports, "egress=9099,supervise=9100"]] : []),
  ].flatMap(([k, v]) => ["--label", `${k}=${v}`]);

/** What a listing says, in an order both sources share, without the creation times' format. */
const comparable = (rs: Resource[]) =>
  rs
    .map(({ created, ...r }) => ({ ...r, created: created !== "" }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));

describe("listing bot-bottle's resources on the engine", () => {
  let config = "";
  before(async () => {
    await run("docker", ["network", "create", ...labels("internal-network"), `${slug}-net`]);
    await run("docker", [
      "run",
      "--detach",
      "--name",
      `${slug}-bundle`,
      ...labels("bundle"),
      "--health-cmd",
      "true",
      "--health-interval",
      "1s",
      baseImageRef(DEFAULT_SUITE),
      "sleep",
      "600",
    ]);
    await run("docker", [
      "create",
      "--name",
      `${slug}-agent`,
      ...labels("agent"),
      baseImageRef(DEFAULT_SUITE),
    ]);
    // A CLI configuration whose current context is another name for the same engine: the CLI
    // honours it, so the listing must go through the CLI.
    config = await mkdtemp(join(tmpdir(), "bot-bottle-docker-config-"));
    await run(
      "docker",
      ["context", "create", "same-engine", "--docker", "host=unix:///var/run/docker.sock"],
      {
        env: { ...process.env, DOCKER_CONFIG: config },
      },
    );
    await run("docker", ["context", "use", "same-engine"], {
      env: { ...process.env, DOCKER_CONFIG: config },
    });
    // The bundle's first health check has run.
    for (let i = 0; i < 50; i++) {
      const { stdout } = await run("docker", [
        "inspect",
        "--format",
        "{{.State.Health.Status}}",
        `${slug}-bundle`,
      ]);
      if (stdout.trim() === "healthy") break;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  after(async () => {
    await run("docker", ["rm", "--force", `${slug}-bundle`, `${slug}-agent`], {
      okExitCodes: [0, 1],
    });
    await run("docker", ["network", "rm", `${slug}-net`], { okExitCodes: [0, 1] });
    await rm(config, { recursive: true, force: true });
  });

  test("the socket is used only where the CLI would use it", () => {
    assert.equal(socketOf({ HOME: config }), "/var/run/docker.sock");
    assert.equal(
      socketOf({ DOCKER_HOST: "unix:///run/user/1000/docker.sock" }),
      "/run/user/1000/docker.sock",
    );
    assert.equal(socketOf({ DOCKER_HOST: "tcp://10.0.0.1:2376" }), undefined);
    assert.equal(socketOf({ DOCKER_HOST: "ssh://me@box" }), undefined);
    assert.equal(socketOf({ DOCKER_CONTEXT: "remote" }), undefined);
    assert.equal(socketOf({ DOCKER_CONTEXT: "default" }), "/var/run/docker.sock");
    assert.equal(socketOf({ DOCKER_CONFIG: config }), undefined, "the config's current context");
  });

  test("the engine's socket and the CLI list the same resources", async () => {
    const engine = new CountingDocker(process.env);
    const cli = new CountingDocker({ ...process.env, DOCKER_CONFIG: config });
    const direct = await dockerResources(engine, slug);
    const viaCli = await dockerResources(cli, slug);
    assert.deepEqual(
      [engine.calls, cli.calls],
      [0, 2],
      "no docker process on the socket; two else",
    );
    assert.deepEqual(direct.map((r) => [r.kind, r.role]).sort(), [
      ["container", "agent"],
      ["container", "bundle"],
      ["network", "internal-network"],
    ]);
    const bundle = direct.find((r) => r.role === "bundle");
    assert.equal(bundle?.state, "running");
    assert.equal(bundle?.health, "healthy");
    assert.deepEqual(bundle?.ports, { egress: 9099, supervise: 9100 });
    assert.equal(bundle?.stateDir, `/tmp/state/${slug}`);
    assert.equal(direct.find((r) => r.role === "agent")?.state, "created");
    assert.deepEqual(comparable(viaCli), comparable(direct));
  });

  test("a socket that does not answer leaves the listing to the CLI, whose error names it", async () => {
    const env = { ...process.env, DOCKER_HOST: "unix:///nonexistent/docker.sock" };
    assert.equal(socketOf(env), "/nonexistent/docker.sock");
    await assert.rejects(
      dockerResources(new DockerCli(env), slug),
      (err: unknown) =>
        err instanceof CommandFailedError &&
        /unix:\/\/\/nonexistent\/docker\.sock/.test(err.stderr),
    );
  });
});
