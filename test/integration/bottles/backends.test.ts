/**
 * One suite, every backend: the same bottle life (start, exec, logs, stop), provisioning (the
 * bottle CA, the cage self-test) and egress with credential injection (a fake HTTPS upstream in a
 * container of the test's own, reached through egress.network, standing in for
 * api.anthropic.com), run through the built CLI on each backend of the table. smolvm cannot be
 * installed here: the smolmachines row drives the smolvm test double (test/fixtures/smolvm-double),
 * whose machines are Docker containers behind an emulated virtio-net gateway.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { run } from "../../../src/exec/run.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { TestBottles } from "../../helpers/bottles.js";
import { runCli } from "../../helpers/cli.js";
import { upstreamCerts, upstreamLog } from "../../helpers/fake-upstream.js";

const FIXTURES = join(import.meta.dirname, "../../fixtures");
const DOUBLE_BIN = join(FIXTURES, "smolvm-double", "bin");
const TOKEN_ENV = "BB_TEST_BACKEND_KEY";
const TOKEN = `sk-ant-api03-${randomBytes(45).toString("base64url")}`;
const NAMES = ["api.anthropic.com", "other.example.test"];

interface Row {
  /** The suite's name for the row. */
  name: string;
  backend: "docker" | "smolmachines";
  /** What this backend's bottles need in the CLI's environment. */
  env: (dir: string) => NodeJS.ProcessEnv;
  /** Everything of this backend still labelled with the agent, beyond Docker's own list. */
  leftovers: (env: NodeJS.ProcessEnv, agent: string) => Promise<string[]>;
}

const smolvmLeftovers = async (env: NodeJS.ProcessEnv, agent: string) => {
  const { stdout } = await run("smolvm", ["machine", "ls", "--json"], { env });
  return (JSON.parse(stdout) as { name: string; labels: Record<string, string> }[])
    .filter((m) => m.labels["dev.bot-bottle.agent"] === agent)
    .map((m) => `machine ${m.name}`);
};

/** The smolvm double, emulating `version`, with its state under the test's folder. */
const smolvmEnv = (version: string) => (dir: string) => ({
  PATH: `${DOUBLE_BIN}:${process.env["PATH"] ?? ""}`,
  SMOLVM_DATA_DIR: join(dir, "smolvm"),
  SMOLVM_DOUBLE_VERSION: version,
  XDG_CACHE_HOME: join(dir, "cache"),
});

const TABLE: Row[] = [
  { name: "docker", backend: "docker", env: () => ({}), leftovers: () => Promise.resolve([]) },
  {
    // smolvm 1.9.3: the VM reaches the bundle through smolvm's gateway to the host's loopback.
    name: "smolmachines (smolvm 1.9.3, gateway)",
    backend: "smolmachines",
    env: smolvmEnv("1.9.3"),
    leftovers: smolvmLeftovers,
  },
  {
    // smolvm 1.14: every flow of the VM goes through the bundle's intercept daemon.
    name: "smolmachines (smolvm 1.14.0, egress interceptor)",
    backend: "smolmachines",
    env: smolvmEnv("1.14.0"),
    leftovers: smolvmLeftovers,
  },
];

for (const row of TABLE) {
  const t = new TestBottles();
  const agent = t.agent(row.backend === "docker" ? "dk" : row.name.includes("1.14") ? "si" : "sm");
  let upstream = "";

  const received = async () =>
    (await upstreamLog(upstream)).filter((e) => e.event === "request") as {
      url: string;
      headers: Record<string, string>;
    }[];

  describe(`the ${row.name} backend, through the built CLI`, { timeout: 15 * 60_000 }, () => {
    let slug = "";
    let manifest: Record<string, unknown> = {};

    before(async () => {
      await t.setup(TestBottles.shellManifest([agent]));
      Object.assign(t.env, row.env(t.dir), { [TOKEN_ENV]: TOKEN });
      const built = await t.cli(["images", "build", "shell", "bundle"], 20 * 60_000);
      assert.equal(built.code, 0, built.stderr);
      const certs = join(t.dir, "certs");
      await upstreamCerts(certs, NAMES);
      const net = await t.network([]);
      upstream = await t.fakeUpstream(certs, net);
      const ip = await t.ip(upstream, net);
      const bottle = {
        backend: row.backend,
        egress: {
          routes: [
            {
              host: "api.anthropic.com",
              paths: ["/v1/"],
              auth: { header: "x-api-key", token_env: TOKEN_ENV },
            },
          ],
          extra_hosts: Object.fromEntries(NAMES.map((n) => [n, ip])),
          trust_ca: join(certs, "ca", "ca.crt"),
          network: net,
        },
      };
      manifest = TestBottles.shellManifest([agent], bottle);
      await writeFile(t.manifest, JSON.stringify(manifest));
    });

    after(async () => {
      if (process.env["KEEP"]) return;
      if (row.backend === "smolmachines")
        await run(join(DOUBLE_BIN, "smolvm-double-cleanup"), [], { env: t.env }).catch(
          () => undefined,
        );
      await t.teardown();
    });

    test("starts on this backend, with the bottle CA installed and the cage self-tested", async () => {
      slug = await t.start(agent);
      const ls = JSON.parse((await t.cli(["ls", "--json"])).stdout) as {
        slug: string;
        state: string;
        backend: string;
      }[];
      assert.deepEqual(
        ls.filter((b) => b.slug === slug).map((b) => [b.backend, b.state]),
        [[row.backend, "running"]],
      );
      const meta = JSON.parse(
        await readFile(join(t.dir, "state", "bot-bottle", slug, "metadata.json"), "utf8"),
      ) as { backend: string; cage: { passed: boolean; answered: number; refused: number } };
      assert.equal(meta.backend, row.backend);
      assert.equal(meta.cage.passed, true, JSON.stringify(meta.cage));
      // The bundle's agent-facing ports: egress, and supervise where it is served (Docker).
      assert.equal(
        meta.cage.answered,
        row.backend === "docker" ? 2 : 1,
        "the egress proxy (and supervise) answered the self-test",
      );
      assert.ok(meta.cage.refused >= 6, `${meta.cage.refused} probes refused`);

      const ca = await t.sh(
        slug,
        'test -s "$NODE_EXTRA_CA_CERTS" && grep -c "BEGIN CERTIFICATE" "$NODE_EXTRA_CA_CERTS"',
      );
      assert.equal(ca.stdout.trim(), "1", ca.stderr);
    });

    test("exec runs as node in the workspace, passes the status through, and writes the workspace", async () => {
      const who = await t.sh(slug, 'id -un; id -u; echo "$HOME"; pwd; echo inside > note.txt');
      assert.equal(who.code, 0, who.stderr);
      assert.deepEqual(who.stdout.trim().split("\n"), [
        "node",
        "1000",
        "/home/node",
        "/home/node/workspace",
      ]);
      assert.equal(await readFile(join(t.workspace, "note.txt"), "utf8"), "inside\n");
      assert.equal((await t.sh(slug, "exit 7")).code, 7);
      const piped = await runCli(["exec", slug, "--", "wc", "-c"], {
        env: t.env,
        input: "through stdin",
      });
      assert.equal(piped.stdout.trim(), "13", piped.stderr);
    });

    test("the agent writes its workspace as the folder's owner, or through an ACL on a root-owned one, never as root", async () => {
      const owned = join(t.dir, "owned");
      const rootOnly = join(t.dir, "root-only");
      await mkdir(owned, { mode: 0o700 });
      await chown(owned, 1234, 1235);
      await mkdir(rootOnly, { mode: 0o700 });
      // A link an earlier agent left in the folder: the grant must not follow it out.
      const outside = join(t.dir, "outside");
      await mkdir(outside, { mode: 0o700 });
      await symlink(outside, join(rootOnly, "way-out"));
      for (const [dir, uid] of [
        [owned, 1234],
        [rootOnly, 1000],
      ] as const) {
        const r = await t.cli(["start", agent, "--detach", "--yes", "--cwd", dir]);
        assert.equal(r.code, 0, r.stderr);
        const other = r.stdout.trim();
        const made = await t.sh(other, "id -u; touch made && echo home > ~/home-file && echo ok");
        assert.deepEqual(made.stdout.trim().split("\n"), [String(uid), "ok"], made.stderr);
        assert.equal((await stat(join(dir, "made"))).uid, uid, "the file is the owner's");
        assert.equal((await t.cli(["stop", other])).code, 0);
      }
      const acl = await run("getfacl", ["-pn", rootOnly]);
      assert.match(acl.stdout, /^user:1000:rwx$/m, "the root-owned folder got an ACL entry");
      assert.match(acl.stdout, /^default:user:1000:rwx$/m);
      assert.equal((await stat(rootOnly)).uid, 0, "its owner did not change");
      const beyond = await run("getfacl", ["-pn", outside]);
      assert.doesNotMatch(beyond.stdout, /user:1000/, "no ACL beyond the workspace");
    });

    test("egress: the upstream gets the real token, the agent only the placeholder, others are refused", async () => {
      const placeholder = placeholderFor(TOKEN, TOKEN_ENV, slug);
      assert.equal((await t.sh(slug, `printenv ${TOKEN_ENV}`)).stdout.trim(), placeholder);
      const call = await t.sh(
        slug,
        `curl -sS -o /dev/null -w '%{http_code}' https://api.anthropic.com/v1/messages -H "x-api-key: $${TOKEN_ENV}" -d '{}'`,
      );
      assert.equal(call.stdout, "200", call.stderr);
      const calls = (await received()).filter((r) => r.url.startsWith("/v1/"));
      assert.equal(calls.length, 1);
      assert.equal(calls[0]?.headers["x-api-key"], TOKEN);

      const refused = await t.sh(
        slug,
        "curl -sS -o /dev/null -w '%{http_code}' https://other.example.test/v1/x; true",
      );
      assert.match(refused.stdout, /^(403|000)$/, refused.stderr);
      assert.match(refused.stderr, /403/, "the proxy refused the tunnel");
      assert.equal((await received()).filter((r) => r.url === "/v1/x").length, 0);

      // A route added to the manifest reaches the running proxy without a restart.
      const box = (manifest["bottles"] as { box: { egress: { routes: unknown[] } } }).box;
      box.egress.routes.push({ host: "other.example.test" });
      await writeFile(t.manifest, JSON.stringify(manifest));
      const applied = await t.cli(["egress", "apply", slug, "--yes"]);
      assert.equal(applied.code, 0, applied.stderr);
      const now = await t.sh(
        slug,
        "curl -sS -o /dev/null -w '%{http_code}' https://other.example.test/v1/x",
      );
      assert.equal(now.stdout, "200", now.stderr);

      const direct = await t.sh(
        slug,
        "curl -sS --noproxy '*' -m 3 -o /dev/null https://api.anthropic.com/v1/x; echo $?",
      );
      assert.notEqual(direct.stdout.trim().split("\n").pop(), "0", "no way around the proxy");
    });

    test("nothing but the agent can use the bottle's proxy: no port on the host, or a key it alone holds", async () => {
      const bundle = `bot-bottle-${slug}-bundle`;
      const published = await run("docker", ["port", bundle, "9099/tcp"], { okExitCodes: [0, 1] });
      if (row.backend === "docker") {
        assert.equal(published.stdout.trim(), "", "the Docker bundle publishes no port");
        return;
      }
      // Another local process (or another bottle's VM) finds the port on the host's loopback.
      const port = /127\.0\.0\.1:(\d+)/.exec(published.stdout)?.[1];
      assert.ok(port, published.stdout);
      const env = await run("docker", ["inspect", "--format", "{{json .Config.Env}}", bundle]);
      const key = (JSON.parse(env.stdout) as string[])
        .find((e) => e.startsWith("BOT_BOTTLE_AGENT_KEY="))
        ?.split("=")[1];
      assert.ok(key, "the bundle holds the agent's key");
      const via = (proxy: string) =>
        run(
          "curl",
          [
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--proxy",
            proxy,
            "--cacert",
            join(t.dir, "state", "bot-bottle", slug, "ca", "ca.crt"),
            "https://api.anthropic.com/v1/from-host",
          ],
          { okExitCodes: [0, 56] },
        );
      const before = (await received()).length;
      const withKey = await via(`http://agent:${key}@127.0.0.1:${port}`);
      assert.equal(withKey.stdout, "200", `the allowed twin: ${withKey.stderr}`);
      const without = await via(`http://127.0.0.1:${port}`);
      assert.match(without.stderr, /CONNECT tunnel failed, response 407/);
      const wrong = await via(`http://agent:${"0".repeat(64)}@127.0.0.1:${port}`);
      assert.match(wrong.stderr, /CONNECT tunnel failed, response 407/);
      assert.equal((await received()).length, before + 1, "only the keyed request arrived");

      if (!row.name.includes("interceptor")) return;
      // Through the interceptor, nothing on the host's loopback is in reach, not even by smolvm's
      // gateway: a server there sees no connection while the proxy keeps answering.
      const server = createServer((socket) => socket.end("host\n"));
      let touched = 0;
      server.on("connection", () => touched++);
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const { port: hostPort } = server.address() as AddressInfo;
        for (const host of ["100.96.0.1", "host.smolvm.internal"]) {
          const r = await t.sh(
            slug,
            `curl -sS --noproxy '*' -m 2 http://${host}:${hostPort}/ 2>&1; echo "exit $?"`,
          );
          assert.doesNotMatch(r.stdout, /exit 0$/, `${host}: ${r.stdout}`);
        }
        const proxy = await t.sh(
          slug,
          "curl -sS -o /dev/null -w '%{http_code}' https://api.anthropic.com/v1/twin",
        );
        assert.equal(proxy.stdout, "200", proxy.stderr);
        assert.equal(touched, 0, "the host's loopback server saw no connection");
      } finally {
        server.close();
      }
    });

    test("logs show the bundle's events; stop keeps the state and leaves nothing behind", async () => {
      const logs = await t.cli(["logs", slug]);
      assert.match(logs.stdout, /init\s+ready\s+every daemon is ready/);
      const audit = await t.cli(["logs", slug, "--egress"]);
      assert.match(audit.stdout, /allow\s+POST\s+api\.anthropic\.com/);

      if (row.backend === "smolmachines") {
        // smolvm logs every exec's command line: no secret may ever be on one.
        const logs = await run(
          "sh",
          ["-c", 'cat "$0"/machines/*/console.log', t.env["SMOLVM_DATA_DIR"] ?? ""],
          {
            okExitCodes: [0, 1],
          },
        );
        assert.ok(logs.stdout.length > 0, "the double kept the console logs");
        assert.ok(!logs.stdout.includes(TOKEN.slice(13)), "no token in smolvm's console log");
      }
      const stopped = await t.cli(["stop", slug]);
      assert.equal(stopped.code, 0, stopped.stderr);
      const state = join(t.dir, "state", "bot-bottle", slug);
      assert.ok((await readdir(join(state, "logs"))).includes("bundle.log"));
      const meta = JSON.parse(await readFile(join(state, "metadata.json"), "utf8")) as {
        status: string;
      };
      assert.equal(meta.status, "stopped");
      assert.deepEqual([...(await t.leftovers(agent)), ...(await row.leftovers(t.env, agent))], []);
    });
  });
}
