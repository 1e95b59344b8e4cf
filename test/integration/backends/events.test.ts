/**
 * Watching bottles on the real engine: a bottle's container starting, turning healthy, dying and
 * going each tells the watcher within 2 s, and the smolmachines watcher hears its own bundles
 * only. A container without a slug label (even one run from a bot-bottle image, which carries the
 * schema label), a `docker exec` and the health checks' own execs tell it nothing. A `docker
 * events` that ends is run again; after close nothing comes and the process is gone; a process
 * that forgets to close exits all the same and takes `docker events` with it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { DockerBackend } from "../../../src/backends/docker/backend.js";
import { DockerCli } from "../../../src/backends/docker/cli.js";
import { eventsArgs, type ContainerWatch } from "../../../src/backends/docker/events.js";
import { baseImageRef, DEFAULT_SUITE } from "../../../src/backends/docker/images.js";
import { SmolBackend } from "../../../src/backends/smolmachines/backend.js";
import { SmolvmCli } from "../../../src/backends/smolmachines/smolvm.js";
import { run } from "../../../src/exec/run.js";
import { LABELS } from "../../../src/shared/labels.js";

const id = randomBytes(3).toString("hex");
const prefix = `bb-test-events-${id}`;
const image = baseImageRef(DEFAULT_SUITE);
const docker = new DockerCli(process.env);

/** A bottle's labels, as the plan gives them. */
const labels = (backend?: "smolmachines") =>
  [
    [LABELS.schema, "1"],
    [LABELS.slug, `test-events-${id}`],
    [LABELS.role, "bundle"],
    ...(backend ? [[LABELS.backend, backend]] : []),
  ].flatMap(([k, v]) => ["--label", `${k}=${v}`]);

/** A labelled container of the test's, running (`more`: options before the image). */
const runLabelled = (name: string, backend?: "smolmachines", more: readonly string[] = []) =>
  docker.run([
    "run",
    "--detach",
    "--name",
    name,
    ...labels(backend),
    ...more,
    image,
    "sleep",
    "600",
  ]);

const healthCheck = ["--health-cmd", "true", "--health-interval", "1s"];

/** A watch and the times it called back. */
class Watched {
  readonly calls: number[] = [];
  readonly watch: ContainerWatch;
  constructor(backend: DockerBackend | SmolBackend) {
    this.watch = backend.watch(() => this.calls.push(Date.now()));
    open.push(this.watch);
  }

  /** Waits for the call after the `seen`-th; returns when it came. */
  async next(seen: number, what: string, deadlineMs = 2000): Promise<number> {
    const started = Date.now();
    while (this.calls.length <= seen) {
      if (Date.now() - started > deadlineMs)
        assert.fail(`no call within ${deadlineMs} ms after ${what}`);
      await sleep(10);
    }
    return this.calls[seen] ?? 0;
  }
}

const open: ContainerWatch[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

async function gone(pid: number, deadlineMs = 5000): Promise<void> {
  const started = Date.now();
  while (alive(pid)) {
    if (Date.now() - started > deadlineMs) assert.fail(`process ${pid} still runs`);
    await sleep(20);
  }
}

async function healthy(name: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await docker.run(["inspect", "--format", "{{.State.Health.Status}}", name]);
    if (stdout.trim() === "healthy") return;
    await sleep(100);
  }
  assert.fail(`${name} did not turn healthy`);
}

describe("watching bottles' containers on the engine", () => {
  after(async () => {
    for (const w of open) w.close();
    const { stdout } = await docker.run(["ps", "-aq", "--filter", `name=^${prefix}-`]);
    const ids = stdout.split("\n").filter((l) => l.trim());
    if (ids.length) await docker.run(["rm", "--force", ...ids], { okExitCodes: [0, 1] });
  });

  test("a bottle's container starting, turning healthy, dying and going each tells the watcher", async (t) => {
    const name = `${prefix}-life`;
    const w = new Watched(new DockerBackend(docker));
    await docker.run([
      "create",
      "--name",
      name,
      ...labels(),
      ...healthCheck,
      image,
      "sleep",
      "600",
    ]);

    const startAt = Date.now();
    await docker.run(["start", name]);
    const started = await w.next(0, "docker start");
    await w.next(1, "the first health check", 5000);
    await healthy(name);
    const killAt = Date.now();
    await docker.run(["kill", name]);
    const died = await w.next(2, "docker kill");
    const removeAt = Date.now();
    await docker.run(["rm", name]);
    const removed = await w.next(3, "docker rm");
    t.diagnostic(
      `from the command to the call: start ${started - startAt} ms, kill ${died - killAt} ms, rm ${removed - removeAt} ms`,
    );
    await sleep(300);
    assert.equal(w.calls.length, 4, "one call per change");
  });

  test("another container, a docker exec and the health checks' execs tell it nothing", async () => {
    const name = `${prefix}-quiet`;
    // A running bottle container whose health checks run every second, healthy before the watch.
    await runLabelled(name, undefined, healthCheck);
    await healthy(name);
    const since = new Date();
    const w = new Watched(new DockerBackend(docker));

    const { stdout: imageLabels } = await docker.run([
      "image",
      "inspect",
      "--format",
      "{{json .Config.Labels}}",
      image,
    ]);
    assert.ok(LABELS.schema in (JSON.parse(imageLabels) as object), "the image carries the schema");
    const plain = await docker.run([
      "run",
      "--rm",
      "--name",
      `${prefix}-plain`,
      image,
      "echo",
      "plain ran",
    ]);
    assert.equal(plain.stdout.trim(), "plain ran");
    const exec = await docker.run(["exec", name, "echo", "exec ran"]);
    assert.equal(exec.stdout.trim(), "exec ran");
    await sleep(1500);
    assert.deepEqual(w.calls, [], "no call for them, nor for the health checks of the last 1.5 s");

    // The twin: the same watcher hears the bottle's container die.
    await docker.run(["kill", name]);
    await w.next(0, "docker kill");
    // The engine itself sent nothing else: the same filters, over the same span, give one line.
    const { stdout } = await docker.run([
      ...eventsArgs(since),
      "--until",
      (Date.now() / 1000).toFixed(3),
    ]);
    const sent = stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => (JSON.parse(l) as { Action: string }).Action);
    assert.deepEqual(sent, ["die"]);
  });

  test("the smolmachines watcher hears its bundles only, the Docker watcher Docker's only", async () => {
    const env = process.env;
    const ofDocker = new Watched(new DockerBackend(docker));
    const ofSmol = new Watched(new SmolBackend(new SmolvmCli(env), docker, env));
    await runLabelled(`${prefix}-smol`, "smolmachines");
    await ofSmol.next(0, "a smolmachines bundle's start");
    await runLabelled(`${prefix}-docker`);
    await ofDocker.next(0, "a Docker bottle's start");
    await sleep(500);
    assert.equal(ofSmol.calls.length, 1, "the smolmachines watcher heard the Docker bottle");
    assert.equal(ofDocker.calls.length, 1, "the Docker watcher heard the smolmachines bundle");
  });

  test("a docker events that ends while open runs again, and the watcher is told once it is back", async () => {
    const w = new Watched(new DockerBackend(docker));
    const first = w.watch.pid;
    assert.ok(first && alive(first));
    process.kill(first, "SIGKILL");
    await gone(first);
    // 1 s before it runs again, 1 s running before it counts as back.
    await w.next(0, "docker events was killed", 4000);
    const second = w.watch.pid;
    assert.ok(second && second !== first && alive(second));
    await runLabelled(`${prefix}-again`);
    await w.next(1, "a start after the restart");
  });

  test("after close nothing comes and docker events is gone", async () => {
    const name = `${prefix}-closed`;
    const w = new Watched(new DockerBackend(docker));
    const pid = w.watch.pid;
    assert.ok(pid && alive(pid));
    await runLabelled(name);
    await w.next(0, "docker run");

    w.watch.close();
    assert.equal(w.watch.pid, undefined);
    await gone(pid);
    await docker.run(["kill", name]);
    await docker.run(["rm", name]);
    await sleep(1000);
    assert.equal(w.calls.length, 1, "a call after close");
  });

  test("a process that never closes its watch exits all the same, and takes docker events along", async () => {
    const script = `
      import { DockerBackend } from "./src/backends/docker/backend.ts";
      import { DockerCli } from "./src/backends/docker/cli.ts";
      const watch = new DockerBackend(new DockerCli(process.env)).watch(() => {});
      console.log(watch.pid);
    `;
    const started = Date.now();
    const { stdout, stderr } = await run(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "--eval", script],
      { timeoutMs: 20_000 },
    );
    const pid = Number(stdout.trim());
    assert.ok(pid > 0, `printed ${stdout}`);
    assert.equal(stderr, "", "nothing of docker events on the terminal");
    assert.ok(Date.now() - started < 20_000);
    await gone(pid);
  });
});
