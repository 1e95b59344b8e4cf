import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DockerCli } from "../../../src/backends/docker/cli.js";
import { ensureAgentImage, LayerError } from "../../../src/backends/docker/layers.js";
import type { AgentImagePlan } from "../../../src/backends/plan.js";
import { run } from "../../../src/exec/run.js";
import { runCli } from "../../helpers/cli.js";
import { runInImage } from "../../helpers/docker.js";

const quiet = { step: () => {}, detail: () => {}, done: () => {}, warn: () => {} };
const docker = new DockerCli(process.env);
const tag = randomBytes(4).toString("hex");
const REF = `bot-bottle/test-cascade:${tag}`;

let dir: string;
const refs = new Set<string>();

/** A layer folder: its Dockerfile and files, plus a .git and node_modules the build must not see. */
async function layer(name: string, dockerfile: string, files: Record<string, string> = {}) {
  const folder = join(dir, name);
  await mkdir(join(folder, ".git"), { recursive: true });
  await mkdir(join(folder, "node_modules", "big"), { recursive: true });
  await writeFile(join(folder, ".git", "HEAD"), "ref: refs/heads/main\n");
  await writeFile(join(folder, "node_modules", "big", "index.js"), "//\n");
  await writeFile(join(folder, "Dockerfile"), dockerfile);
  for (const [path, text] of Object.entries(files)) await writeFile(join(folder, path), text);
  return join(folder, "Dockerfile");
}

async function ensure(build: AgentImagePlan) {
  const result = await ensureAgentImage(docker, build, quiet);
  refs.add(result.ref);
  for (const l of result.layers) refs.add(l.ref);
  return result;
}

const FIRST = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY --chown=node . /opt/one/\n";
const SECOND = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN cat /opt/one/greeting.txt > /tmp/two.txt\n";

describe("the agent image cascade", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-cascade-"));
    const built = await runCli(["images", "build", "shell"], { timeoutMs: 20 * 60_000 });
    assert.equal(built.code, 0, built.stderr);
  });
  after(async () => {
    await run("docker", ["image", "rm", ...refs], { okExitCodes: [0, 1] });
    await rm(dir, { recursive: true, force: true });
  });

  test(
    "layers Dockerfiles on the template, reuses them while unchanged, and rebuilds from the first one edited",
    { timeout: 10 * 60_000 },
    async () => {
      const one = await layer("one", FIRST, { "greeting.txt": "hello from layer one\n" });
      const two = await layer("two", SECOND);
      const build: AgentImagePlan = {
        template: "shell",
        layers: [
          { what: "agents.coder.dockerfile", dockerfile: one },
          { what: "bottles.dev.dockerfile", dockerfile: two },
        ],
        ref: REF,
      };

      const first = await ensure(build);
      assert.equal(first.template.name, "shell");
      assert.deepEqual(
        first.layers.map((l) => [l.what, l.ref, l.reused]),
        [
          ["agents.coder.dockerfile", `${REF}-layer1`, false],
          ["bottles.dev.dockerfile", REF, false],
        ],
      );
      const lines = await runInImage(REF, "id -un; ls -A /opt/one; cat /tmp/two.txt");
      assert.deepEqual(
        lines,
        ["node", "Dockerfile", "greeting.txt", "hello from layer one"],
        "built FROM the shell template, layer on layer, without .git or node_modules",
      );

      const second = await ensure(build);
      assert.deepEqual(
        second.layers.map((l) => l.reused),
        [true, true],
      );
      assert.equal(second.id, first.id);

      await writeFile(two, SECOND + "RUN echo again >> /tmp/two.txt\n");
      const third = await ensure(build);
      assert.deepEqual(
        third.layers.map((l) => l.reused),
        [true, false],
        "only the edited layer is rebuilt",
      );
      assert.notEqual(third.id, first.id);

      await writeFile(join(dir, "one", "greeting.txt"), "hello again\n");
      const fourth = await ensure(build);
      assert.deepEqual(
        fourth.layers.map((l) => l.reused),
        [false, false],
        "a changed context file rebuilds its layer and every layer above",
      );
      assert.deepEqual(await runInImage(REF, "cat /tmp/two.txt"), ["hello again", "again"]);

      await writeFile(join(dir, "one", "node_modules", "big", "index.js"), "// changed\n");
      const fifth = await ensure(build);
      assert.deepEqual(
        fifth.layers.map((l) => l.reused),
        [true, true],
        "node_modules is not part of a layer's inputs",
      );
    },
  );

  test("with no layers, the cascade's ref is the template's image", async () => {
    const ref = `${REF}-bare`;
    const result = await ensure({ template: "shell", layers: [], ref });
    const { stdout } = await run("docker", ["image", "inspect", "--format", "{{.Id}}", ref]);
    assert.equal(stdout.trim(), result.template.id);
    assert.equal(result.id, result.template.id);
  });

  test("a layer that fails to build, or does not exist, is named with docker's last lines", async () => {
    const bad = await layer(
      "bad",
      "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo 'layer-marker: no such tool' >&2; exit 3\n",
    );
    await assert.rejects(
      ensure({
        template: "shell",
        layers: [{ what: "agents.coder.dockerfile", dockerfile: bad }],
        ref: `${REF}-bad`,
      }),
      (err: unknown) => {
        assert.ok(err instanceof LayerError, String(err));
        assert.match(err.message, /^agents\.coder\.dockerfile: building .*bad\/Dockerfile failed/);
        assert.match(err.message, /layer-marker: no such tool/);
        return true;
      },
    );
    await assert.rejects(
      ensure({
        template: "shell",
        layers: [{ what: "bottles.dev.dockerfile", dockerfile: join(dir, "absent", "Dockerfile") }],
        ref: `${REF}-absent`,
      }),
      /^LayerError: bottles\.dev\.dockerfile: the Dockerfile .*absent\/Dockerfile does not exist/,
    );
  });
});
