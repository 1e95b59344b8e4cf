/**
 * What the operator's side trusts stays out of the agent's reach, end to end: the manifest and
 * the files it names may not lie in the workspace (start refuses, naming them), `egress apply`
 * reads the operator's manifest — never one the agent planted in the workspace — and asks before
 * it loads routes that let out more than the running ones; the sidecar bundle runs with limits.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import type { EgressConfig } from "../../../src/shared/egress-config.js";
import { TestBottles } from "../../helpers/bottles.js";

const TOKEN_ENV = "BB_TEST_TRUST_TOKEN";
const t = new TestBottles();
const agent = t.agent("trust");

const bottle = (routes: unknown[]) => ({ egress: { routes } });
const apiRoute = { host: "api.example.test", auth: { header: "x-api-key", token_env: TOKEN_ENV } };
const filesRoute = { host: "files.example.test", methods: ["GET"] };

describe(
  "operator-trusted files and egress apply, through the built CLI",
  { timeout: 15 * 60_000 },
  () => {
    let slug = "";
    const stateDir = () => join(t.dir, "state", "bot-bottle", slug);
    const running = async () =>
      JSON.parse(await readFile(join(stateDir(), "bundle", "egress.json"), "utf8")) as EgressConfig;
    const writeManifest = (file: string, routes: unknown[]) =>
      writeFile(file, JSON.stringify(TestBottles.shellManifest([agent], bottle(routes)), null, 2));
    const states = async () =>
      readdir(join(t.dir, "state", "bot-bottle")).catch(() => [] as string[]);

    before(async () => {
      await t.setup(TestBottles.shellManifest([agent], bottle([apiRoute, filesRoute])));
      const built = await t.cli(["images", "build", "shell", "bundle"], 20 * 60_000);
      assert.equal(built.code, 0, built.stderr);
      t.env[TOKEN_ENV] = `tok-${randomBytes(16).toString("hex")}`;
    });
    after(() => (process.env["KEEP"] ? undefined : t.teardown()));

    test("start refuses a manifest or a trust_ca in a folder of the workspace, naming the file; beside it, the bottle starts", async () => {
      await mkdir(join(t.workspace, "config"), { recursive: true });
      const inside = join(t.workspace, "config", "bot-bottle.json");
      await writeManifest(inside, [apiRoute, filesRoute]);
      const refused = await t.cli(["start", agent, "-f", inside, "--detach", "--yes"]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        new RegExp(
          `bot-bottle will not trust files that a bottle's agent can write:\\n  the manifest ${inside} lies inside the workspace of this bottle \\(${t.workspace}\\)`,
        ),
      );
      assert.match(
        refused.stderr,
        /hint: keep the manifest and every file it names outside the workspace/,
      );
      const dry = await t.cli(["start", agent, "-f", inside, "--dry-run"]);
      assert.equal(dry.code, 2, "--dry-run refuses the layout too");

      await mkdir(join(t.workspace, "certs"), { recursive: true });
      await writeFile(join(t.workspace, "certs", "ca.pem"), "");
      const outside = join(t.dir, "with-ca.json");
      await writeFile(
        outside,
        JSON.stringify(
          TestBottles.shellManifest([agent], {
            egress: { routes: [filesRoute], trust_ca: "workspace/certs/ca.pem" },
          }),
        ),
      );
      const ca = await t.cli(["start", agent, "-f", outside, "--detach", "--yes"]);
      assert.equal(ca.code, 2, ca.stderr);
      assert.match(
        ca.stderr,
        /bottles\.box\.egress\.trust_ca \S+\/workspace\/certs\/ca\.pem lies inside the workspace of this bottle/,
      );
      assert.deepEqual(await t.leftovers(agent), [], "nothing was created");
      assert.deepEqual(await states(), [], "not even a state dir");
    });

    test("a manifest directly in the workspace folder is bound read-only: the agent cannot write, move or remove it", async () => {
      const atRoot = join(t.workspace, "bot-bottle.json");
      await writeManifest(atRoot, [apiRoute, filesRoute]);
      const before = await readFile(atRoot, "utf8");
      const started = await t.cli(["start", agent, "-f", atRoot, "--detach", "--yes"]);
      assert.equal(started.code, 0, started.stderr);
      const rootSlug = started.stdout.trim();
      // The twin: the agent writes its own files beside it.
      const twin = await t.sh(rootSlug, "echo ok > mine.txt && cat mine.txt");
      assert.equal(twin.stdout.trim(), "ok");
      const attacks: [string, RegExp][] = [
        ["echo '{}' > bot-bottle.json", /Read-only file system/],
        ["mv bot-bottle.json moved.json", /Device or resource busy|Read-only file system/],
        ["rm -f bot-bottle.json", /Device or resource busy|Read-only file system/],
        ["mv /home/node/workspace /home/node/moved", /Device or resource busy/],
      ];
      for (const [script, error] of attacks) {
        const r = await t.sh(rootSlug, script);
        assert.notEqual(r.code, 0, script);
        assert.match(r.stderr, error, script);
      }
      assert.equal(await readFile(atRoot, "utf8"), before, "the operator's manifest is unchanged");
      const stopped = await t.cli(["stop", rootSlug]);
      assert.equal(stopped.code, 0, stopped.stderr);

      // The bottle the next tests use keeps its manifest beside the workspace (BOT_BOTTLE_MANIFEST).
      slug = await t.start(agent);
      const plan = await t.cli(["start", agent, "--dry-run"]);
      assert.match(
        plan.stdout,
        /trusted\s+the manifest \S+\/bot-bottle\.json \(outside the workspace/,
      );
    });

    test("a manifest the agent plants or rewrites in the workspace does not change what egress apply loads", async () => {
      // The agent writes a manifest that moves the credential to its own host, where an operator
      // running `egress apply` from the project folder used to pick it up as ./bot-bottle.json.
      const planted = JSON.stringify(
        TestBottles.shellManifest([agent], bottle([{ ...apiRoute, host: "evil.example.test" }])),
      );
      const wrote = await t.sh(
        slug,
        `cat > bot-bottle.json <<'EOF'\n${planted}\nEOF\nls bot-bottle.json`,
      );
      assert.equal(wrote.code, 0, wrote.stderr);

      const env = { ...t.env };
      delete env["BOT_BOTTLE_MANIFEST"];
      const fromProject = await run(
        process.execPath,
        [join(import.meta.dirname, "../../../dist/cli/bin.js"), "egress", "apply", slug],
        { env, cwd: t.workspace, okExitCodes: [0, 1, 2, 3] },
      );
      assert.equal(fromProject.exitCode, 0, fromProject.stderr);
      assert.match(
        fromProject.stderr,
        new RegExp(`routes generation 2 loaded \\(no change\\) from ${t.manifest}`),
      );
      assert.ok(!JSON.stringify(await running()).includes("evil.example.test"));

      // Naming the planted file is refused: it lies where the agent writes.
      const named = await t.cli([
        "egress",
        "apply",
        slug,
        "-f",
        join(t.workspace, "bot-bottle.json"),
        "--yes",
      ]);
      assert.equal(named.code, 2, named.stderr);
      assert.match(
        named.stderr,
        new RegExp(
          `the manifest ${t.workspace}/bot-bottle\\.json lies inside the workspace of this bottle`,
        ),
      );
      const config = await running();
      assert.equal(config.generation, 2, "nothing was applied");
      assert.ok(!JSON.stringify(config).includes("evil.example.test"));
      const probe = await t.sh(
        slug,
        "curl -sS -o /dev/null -D - https://evil.example.test/ 2>/dev/null | grep -i '^x-bot-bottle-refusal' | tr -d '\\r'",
      );
      assert.equal(probe.stdout.trim().toLowerCase(), "x-bot-bottle-refusal: not-in-routes");
    });

    test("apply asks before widening: refused without a terminal or --yes, applied with --yes; narrowing needs no answer", async () => {
      // Narrowing first: one route fewer applies without asking.
      await writeManifest(t.manifest, [apiRoute]);
      const narrow = await t.cli(["egress", "apply", slug]);
      assert.equal(narrow.code, 0, narrow.stderr);
      assert.match(narrow.stderr, /routes generation 3 loaded \(removed files\.example\.test\)/);

      // The credential moved to another host, and a new mapping: wider, so it is refused here.
      await writeFile(
        t.manifest,
        JSON.stringify(
          TestBottles.shellManifest([agent], {
            egress: {
              routes: [{ host: "api.example.test" }, { ...apiRoute, host: "upload.example.test" }],
              extra_hosts: { "upload.example.test": "10.9.8.7" },
            },
          }),
        ),
      );
      const refused = await t.cli(["egress", "apply", slug]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        new RegExp(
          `egress apply would widen what ${slug} may reach, and no one confirmed it; nothing was applied:`,
        ),
      );
      assert.match(
        refused.stderr,
        new RegExp(
          `\\+ new host upload\\.example\\.test .*the proxy sends it the real \\$${TOKEN_ENV}`,
        ),
      );
      assert.match(refused.stderr, /\+ extra_hosts upload\.example\.test -> 10\.9\.8\.7 \(new\)/);
      assert.match(refused.stderr, /hint: .*pass --yes/);
      const unchanged = await running();
      assert.equal(unchanged.generation, 3);
      assert.deepEqual(
        unchanged.routes.map((r) => r.host),
        ["api.example.test"],
      );
      assert.equal(unchanged.routes[0]?.auth?.tokenEnv, TOKEN_ENV);

      const applied = await t.cli(["egress", "apply", slug, "--yes"]);
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(
        applied.stderr,
        /this apply widens what the bottle may reach:\n {2}\+ new host upload\.example\.test/,
      );
      assert.match(applied.stderr, /routes generation 4 loaded/);
      const widened = await running();
      assert.equal(
        widened.routes.find((r) => r.host === "upload.example.test")?.auth?.tokenEnv,
        TOKEN_ENV,
      );
      const logs = await t.cli(["logs", slug, "--json"]);
      assert.match(logs.stdout, /"event":"reload".*"generation":4/);
    });

    test("the sidecar bundle runs with memory, process and CPU limits, as the plan shows", async () => {
      const { stdout } = await run("docker", [
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
        `bot-bottle-${slug}-bundle`,
      ]);
      assert.equal(stdout.trim(), `${256 * 1024 ** 2} ${256 * 1024 ** 2} 256 1000000000`);
      const plan = await t.cli(["start", agent, "--dry-run"]);
      assert.match(
        plan.stdout,
        /bundle .*\n\s+uid 10001, no capabilities, read-only root, memory 256m, pids 256, cpus 1/,
      );
      const health = await run(
        "docker",
        ["exec", `bot-bottle-${slug}-bundle`, "cat", "/sys/fs/cgroup/pids.max"],
        {
          okExitCodes: [0, 1],
        },
      );
      if (health.exitCode === 0) assert.equal(health.stdout.trim(), "256");
    });
  },
);
