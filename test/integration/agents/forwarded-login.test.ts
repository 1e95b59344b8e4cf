/**
 * forward_host_credentials for Claude Code, end to end with the real CLI: the operator's login
 * file (made by the test, in CLAUDE_CONFIG_DIR) is forwarded; the fake model API receives the
 * real OAuth access token as the bearer; the login is near its expiry, so Claude Code refreshes
 * it through the proxy: the token endpoint receives the real refresh token, and the API then
 * receives the new access token. Inside, the agent's login file and environment hold only
 * placeholders. A missing or expired login is refused before anything is created.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TestBottles } from "../../helpers/bottles.js";
import {
  fakeModelCerts,
  modelLog,
  modelRequests,
  type FakeModel,
} from "../../helpers/fake-model.js";

const t = new TestBottles();
const agent = t.agent("login");
const ACCESS = `sk-ant-oat01-${randomBytes(60).toString("base64url")}`;
const REFRESH = `sk-ant-ort01-${randomBytes(60).toString("base64url")}`;

describe("claude with the operator's forwarded login", { timeout: 20 * 60_000 }, () => {
  let model: FakeModel;
  let config = "";

  const login = (expiresAt: number) =>
    writeFile(
      join(config, ".credentials.json"),
      JSON.stringify({
        claudeAiOauth: {
          accessToken: ACCESS,
          refreshToken: REFRESH,
          expiresAt,
          scopes: ["user:inference", "user:profile"],
          subscriptionType: "max",
        },
      }),
      { mode: 0o600 },
    );

  before(async () => {
    await t.setup({ agents: {}, bottles: {} });
    const certs = join(t.dir, "certs");
    await fakeModelCerts(certs);
    const net = await t.network([]);
    model = await t.fakeModel(certs, net);
    await writeFile(
      t.manifest,
      JSON.stringify({
        agents: { [agent]: { template: "claude", bottle: "box", forward_host_credentials: true } },
        bottles: {
          box: {
            egress: {
              extra_hosts: {
                "api.anthropic.com": model.ip,
                "platform.claude.com": model.ip,
              },
              trust_ca: join(certs, "ca", "ca.crt"),
              network: net,
            },
          },
        },
      }),
    );
    config = join(t.dir, "claude-config");
    await mkdir(config);
    const { ANTHROPIC_API_KEY: _unused, ...env } = t.env;
    void _unused;
    t.env = { ...env, CLAUDE_CONFIG_DIR: config };
    const built = await t.cli(["images", "build", "claude"], 20 * 60_000);
    assert.equal(built.code, 0, built.stderr);
  });
  after(() => (process.env["KEEP"] ? undefined : t.teardown()));

  test("no login on the host: refused at start, before anything is created", async () => {
    const r = await t.cli(["run", agent, "--", "SAY: hi"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /forward_host_credentials: your Claude Code login is not on this machine/,
    );
    assert.match(r.stderr, /log in/);
    assert.doesNotMatch((await t.cli(["ls"])).stdout, new RegExp(agent));
  });

  test("an expired login: refused at start, naming when it expired, no token printed", async () => {
    await login(Date.now() - 60_000);
    const r = await t.cli(["run", agent, "--", "SAY: hi"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /expired at \d{4}-/);
    assert.ok(!r.stderr.includes(ACCESS.slice(-20)) && !r.stderr.includes(REFRESH.slice(-20)));
    assert.doesNotMatch((await t.cli(["ls"])).stdout, new RegExp(agent));
  });

  test("a login near its expiry: the API gets the real token, the refresh swaps tokens both ways", async () => {
    // Claude Code refreshes a login that expires within minutes before using it.
    await login(Date.now() + 120_000);
    const r = await t.cli(
      ["run", agent, "--keep", "--", "RUN: echo via login > by-login.txt"],
      10 * 60_000,
    );
    assert.equal(r.code, 0, `run failed:\n${r.stderr}\n${r.stdout}`);
    assert.equal((await readFile(join(t.workspace, "by-login.txt"), "utf8")).trim(), "via login");
    const slug = /\b(\S+-[a-z0-9]{6}) is still running/.exec(r.stderr)?.[1] ?? "";

    const issued = (await modelLog(model.container)).filter((e) => e.event === "issued");
    assert.equal(issued.length, 1, "Claude Code refreshed its login once, through the proxy");
    assert.equal(issued[0]?.refreshed, REFRESH, "the token endpoint got the real refresh token");
    const newAccess = issued[0]?.access_token ?? "";
    const messages = (await modelRequests(model.container)).filter((q) =>
      q.url.startsWith("/v1/messages"),
    );
    assert.ok(messages.length >= 2);
    for (const q of messages)
      assert.ok(
        [`Bearer ${ACCESS}`, `Bearer ${newAccess}`].includes(q.headers["authorization"] ?? ""),
        "every API call carries a real token",
      );
    assert.equal(
      messages.at(-1)?.headers["authorization"],
      `Bearer ${newAccess}`,
      "after the refresh: the new token",
    );
    for (const q of messages) assert.equal(q.headers["x-api-key"], undefined);

    // Inside: the login file holds placeholders (of the refreshed tokens now), no real token.
    const file = await t.sh(
      slug,
      "cat ~/.claude/.credentials.json; printenv ANTHROPIC_API_KEY || echo no-key",
    );
    assert.match(file.stdout, /no-key/);
    const held = JSON.parse(file.stdout.slice(0, file.stdout.lastIndexOf("}") + 1)) as {
      claudeAiOauth: { accessToken: string; refreshToken: string };
    };
    for (const real of [ACCESS, REFRESH, newAccess, issued[0]?.refresh_token ?? ""]) {
      assert.ok(!file.stdout.includes(real), "the agent's login file holds no real token");
      const tail = real.slice(-24);
      const probe = await t.cli(
        [
          "exec",
          "--user",
          "root",
          slug,
          "--",
          "sh",
          "-c",
          `printf '%s%s' '${tail.slice(0, 12)}' '${tail.slice(12)}' > /dev/shm/needle; ` +
            "grep -rlsF -f /dev/shm/needle /home/node /tmp /etc /proc/[0-9]*/environ /proc/[0-9]*/cmdline; echo checked",
        ],
        60_000,
      );
      assert.equal(
        probe.stdout.trim(),
        "checked",
        `a real token is in the bottle: ${probe.stdout}`,
      );
    }
    assert.match(held.claudeAiOauth.accessToken, /^sk-ant-oat01-/, "placeholders keep the shape");
    const stop = await t.cli(["stop", slug]);
    assert.equal(stop.code, 0, stop.stderr);
  });
});
