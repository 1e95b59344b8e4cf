/**
 * Claude Code's own login, forwarded: the host's `~/.claude/.credentials.json` (an OAuth access
 * token, a refresh token and their expiry). The bundle holds both tokens and injects the access
 * token as the API's bearer; Claude Code in the bottle reads a credentials file of the same shape
 * holding placeholders and the real expiry, and when it refreshes, the proxy swaps the refresh
 * token in and the new tokens out.
 */
import { join } from "node:path";
import { placeholderRef } from "../backends/plan.js";
import { LoginProblem, type HostLogin } from "./provider.js";

export const CLAUDE_ACCESS_ENV = "BOT_BOTTLE_CLAUDE_ACCESS_TOKEN";
export const CLAUDE_REFRESH_ENV = "BOT_BOTTLE_CLAUDE_REFRESH_TOKEN";
/** Where Claude Code 2.x refreshes its login. */
export const CLAUDE_TOKEN_HOST = "platform.claude.com";
export const CLAUDE_TOKEN_PATH = "/v1/oauth/token";

/** The login's fields besides the tokens and expiry that the agent's copy keeps: none secret. */
const KEPT = ["scopes", "subscriptionType", "rateLimitTier"] as const;

interface OAuth {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
  [other: string]: unknown;
}

function oauthOf(text: string): OAuth {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LoginProblem("is not JSON");
  }
  const o =
    typeof parsed === "object" && parsed !== null
      ? (parsed as Record<string, unknown>)["claudeAiOauth"]
      : undefined;
  if (typeof o !== "object" || o === null)
    throw new LoginProblem("holds no Claude login (claudeAiOauth)");
  const r = o as Record<string, unknown>;
  for (const field of ["accessToken", "refreshToken"])
    if (typeof r[field] !== "string" || r[field].length < 20)
      throw new LoginProblem(`has no ${field}`);
  if (typeof r["expiresAt"] !== "number") throw new LoginProblem("has no expiresAt");
  return r as OAuth;
}

export function claudeLogin(apiHost: string): HostLogin {
  return {
    what: "your Claude Code login",
    path: (env, home) =>
      join(env["CLAUDE_CONFIG_DIR"] || join(home, ".claude"), ".credentials.json"),
    loginHint: "run `claude` on this machine and log in (/login), then start again",
    secretEnv: [CLAUDE_ACCESS_ENV, CLAUDE_REFRESH_ENV],
    routes: () => [
      {
        host: apiHost,
        allow_ip_literal: false,
        tls_passthrough: false,
        auth: { header: "authorization", scheme: "Bearer", token_env: CLAUDE_ACCESS_ENV },
      },
      {
        host: CLAUDE_TOKEN_HOST,
        paths: [CLAUDE_TOKEN_PATH],
        methods: ["POST"],
        allow_ip_literal: false,
        tls_passthrough: false,
        exchange: {
          refreshEnv: CLAUDE_REFRESH_ENV,
          rotates: { access_token: CLAUDE_ACCESS_ENV, refresh_token: CLAUDE_REFRESH_ENV },
        },
      },
    ],
    refreshToken(text) {
      try {
        return oauthOf(text).refreshToken;
      } catch {
        return undefined;
      }
    },
    writeBack(text, tokens, time, expiresIn) {
      const file = JSON.parse(text) as { claudeAiOauth: OAuth };
      const o = file.claudeAiOauth;
      o.accessToken = tokens[CLAUDE_ACCESS_ENV] ?? o.accessToken;
      o.refreshToken = tokens[CLAUDE_REFRESH_ENV] ?? o.refreshToken;
      if (expiresIn !== undefined) o.expiresAt = time.getTime() + expiresIn * 1000;
      return JSON.stringify(file, null, 2) + "\n";
    },
    forward(text, now, session) {
      const oauth = oauthOf(text);
      if (oauth.expiresAt <= now.getTime())
        throw new LoginProblem(`expired at ${new Date(oauth.expiresAt).toISOString()}`);
      // Only the fields Claude Code needs, by name: anything else in the host's file (another
      // provider's login, a field a later version adds) could be a secret, and never reaches the
      // agent.
      const kept = Object.fromEntries(
        KEPT.filter((k) => oauth[k] !== undefined).map((k) => [k, oauth[k]]),
      );
      const agentCopy = {
        claudeAiOauth: {
          accessToken: placeholderRef(CLAUDE_ACCESS_ENV),
          refreshToken: placeholderRef(CLAUDE_REFRESH_ENV),
          expiresAt: oauth.expiresAt,
          ...kept,
        },
      };
      return {
        secrets: {
          [CLAUDE_ACCESS_ENV]: oauth.accessToken,
          [CLAUDE_REFRESH_ENV]: oauth.refreshToken,
        },
        file: {
          path: `${session.home}/.claude/.credentials.json`,
          content: JSON.stringify(agentCopy, null, 2) + "\n",
          mode: 0o600,
          what: "the forwarded Claude Code login (placeholders)",
        },
      };
    },
  };
}
