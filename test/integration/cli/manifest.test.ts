import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse } from "jsonc-parser";
import { CLI, runCli, STACK_LINE } from "../../helpers/cli.js";
import { EXAMPLE_FILE, example } from "../../helpers/manifest.js";

describe("bot-bottle validate, schema and init, through the built CLI", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "bot-bottle-cli-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("validate accepts the example manifest", async () => {
    const r = await runCli(["validate", "-f", EXAMPLE_FILE]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /is valid: 2 agents \(coder, probe\), 2 bottles \(dev, sandbox\)/);
  });

  test("validate --agent prints the effective bottle, and --json the object", async () => {
    const r = await runCli(["validate", "-f", EXAMPLE_FILE, "--agent", "coder"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bottle\s+dev/);
    assert.match(r.stdout, /api\.anthropic\.com.*sets x-api-key from \$ANTHROPIC_API_KEY/);
    const j = await runCli(["validate", "-f", EXAMPLE_FILE, "--agent", "coder", "--json"]);
    const m = JSON.parse(j.stdout) as {
      agent: { name: string };
      bottle: { git_user: { name: string } };
    };
    assert.equal(m.agent.name, "coder");
    assert.equal(m.bottle.git_user.name, "Coder Bot");
  });

  test("validate warns about unset token variables without failing, and never prints their names' values", async () => {
    const env = { ...process.env, ANTHROPIC_API_KEY: "" };
    const r = await runCli(["validate", "-f", EXAMPLE_FILE], { env });
    assert.equal(r.code, 0);
    assert.match(
      r.stderr,
      /warning: bottles\.dev\.egress\.routes\[0\]\.auth\.token_env names an environment variable that is not set/,
    );
    const set = await runCli(["validate", "-f", EXAMPLE_FILE], {
      env: { ...process.env, ANTHROPIC_API_KEY: "sk-ant-api03-real" },
    });
    assert.doesNotMatch(set.stderr, /token_env/);
    assert.doesNotMatch(set.stderr + set.stdout, /sk-ant-api03-real/);
  });

  test("validate rejects a bad manifest: exit 2, the path, what to write, no stack, no value", async () => {
    const m = example();
    m.bottles.dev.git = [
      { ...m.bottles.dev.git[0] },
      { ...m.bottles.dev.git[0], known_host_key: "ssh-ed25519 sk-ant-api03-LEAKLEAKLEAK" },
    ];
    m.bottles.dev.git[1].name = "lib";
    const file = join(dir, "bad.json");
    await writeFile(file, JSON.stringify(m, null, 2));
    const r = await runCli(["validate", "-f", file]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(
        `${file.replace(/[.]/g, "\\.")}:\\d+:\\d+  bottles\\.dev\\.git\\[1\\]\\.known_host_key`,
      ),
    );
    assert.match(r.stderr, /ssh-keyscan/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.doesNotMatch(r.stderr + r.stdout, /LEAKLEAK/);
    assert.equal(r.stdout, "");
  });

  test("validate --agent with an unknown agent exits 2 and lists the agents", async () => {
    const r = await runCli(["validate", "-f", EXAMPLE_FILE, "--agent", "ghost"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no agent "ghost"/);
    assert.match(r.stderr, /coder, probe/);
  });

  test("a reader that closes its end early (`schema | head -1`) ends the command quietly, status 0", async () => {
    // First the whole output, read to its end.
    const whole = await runCli(["schema"]);
    assert.equal(whole.code, 0, whole.stderr);
    assert.ok(whole.stdout.length > 1000);
    // Then a reader that is gone before a byte is written: every write meets a closed pipe.
    const child = spawn(process.execPath, [CLI, "schema"], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const [code] = (await once(child, "close")) as [number | null];
    assert.equal(stderr, "");
    assert.equal(code, 0);
  });

  test("schema prints a JSON Schema that a standard validator uses to accept the example", async () => {
    const r = await runCli(["schema"]);
    assert.equal(r.code, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    const validate = new Ajv2020({ strict: false }).compile(schema);
    const text = await readFile(EXAMPLE_FILE, "utf8");
    assert.equal(validate(parse(text)), true, JSON.stringify(validate.errors));
    const bad = example();
    bad.bottles.dev.supervise = "sometimes";
    assert.equal(validate(bad), false);
  });

  test("init writes an example that validates, with a schema beside it, and never overwrites", async () => {
    const file = join(dir, "bot-bottle.json");
    const first = await runCli(["init"], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    const written = await readFile(file, "utf8");
    assert.match(written, /^\/\/ /m, "the example is commented");
    assert.match(written, /"\$schema": "\.\/bot-bottle\.schema\.json"/);
    const schema = JSON.parse(
      await readFile(join(dir, "bot-bottle.schema.json"), "utf8"),
    ) as Record<string, unknown>;
    assert.equal(new Ajv2020({ strict: false }).compile(schema)(parse(written)), true);
    const check = await runCli(["validate"], { cwd: dir });
    assert.equal(check.code, 0, check.stderr);

    await writeFile(file, written + "\n// my edits\n");
    const second = await runCli(["init"], { cwd: dir });
    assert.equal(second.code, 2);
    assert.match(second.stderr, /already exists; init never overwrites/);
    assert.match(await readFile(file, "utf8"), /my edits/);
  });
});
