/**
 * Codex's own login, forwarded: the host's `~/.codex/auth.json` in ChatGPT mode (an id token and
 * an access token, both JSON Web Tokens, and a refresh token). The bundle holds the three and
 * injects the access token on chatgpt.com, where Codex's ChatGPT backend lives; Codex in the
 * bottle reads an auth.json of the same shape whose tokens are placeholders — the web tokens keep
 * their claims (Codex reads the expiry and the account from them) with a signature that is not
 * theirs — and when it refreshes, the proxy swaps the refresh token in and the new tokens out.
 */
import { join } from "node:path";
import { placeholderRef } from "../backends/plan.js";
import { LoginProblem, type HostLogin } from "./provider.js";

export const CODEX_ACCESS_ENV = "BOT_BOTTLE_CODEX_ACCESS_TOKEN";
export const CODEX_ID_ENV = "BOT_BOTTLE_CODEX_ID_TOKEN";
export const CODEX_REFRESH_ENV = "BOT_BOTTLE_CODEX_REFRESH_TOKEN";
/** Where Codex's ChatGPT login is used, and refreshed. */
export const CHATGPT_HOST = "chatgpt.com";
export const CODEX_TOKEN_HOST = "auth.openai.com";
export const CODEX_TOKEN_PATH = "/oauth/token";

/** The expiry (`exp`, seconds) a JSON Web Token claims; undefined when it is not one. */
export function jwtExpiry(token: string): number | undefined {
  const claims = token.split(".")[1];
  if (token.split(".").length !== 3 || !claims) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(claims, "base64url").toString("utf8")) as { exp?: unknown })
      .exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

interface AuthFile {
  auth_mode?: unknown;
  tokens?: Record<string, unknown>;
  [other: string]: unknown;
}

export const codexLogin: HostLogin = {
  what: "your Codex login",
  path: (env, home) => join(env["CODEX_HOME"] || join(home, ".codex"), "auth.json"),
  loginHint: "run `codex login` on this machine (Sign in with ChatGPT), then start again",
  secretEnv: [CODEX_ACCESS_ENV, CODEX_ID_ENV, CODEX_REFRESH_ENV],
  jwtEnv: [CODEX_ACCESS_ENV, CODEX_ID_ENV],
  routes: () => [
    {
      host: CHATGPT_HOST,
      allow_ip_literal: false,
      tls_passthrough: false,
      auth: { header: "authorization", scheme: "Bearer", token_env: CODEX_ACCESS_ENV },
    },
    {
      host: CODEX_TOKEN_HOST,
      paths: [CODEX_TOKEN_PATH],
      methods: ["POST"],
      allow_ip_literal: false,
      tls_passthrough: false,
      exchange: {
        refreshEnv: CODEX_REFRESH_ENV,
        rotates: {
          access_token: CODEX_ACCESS_ENV,
          id_token: CODEX_ID_ENV,
          refresh_token: CODEX_REFRESH_ENV,
        },
      },
    },
  ],
  refreshToken(text) {
    try {
      const value = (JSON.parse(text) as AuthFile).tokens?.["refresh_token"];
      return typeof value === "string" ? value : undefined;
    } catch {
      return undefined;
    }
  },
  writeBack(text, tokens, time) {
    const auth = JSON.parse(text) as AuthFile & { tokens: Record<string, unknown> };
    const set = (field: string, name: string) => {
      const value = tokens[name];
      if (value !== undefined) auth.tokens[field] = value;
    };
    set("access_token", CODEX_ACCESS_ENV);
    set("id_token", CODEX_ID_ENV);
    set("refresh_token", CODEX_REFRESH_ENV);
    auth["last_refresh"] = time.toISOString();
    return JSON.stringify(auth, null, 2) + "\n";
  },
  forward(text, now, session) {
    let auth: AuthFile;
    try {
      auth = JSON.parse(text) as AuthFile;
    } catch {
      throw new LoginProblem("is not JSON");
    }
    if (typeof auth !== "object" || auth === null) throw new LoginProblem("is not a Codex login");
    const tokens = auth.tokens;
    if (!tokens || typeof tokens !== "object")
      throw new LoginProblem(
        auth.OPENAI_API_KEY
          ? "holds an API key, not a ChatGPT login: set OPENAI_API_KEY in this shell instead and turn forward_host_credentials off"
          : "holds no ChatGPT login (tokens)",
      );
    const field = (name: string) => {
      const value = tokens[name];
      if (typeof value !== "string" || value.length < 20) throw new LoginProblem(`has no ${name}`);
      return value;
    };
    const access = field("access_token");
    const id = field("id_token");
    const refresh = field("refresh_token");
    const exp = jwtExpiry(access);
    if (exp === undefined)
      throw new LoginProblem("has an access token that is not a JSON Web Token");
    if (exp * 1000 <= now.getTime())
      throw new LoginProblem(`expired at ${new Date(exp * 1000).toISOString()}`);
    // Only the fields Codex needs, by name: anything else in the host's file (an API key beside
    // the login, a field a later Codex adds) could be a secret, and never reaches the agent.
    const accountId = tokens["account_id"];
    const agentCopy = {
      auth_mode: "chatgpt",
      OPENAI_API_KEY: null,
      tokens: {
        id_token: placeholderRef(CODEX_ID_ENV),
        access_token: placeholderRef(CODEX_ACCESS_ENV),
        refresh_token: placeholderRef(CODEX_REFRESH_ENV),
        ...(typeof accountId === "string" ? { account_id: accountId } : {}),
      },
      ...(typeof auth["last_refresh"] === "string" ? { last_refresh: auth["last_refresh"] } : {}),
    };
    return {
      secrets: { [CODEX_ACCESS_ENV]: access, [CODEX_ID_ENV]: id, [CODEX_REFRESH_ENV]: refresh },
      file: {
        path: `${session.home}/.codex/auth.json`,
        content: JSON.stringify(agentCopy, null, 2) + "\n",
        mode: 0o600,
        what: "the forwarded Codex login (placeholders)",
      },
    };
  },
};
