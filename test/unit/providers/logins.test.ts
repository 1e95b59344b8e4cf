import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { withPlaceholders } from "../../../src/backends/plan.js";
import { planBottle } from "../../../src/plan/plan.js";
import { describePlan } from "../../../src/plan/summary.js";
import {
  CLAUDE_ACCESS_ENV,
  CLAUDE_REFRESH_ENV,
  claudeLogin,
} from "../../../src/providers/claude-login.js";
import {
  CODEX_ACCESS_ENV,
  CODEX_ID_ENV,
  CODEX_REFRESH_ENV,
  codexLogin,
  jwtExpiry,
} from "../../../src/providers/codex-login.js";
import { LoginProblem } from "../../../src/providers/provider.js";
import { placeholderFor } from "../../../src/shared/placeholders.js";
import { example, load } from "../../helpers/manifest.js";

const NOW = new Date("2026-11-25T12:00:00Z");
const session = { home: "/home/node", workspace: "/home/node/workspace" };
const jwt = (claims: object) =>
  [{ alg: "RS256", typ: "JWT" }, claims]
    .map((v) => Buffer.from(JSON.stringify(v)).toString("base64url"))
    .join(".") + `.${randomBytes(64).toString("base64url")}`;

describe("Claude Code's forwarded login", () => {
  const login = claudeLogin("api.anthropic.com");
  const file = (o: object) => JSON.stringify({ claudeAiOauth: o });
  const access = `sk-ant-oat01-${"a".repeat(80)}`;
  const refresh = `sk-ant-ort01-${"b".repeat(80)}`;

  test("the bundle gets both tokens; the agent's file has the same shape, placeholders and the real expiry", () => {
    const expiresAt = NOW.getTime() + 3_600_000;
    const f = login.forward(
      // Beside the login, a field the agent must not get (another login's token, say).
      file({
        accessToken: access,
        refreshToken: refresh,
        expiresAt,
        scopes: ["user:inference"],
        otherToken: "sk-ant-api03-not-for-the-agent-0123456789",
      }),
      NOW,
      session,
    );
    assert.deepEqual(f.secrets, { [CLAUDE_ACCESS_ENV]: access, [CLAUDE_REFRESH_ENV]: refresh });
    assert.equal(f.file.path, "/home/node/.claude/.credentials.json");
    assert.equal(f.file.mode, 0o600);
    const values = {
      [CLAUDE_ACCESS_ENV]: placeholderFor(access, CLAUDE_ACCESS_ENV, "s-1"),
      [CLAUDE_REFRESH_ENV]: placeholderFor(refresh, CLAUDE_REFRESH_ENV, "s-1"),
    };
    const agentFile = JSON.parse(withPlaceholders(f.file.content, values)) as {
      claudeAiOauth: Record<string, unknown>;
    };
    assert.deepEqual(agentFile.claudeAiOauth, {
      accessToken: values[CLAUDE_ACCESS_ENV],
      refreshToken: values[CLAUDE_REFRESH_ENV],
      expiresAt,
      scopes: ["user:inference"],
    });
    assert.ok(!f.file.content.includes(access) && !f.file.content.includes(refresh));
    assert.doesNotMatch(f.file.content, /not-for-the-agent/, "unknown fields are not copied");
  });

  test("an expired, incomplete or unreadable login is a problem that names what, never a token", () => {
    const cases: [string, RegExp][] = [
      [
        file({ accessToken: access, refreshToken: refresh, expiresAt: NOW.getTime() - 1 }),
        /expired at 2026-11-25T11:59:59/,
      ],
      [file({ accessToken: access, expiresAt: NOW.getTime() + 1 }), /has no refreshToken/],
      [JSON.stringify({ other: 1 }), /holds no Claude login/],
      ["{not json", /is not JSON/],
    ];
    for (const [text, message] of cases)
      assert.throws(
        () => login.forward(text, NOW, session),
        (e: unknown) =>
          e instanceof LoginProblem && message.test(e.message) && !e.message.includes("aaaa"),
      );
  });

  test("its routes: the API with the access token as bearer, and the refresh exchange on the token endpoint", () => {
    const [api, token] = login.routes();
    assert.deepEqual(api?.auth, {
      header: "authorization",
      scheme: "Bearer",
      token_env: CLAUDE_ACCESS_ENV,
    });
    assert.equal(token?.host, "platform.claude.com");
    assert.deepEqual(token?.methods, ["POST"]);
    assert.deepEqual(token?.exchange?.rotates, {
      access_token: CLAUDE_ACCESS_ENV,
      refresh_token: CLAUDE_REFRESH_ENV,
    });
  });
});

describe("Codex's forwarded ChatGPT login", () => {
  const exp = Math.floor(NOW.getTime() / 1000) + 3600;
  const tokens = {
    access_token: jwt({ exp }),
    id_token: jwt({ exp, email: "o@example.com" }),
    refresh_token: `rt_${"c".repeat(60)}`,
    account_id: "acct-1",
  };

  test("the web tokens' placeholders keep header and claims, with another signature of the same length", () => {
    const f = codexLogin.forward(
      // An API key beside the login, and a field Codex may add later: neither reaches the agent.
      JSON.stringify({
        auth_mode: "chatgpt",
        OPENAI_API_KEY: "sk-proj-not-for-the-agent-0123456789",
        tokens: { ...tokens, extra_secret: "es-not-for-the-agent" },
        future: "not-for-the-agent",
      }),
      NOW,
      session,
    );
    assert.doesNotMatch(f.file.content, /not-for-the-agent/);
    assert.deepEqual(
      Object.keys(f.secrets).sort(),
      [CODEX_ACCESS_ENV, CODEX_ID_ENV, CODEX_REFRESH_ENV].sort(),
    );
    const p = placeholderFor(tokens.access_token, CODEX_ACCESS_ENV, "s-1", { jwt: true });
    assert.equal(p.length, tokens.access_token.length);
    assert.equal(
      p.split(".").slice(0, 2).join("."),
      tokens.access_token.split(".").slice(0, 2).join("."),
    );
    assert.notEqual(p.split(".")[2], tokens.access_token.split(".")[2]);
    assert.equal(jwtExpiry(p), exp, "Codex reads the real expiry from the placeholder");
    assert.notEqual(
      placeholderFor(tokens.access_token, CODEX_ACCESS_ENV, "s-1"),
      p,
      "without jwt the claims are not kept",
    );
    const agent = JSON.parse(f.file.content) as { tokens: Record<string, string> };
    assert.equal(agent.tokens["account_id"], "acct-1");
    assert.ok(!f.file.content.includes(tokens.refresh_token));
  });

  test("an API-key login, an expired one, or a token that is not a web token is refused with the reason", () => {
    assert.throws(
      () =>
        codexLogin.forward(
          JSON.stringify({ auth_mode: "apikey", OPENAI_API_KEY: "sk-x" }),
          NOW,
          session,
        ),
      /holds an API key, not a ChatGPT login/,
    );
    assert.throws(
      () =>
        codexLogin.forward(
          JSON.stringify({ tokens: { ...tokens, access_token: jwt({ exp: exp - 7200 }) } }),
          NOW,
          session,
        ),
      /expired at/,
    );
    assert.throws(
      () =>
        codexLogin.forward(
          JSON.stringify({ tokens: { ...tokens, access_token: "x".repeat(40) } }),
          NOW,
          session,
        ),
      /not a JSON Web Token/,
    );
  });
});

describe("planning a forwarded login", () => {
  const plan = (template: string, mutate: (m: Record<string, any>) => void = () => undefined) => {
    const m = example();
    m.agents.w = { template, bottle: "sandbox", forward_host_credentials: true };
    mutate(m);
    return planBottle(load(m, undefined, "/p/bot-bottle.json").select("w"), {
      id: "7k2m9x",
      workspace: "/p/site",
      stateRoot: "/state",
      images: { bundle: "bot-bottle/bundle:latest" },
      workspaceOwner: { uid: 1000, gid: 1000, mode: 0o40755 },
    });
  };

  test("claude: the login's routes replace the key route, no key variable, tokens to the bundle only", () => {
    const p = plan("claude");
    assert.deepEqual(p.agentContainer.placeholderEnv, {});
    assert.deepEqual(p.bundle.secretEnv.sort(), [CLAUDE_ACCESS_ENV, CLAUDE_REFRESH_ENV].sort());
    assert.deepEqual(
      p.egress.routes.map((r) => r.host),
      ["api.anthropic.com", "platform.claude.com"],
    );
    assert.ok(describePlan(p).some((l) => l.includes("login") && l.includes("forwarded")));
  });

  test("codex: Codex's own provider, its web tokens' claims kept, chatgpt.com with the bearer", () => {
    const p = plan("codex");
    assert.deepEqual(p.egress.jwtEnv?.sort(), [CODEX_ACCESS_ENV, CODEX_ID_ENV].sort());
    const config = p.agentContainer.provision.files.find((f) => f.path.endsWith("config.toml"));
    assert.doesNotMatch(config?.content ?? "", /model_provider/);
    assert.ok(
      p.egress.routes.some(
        (r) => r.host === "chatgpt.com" && r.auth?.tokenEnv === CODEX_ACCESS_ENV,
      ),
    );
  });

  test("shell has no login to forward; a bottle route for the login's API host is refused", () => {
    assert.throws(() => plan("shell"), /"shell" template has no login to forward/);
    assert.throws(
      () =>
        plan("claude", (m) => {
          m.bottles.sandbox.egress = { routes: [{ host: "api.anthropic.com" }] };
        }),
      /declares api.anthropic.com, which the forwarded Claude Code login needs/,
    );
  });
});

describe("handing refreshed tokens back to the host's login file", () => {
  test("claude: the new tokens and expiry, every other field as it was", () => {
    const text = JSON.stringify({
      claudeAiOauth: { accessToken: "a1", refreshToken: "r1", expiresAt: 1, scopes: ["s"] },
      other: { keep: true },
    });
    const login = claudeLogin("api.anthropic.com");
    assert.equal(login.refreshToken(text), undefined, "too short to be a login's");
    const next = JSON.parse(
      login.writeBack(text, { [CLAUDE_ACCESS_ENV]: "a2", [CLAUDE_REFRESH_ENV]: "r2" }, NOW, 3600),
    ) as Record<string, unknown>;
    assert.deepEqual(next, {
      claudeAiOauth: {
        accessToken: "a2",
        refreshToken: "r2",
        expiresAt: NOW.getTime() + 3_600_000,
        scopes: ["s"],
      },
      other: { keep: true },
    });
  });

  test("codex: the three tokens and last_refresh, the account and mode as they were", () => {
    const text = JSON.stringify({
      auth_mode: "chatgpt",
      tokens: { id_token: "i1", access_token: "a1", refresh_token: "r1", account_id: "acct" },
    });
    assert.equal(codexLogin.refreshToken(text), "r1");
    const next = JSON.parse(
      codexLogin.writeBack(text, { [CODEX_ACCESS_ENV]: "a2", [CODEX_REFRESH_ENV]: "r2" }, NOW),
    ) as Record<string, unknown>;
    assert.deepEqual(next, {
      auth_mode: "chatgpt",
      tokens: { id_token: "i1", access_token: "a2", refresh_token: "r2", account_id: "acct" },
      last_refresh: NOW.toISOString(),
    });
  });
});
