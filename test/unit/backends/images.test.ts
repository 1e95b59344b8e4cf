import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  buildArgs,
  buildOrder,
  imageContext,
  recipeOf,
} from "../../../src/backends/docker/build.js";
import { addFolder, hashContext, type BuildContext } from "../../../src/backends/docker/context.js";
import { OutputTail } from "../../../src/backends/docker/docker-build.js";
import { imageCatalog } from "../../../src/backends/docker/images.js";
import { formatSize } from "../../../src/backends/docker/inspect.js";
import { layerContext, layerRecipe, layerRef } from "../../../src/backends/docker/layers.js";
import { hostCaBundle, hostNpmRegistry } from "../../../src/backends/docker/npm-host.js";
import { templateImage } from "../../../src/backends/images.js";
import { PrerequisiteError, UsageError } from "../../../src/errors.js";

const CERT_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
const CERT_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "bot-bottle-images-unit-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the image catalog", () => {
  test("claude and codex are templates built FROM shell, each pinning its own CLI", () => {
    const byName = new Map(imageCatalog().map((e) => [e.name, e]));
    for (const [name, pkg, command] of [
      ["claude", "@anthropic-ai/claude-code", "claude"],
      ["codex", "@openai/codex", "codex"],
    ] as const) {
      const entry = byName.get(name);
      assert.equal(entry?.from, "shell");
      assert.equal(entry.template, true);
      assert.equal(entry.agentPackage?.name, pkg);
      assert.equal(entry.agentPackage.command, command);
      assert.match(entry.agentPackage.version, /^\d+\.\d+\.\d+$/, "an exact version, not a range");
    }
  });

  test("templateImage gives a template's ref and pin, and nothing for a non-template", () => {
    assert.deepEqual(templateImage("claude"), {
      ref: "bot-bottle/claude:latest",
      agentPackage: { name: "@anthropic-ai/claude-code", version: "2.1.332", command: "claude" },
    });
    assert.deepEqual(templateImage("codex")?.agentPackage?.version, "0.169.0");
    assert.deepEqual(templateImage("shell"), { ref: "bot-bottle/shell:latest" });
    assert.equal(templateImage("bundle"), undefined);
    assert.equal(templateImage("nope"), undefined);
  });

  test("an image is built after the image it is built from, each once", () => {
    assert.deepEqual(
      buildOrder(["claude"]).map((e) => e.name),
      ["shell", "claude"],
    );
    assert.deepEqual(
      buildOrder(["codex", "bundle", "shell", "claude"]).map((e) => e.name),
      ["shell", "codex", "bundle", "claude"],
    );
    assert.throws(() => buildOrder(["claud"]), UsageError);
  });
});

describe("template recipes", () => {
  const claude = buildOrder(["claude"])[1]!;
  const shell = buildOrder(["shell"])[0]!;

  test("the pinned package and a non-default registry are build args; the default registry is not", () => {
    assert.deepEqual(buildArgs(claude.agentPackage, { caBundle: "", caSources: [] }), {
      AGENT_PACKAGE: "@anthropic-ai/claude-code@2.1.332",
      AGENT_COMMAND: "claude",
    });
    assert.deepEqual(
      buildArgs(claude.agentPackage, {
        caBundle: "",
        caSources: [],
        registry: "https://npm.internal.example/",
      }),
      {
        AGENT_PACKAGE: "@anthropic-ai/claude-code@2.1.332",
        AGENT_COMMAND: "claude",
        NPM_REGISTRY: "https://npm.internal.example/",
      },
    );
    assert.deepEqual(buildArgs(undefined, undefined), {});
  });

  test("a recipe changes with the context, the base image's id and each build arg, not arg order", () => {
    const base = recipeOf("ctx", "sha256:1", { A: "1", B: "2" });
    assert.match(base, /^[0-9a-f]{16}$/);
    assert.equal(recipeOf("ctx", "sha256:1", { B: "2", A: "1" }), base);
    assert.notEqual(recipeOf("ctx2", "sha256:1", { A: "1", B: "2" }), base);
    assert.notEqual(recipeOf("ctx", "sha256:2", { A: "1", B: "2" }), base);
    assert.notEqual(recipeOf("ctx", "sha256:1", { A: "1", B: "3" }), base);
  });

  test("the host's CAs are in a template's context (so in its recipe); shell's has none", async () => {
    const one = await imageContext(claude, { caBundle: CERT_A, caSources: ["/a"] });
    const two = await imageContext(claude, { caBundle: CERT_A + CERT_B, caSources: ["/a"] });
    assert.deepEqual(one.get("build-ca.pem"), { content: CERT_A });
    assert.ok(one.has("Dockerfile"));
    assert.notEqual(await hashContext(one), await hashContext(two));
    const plain = await imageContext(shell, { caBundle: CERT_A, caSources: ["/a"] });
    assert.equal(plain.has("build-ca.pem"), false);
  });
});

describe("the host's CAs and npm registry for builds", () => {
  test("NODE_EXTRA_CA_CERTS and the system bundle are joined; one file counts once; unreadable or non-PEM files are skipped", async () => {
    const files: Record<string, string> = { "/extra.pem": CERT_B, "/system.crt": CERT_A };
    const read = (p: string) =>
      p in files ? Promise.resolve(files[p]!) : Promise.reject(new Error("ENOENT"));
    assert.deepEqual(
      await hostCaBundle(
        { NODE_EXTRA_CA_CERTS: "/extra.pem" },
        { systemBundle: "/system.crt", read },
      ),
      { pem: CERT_B + "\n" + CERT_A, sources: ["/extra.pem", "/system.crt"] },
    );
    assert.deepEqual(
      await hostCaBundle(
        { NODE_EXTRA_CA_CERTS: "/system.crt" },
        { systemBundle: "/system.crt", read },
      ),
      { pem: CERT_A, sources: ["/system.crt"] },
    );
    files["/copy.crt"] = CERT_A;
    files["/junk"] = "not a certificate";
    assert.deepEqual(
      (
        await hostCaBundle(
          { NODE_EXTRA_CA_CERTS: "/copy.crt" },
          { systemBundle: "/system.crt", read },
        )
      ).sources,
      ["/copy.crt"],
    );
    assert.deepEqual(
      await hostCaBundle({ NODE_EXTRA_CA_CERTS: "/junk" }, { systemBundle: "/missing", read }),
      { pem: "", sources: [] },
    );
  });

  test("the registry comes from npm_config_registry (any case), else npm's config; npm's default is no build arg", async () => {
    const never = () => Promise.reject(new Error("npm config must not be asked"));
    assert.equal(
      await hostNpmRegistry({ npm_config_registry: "https://npm.internal.example" }, never),
      "https://npm.internal.example/",
    );
    assert.equal(
      await hostNpmRegistry({ NPM_CONFIG_REGISTRY: "https://npm.internal.example/r/" }, never),
      "https://npm.internal.example/r/",
    );
    assert.equal(
      await hostNpmRegistry({}, () => Promise.resolve("https://mirror.example/npm\n")),
      "https://mirror.example/npm/",
    );
    assert.equal(
      await hostNpmRegistry({}, () => Promise.resolve("https://registry.npmjs.org")),
      undefined,
    );
    assert.equal(await hostNpmRegistry({}, () => Promise.resolve(undefined)), undefined);
  });

  test("a registry URL with credentials or that is no URL is refused, without printing it", async () => {
    await assert.rejects(
      hostNpmRegistry({ npm_config_registry: "https://bob:hunter2@npm.example/" }),
      (err: unknown) =>
        err instanceof PrerequisiteError &&
        /user or password/.test(err.message) &&
        !err.message.includes("hunter2"),
    );
    await assert.rejects(hostNpmRegistry({ npm_config_registry: "not a url" }), PrerequisiteError);
  });
});

describe("layer contexts and recipes", () => {
  test("a layer's context is its Dockerfile's folder without .git and node_modules; links stay links", async () => {
    const folder = join(dir, "layer");
    await mkdir(join(folder, ".git"), { recursive: true });
    await mkdir(join(folder, "node_modules", "x"), { recursive: true });
    await mkdir(join(folder, "etc", "node_modules"), { recursive: true });
    await writeFile(join(folder, "Dockerfile"), "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n");
    await writeFile(join(folder, ".git", "HEAD"), "ref");
    await writeFile(join(folder, "node_modules", "x", "i.js"), "");
    await writeFile(join(folder, "etc", "node_modules", "n"), "");
    await writeFile(join(folder, "etc", "app.conf"), "a=1");
    await symlink("../Dockerfile", join(folder, "etc", "link"));
    const context = await layerContext(join(folder, "Dockerfile"));
    assert.deepEqual([...context.keys()].sort(), ["Dockerfile", "etc/app.conf", "etc/link"]);
    assert.deepEqual(context.get("etc/link"), { link: "../Dockerfile" });
  });

  test("equal contexts hash equal wherever they live; content, names and the exec bit count", async () => {
    const make = async (name: string, text: string, mode = 0o644): Promise<BuildContext> => {
      const d = join(dir, name);
      await mkdir(d, { recursive: true });
      await writeFile(join(d, "run.sh"), text);
      await chmod(join(d, "run.sh"), mode);
      const c: BuildContext = new Map();
      await addFolder(c, d, "");
      return c;
    };
    const a = await hashContext(await make("h1", "echo"));
    assert.equal(await hashContext(await make("h2", "echo")), a);
    assert.notEqual(await hashContext(await make("h3", "echo!")), a);
    assert.notEqual(await hashContext(await make("h4", "echo", 0o755)), a);
  });

  test("intermediate layers are tagged from the cascade's ref; the last one is the ref", () => {
    assert.equal(layerRef("bot-bottle/claude-custom:abc", 0, 1), "bot-bottle/claude-custom:abc");
    assert.equal(
      layerRef("bot-bottle/claude-custom:abc", 0, 3),
      "bot-bottle/claude-custom:abc-layer1",
    );
    assert.equal(
      layerRef("bot-bottle/claude-custom:abc", 1, 3),
      "bot-bottle/claude-custom:abc-layer2",
    );
    assert.equal(layerRef("bot-bottle/claude-custom:abc", 2, 3), "bot-bottle/claude-custom:abc");
  });

  test("a layer's recipe changes with its Dockerfile, its context and the image below it", () => {
    const parts = {
      dockerfileName: "Dockerfile",
      dockerfileText: "FROM x",
      contextDigest: "c",
      previousId: "sha256:1",
    };
    const r = layerRecipe(parts);
    assert.equal(layerRecipe({ ...parts }), r);
    assert.notEqual(layerRecipe({ ...parts, dockerfileText: "FROM y" }), r);
    assert.notEqual(layerRecipe({ ...parts, dockerfileName: "agent.Dockerfile" }), r);
    assert.notEqual(layerRecipe({ ...parts, contextDigest: "d" }), r);
    assert.notEqual(layerRecipe({ ...parts, previousId: "sha256:2" }), r);
  });
});

describe("build output", () => {
  test("a failure keeps docker's last lines, without colours or blank lines", () => {
    const tail = new OutputTail(3);
    for (const line of ["one", "", "\x1b[91mnpm ERR! two\x1b[0m", "three  ", "four"])
      tail.push(line);
    assert.deepEqual(tail.get(), ["npm ERR! two", "three", "four"]);
  });

  test("sizes read like docker's", () => {
    assert.equal(formatSize(999), "999B");
    assert.equal(formatSize(659_000_000), "659MB");
    assert.equal(formatSize(1_063_000_000), "1.06GB");
    assert.equal(formatSize(12_340_000), "12.3MB");
  });
});
