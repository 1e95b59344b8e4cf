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
import { run } from "../../../src/exec/run.js";
import { TestBottles } from "../../helpers/bottles.js";
import {
  fakeModelCerts,
  modelLog,
  modelRequests,
  type FakeModel,
} from "../../helpers/fake-model.js";

const t = new TestBottles();
const agent = t.agent("login");
const codexAgent = t.agent("cxlogin");
const ACCESS = `sk-ant-oat01-${randomBytes(60).toString("base64url")}`;
const REFRESH = `sk-ant-ort01-${randomBytes(60).toString("base64url")}`;

describe("claude with the operator's forwarded login", { timeout: 20 * 60_000 }, () => {
  let model: FakeModel;
  let config = "";
  let codexHome = "";

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

  /** The operator's Codex ChatGPT login, in CODEX_HOME. */
  const codexLogin = (tokens: { id: string; access: string; refresh: string }) =>
    writeFile(
      join(codexHome, "auth.json"),
      JSON.stringify({
        auth_mode: "chatgpt",
        OPENAI_API_KEY: null,
        tokens: {
          id_token: tokens.id,
          access_token: tokens.access,
          refresh_token: tokens.refresh,
          account_id: "acct-test",
        },
        last_refresh: new Date().toISOString(),
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
        agents: {
          [agent]: { template: "claude", bottle: "box", forward_host_credentials: true },
          // An unknown model slug: Codex then offers plain function tools such as exec_command.
          [codexAgent]: {
            template: "codex",
            bottle: "box",
            model: "gpt-fake",
            forward_host_credentials: true,
          },
        },
        bottles: {
          box: {
            egress: {
              extra_hosts: {
                "api.anthropic.com": model.ip,
                "platform.claude.com": model.ip,
                "chatgpt.com": model.ip,
                "auth.openai.com": model.ip,
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
    codexHome = join(t.dir, "codex-home");
    await mkdir(codexHome);
    t.env = { ...env, CLAUDE_CONFIG_DIR: config, CODEX_HOME: codexHome };
    const built = await t.cli(["images", "build", "claude", "codex"], 20 * 60_000);
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
      assert.deepEqual(await t.secretPlaces(slug, real), [], "a real token is nowhere inside");
    }
    assert.match(held.claudeAiOauth.accessToken, /^sk-ant-oat01-/, "placeholders keep the shape");

    // The egress daemon dies and init restarts it: it goes on with the refreshed tokens.
    await run("docker", [
      "exec",
      `bot-bottle-${slug}-bundle`,
      "sh",
      "-c",
      // Not this shell itself, whose own command line names the daemon's file.
      'for p in /proc/[0-9]*; do [ "${p#/proc/}" != "$$" ] && grep -qs egress/main.js "$p/cmdline" && kill "${p#/proc/}"; done; true',
    ]);
    const again = await t.cli(
      ["exec", slug, "--", "claude", "-p", "SAY: after a restart"],
      120_000,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /after a restart/);
    const last = (await modelRequests(model.container))
      .filter((q) => q.url.startsWith("/v1/messages"))
      .at(-1);
    assert.equal(
      last?.headers["authorization"],
      `Bearer ${newAccess}`,
      "the refreshed token, still",
    );
    const restarts = await t.cli(["logs", slug, "--json"]);
    assert.match(restarts.stdout, /"event":"login-refreshed"/);

    const stop = await t.cli(["stop", slug]);
    assert.equal(stop.code, 0, stop.stderr);

    // The refresh used up the host login's refresh token: stop writes the new tokens back.
    assert.match(
      stop.stderr,
      /your Claude Code login was refreshed in \S+: the new tokens are written back to /,
    );
    const host = JSON.parse(await readFile(join(config, ".credentials.json"), "utf8")) as {
      claudeAiOauth: {
        accessToken: string;
        refreshToken: string;
        expiresAt: number;
        scopes: string[];
      };
    };
    assert.equal(host.claudeAiOauth.accessToken, newAccess);
    assert.equal(host.claudeAiOauth.refreshToken, issued[0]?.refresh_token);
    assert.ok(
      Math.abs(host.claudeAiOauth.expiresAt - (Date.now() + 28_800_000)) < 600_000,
      "expires_in honoured",
    );
    assert.deepEqual(
      host.claudeAiOauth.scopes,
      ["user:inference", "user:profile"],
      "the rest kept",
    );
    const stateDir = join(t.dir, "state", "bot-bottle", slug);
    await assert.rejects(
      readFile(join(stateDir, "audit", "tokens.json")),
      "no token left in the state dir",
    );
  });

  test("codex: the ChatGPT login's tokens stay in the bundle; the agent's auth.json keeps the claims; a refresh swaps both ways", async () => {
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const claims = {
      exp,
      email: "operator@example.com",
      "https://api.openai.com/auth": { chatgpt_account_id: "acct-test", chatgpt_plan_type: "plus" },
    };
    const real = {
      access: jwt(claims),
      id: jwt(claims),
      refresh: `rt_${randomBytes(40).toString("base64url")}`,
    };
    const lapsed = jwt({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 });
    await codexLogin({ id: lapsed, access: lapsed, refresh: real.refresh });
    const expired = await t.cli(["start", codexAgent, "--detach", "--yes"]);
    assert.equal(expired.code, 2, expired.stderr);
    assert.match(expired.stderr, /your Codex login .* expired at/);

    await codexLogin(real);
    const slug = await t.start(codexAgent);
    const file = await t.sh(
      slug,
      "cat ~/.codex/auth.json; grep -c model_provider ~/.codex/config.toml || true",
    );
    const held = JSON.parse(file.stdout.slice(0, file.stdout.lastIndexOf("}") + 1)) as {
      tokens: { access_token: string; id_token: string; refresh_token: string; account_id: string };
    };
    const [h, c, sig] = held.tokens.access_token.split(".");
    assert.equal(
      `${h}.${c}`,
      real.access.split(".").slice(0, 2).join("."),
      "the claims (exp) are kept",
    );
    assert.notEqual(sig, real.access.split(".")[2], "the signature is not the real one");
    assert.equal(held.tokens.account_id, "acct-test");
    assert.match(file.stdout, /^0$/m, "Codex's own provider serves a ChatGPT login");
    for (const token of Object.values(real)) assert.ok(!file.stdout.includes(token));

    // The ChatGPT backend gets the real access token for the placeholder.
    const call = (bearer: string) =>
      t.sh(
        slug,
        `curl -sS -o /dev/null -w '%{http_code}' https://chatgpt.com/backend-api/codex/models -H 'authorization: Bearer ${bearer}'`,
      );
    assert.equal((await call(held.tokens.access_token)).stdout, "404");
    const bearers = async () =>
      (await modelRequests(model.container))
        .filter((q) => q.url.startsWith("/backend-api/"))
        .map((q) => q.headers["authorization"]);
    assert.equal((await bearers()).at(-1), `Bearer ${real.access}`);

    // The refresh: the real refresh token goes out; placeholders (claims kept) come back.
    const refreshed = await t.sh(
      slug,
      `curl -sS https://auth.openai.com/oauth/token -H 'content-type: application/json' -d '{"grant_type":"refresh_token","refresh_token":"${held.tokens.refresh_token}"}'`,
    );
    const issued = (await modelLog(model.container)).filter(
      (e) => e.event === "issued" && e.refreshed === real.refresh,
    );
    assert.equal(issued.length, 1, "the token endpoint got the real refresh token");
    const answer = JSON.parse(refreshed.stdout) as Record<string, string>;
    const fresh = issued[0];
    assert.ok(fresh?.access_token && fresh.id_token && fresh.refresh_token);
    for (const token of [fresh.access_token, fresh.id_token, fresh.refresh_token])
      assert.ok(!refreshed.stdout.includes(token), "no new real token reaches the agent");
    assert.equal(
      answer["access_token"]?.split(".").slice(0, 2).join("."),
      fresh.access_token.split(".").slice(0, 2).join("."),
      "the new access token's claims reach the agent",
    );
    assert.equal((await call(answer["access_token"] ?? "")).stdout, "404");
    assert.equal(
      (await bearers()).at(-1),
      `Bearer ${fresh.access_token}`,
      "the new token is injected",
    );
    const stop = await t.cli(["stop", slug]);
    assert.equal(stop.code, 0, stop.stderr);
    // The operator's auth.json gets the tokens the refresh left, the rest as it was.
    assert.match(
      stop.stderr,
      /your Codex login was refreshed in \S+: the new tokens are written back/,
    );
    const host = JSON.parse(await readFile(join(codexHome, "auth.json"), "utf8")) as {
      auth_mode: string;
      tokens: Record<string, string>;
    };
    assert.equal(host.auth_mode, "chatgpt");
    assert.deepEqual(host.tokens, {
      id_token: fresh.id_token,
      access_token: fresh.access_token,
      refresh_token: fresh.refresh_token,
      account_id: "acct-test",
    });
  });

  test("codex exec with the forwarded ChatGPT login: the backend gets the real token, Codex refreshes through the proxy", async () => {
    // Codex refreshes a login whose access token expires within five minutes, before any call.
    const exp = Math.floor(Date.now() / 1000) + 120;
    const claims = {
      exp,
      email: "operator@example.com",
      "https://api.openai.com/auth": {
        chatgpt_account_id: "acct-test",
        chatgpt_plan_type: "plus",
        chatgpt_user_id: "user-test",
      },
    };
    const real = {
      access: jwt(claims),
      id: jwt(claims),
      refresh: `rt_${randomBytes(40).toString("base64url")}`,
    };
    await codexLogin(real);
    const r = await t.cli(
      ["run", codexAgent, "--keep", "--", "RUN: echo via chatgpt > by-codex-login.txt"],
      10 * 60_000,
    );
    assert.equal(r.code, 0, `run failed:\n${r.stderr}\n${r.stdout}`);
    assert.equal(
      (await readFile(join(t.workspace, "by-codex-login.txt"), "utf8")).trim(),
      "via chatgpt",
    );
    const slug = /\b(\S+-[a-z0-9]{6}) is still running/.exec(r.stderr)?.[1] ?? "";

    const issued = (await modelLog(model.container)).filter(
      (e) => e.event === "issued" && e.refreshed === real.refresh,
    );
    assert.equal(issued.length, 1, "Codex refreshed through the proxy with the real refresh token");
    const fresh = issued[0]?.access_token ?? "";
    const calls = (await modelRequests(model.container)).filter(
      (q) => q.url.startsWith("/backend-api/codex/responses") && q.method === "POST",
    );
    assert.ok(calls.length >= 2, "the prompt, then the tool's result");
    for (const q of calls) {
      assert.equal(q.headers["authorization"], `Bearer ${fresh}`, "the refreshed real token");
      assert.equal(q.headers["chatgpt-account-id"], "acct-test");
    }
    for (const token of [real.access, real.id, real.refresh, fresh, issued[0]?.refresh_token ?? ""])
      assert.deepEqual(await t.secretPlaces(slug, token), [], "a real token is nowhere inside");

    // The operator refreshes on the host meanwhile (another refresh token): stop leaves it be.
    const mine = JSON.parse(await readFile(join(codexHome, "auth.json"), "utf8")) as {
      tokens: Record<string, string>;
    };
    mine.tokens["refresh_token"] = `rt_${randomBytes(40).toString("base64url")}`;
    await writeFile(join(codexHome, "auth.json"), JSON.stringify(mine), { mode: 0o600 });
    const stop = await t.cli(["stop", slug]);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(
      stop.stderr,
      /your Codex login was refreshed in \S+, but \S+ changed on this machine since: left as it is/,
    );
    assert.deepEqual(JSON.parse(await readFile(join(codexHome, "auth.json"), "utf8")), mine);
  });
});

/** A JSON Web Token with these claims and a random signature (nothing here checks signatures). */
function jwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${part({ alg: "RS256", typ: "JWT" })}.${part(claims)}.${randomBytes(64).toString("base64url")}`;
}
