/**
 * The codex template: OpenAI's Codex CLI, run with approvals and its own sandbox off (the bottle
 * is the sandbox). Codex's built-in provider tries a WebSocket first and calls chatgpt.com and
 * github.com; a provider entry of its own keeps it to HTTPS and SSE on api.openai.com, and the
 * features that reach elsewhere are off, so the model API is its one host.
 */
import { codexLogin } from "./codex-login.js";
import type { AgentProvider, AgentSession } from "./provider.js";

export const OPENAI_API_HOST = "api.openai.com";
const PROVIDER_ID = "bot-bottle";

/** A TOML basic string. */
function tomlString(value: string): string {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function config(s: AgentSession): string {
  // A forwarded ChatGPT login needs Codex's own provider (its ChatGPT backend on chatgpt.com).
  const provider = s.forwardedLogin
    ? []
    : [
        `[model_providers.${PROVIDER_ID}]`,
        'name = "OpenAI (through bot-bottle)"',
        `base_url = "https://${OPENAI_API_HOST}/v1"`,
        'env_key = "OPENAI_API_KEY"',
        'wire_api = "responses"',
        "",
      ];
  return [
    "# Written by bot-bottle at start: the model API through the bottle's egress proxy.",
    ...(s.model !== undefined ? [`model = ${tomlString(s.model)}`] : []),
    ...(s.forwardedLogin ? [] : [`model_provider = "${PROVIDER_ID}"`]),
    "check_for_update_on_startup = false",
    "",
    ...provider,
    "[analytics]",
    "enabled = false",
    "",
    "[features]",
    "plugins = false",
    "apps = false",
    "remote_plugin = false",
    // Compressed request bodies cannot be scanned, and the proxy refuses them (ChatGPT mode
    // compresses with zstd): Codex sends them plain.
    "enable_request_compression = false",
    "",
    `[projects.${tomlString(s.workspace)}]`,
    'trust_level = "trusted"',
    "",
    ...Object.entries(s.mcpServers ?? {}).flatMap(([name, url]) => [
      `[mcp_servers.${tomlString(name)}]`,
      `url = ${tomlString(url)}`,
      // A supervise tool call waits for the operator (up to an hour, as the bottle sets it):
      // Codex must not give up on it first.
      "tool_timeout_sec = 3660",
      "",
    ]),
  ].join("\n");
}

const FLAGS = ["--dangerously-bypass-approvals-and-sandbox"];

export const codex: AgentProvider = {
  name: "codex",
  summary: "OpenAI Codex CLI (@openai/codex), key from $OPENAI_API_KEY",
  image: "codex",
  skillsDir: ".codex/skills",
  apiKey: { env: "OPENAI_API_KEY", host: OPENAI_API_HOST },
  hostLogin: codexLogin,
  routes: () => [
    {
      host: OPENAI_API_HOST,
      allow_ip_literal: false,
      tls_passthrough: false,
      auth: { header: "authorization", scheme: "Bearer", token_env: "OPENAI_API_KEY" },
    },
  ],
  env: (s) => ({ CODEX_HOME: `${s.home}/.codex` }),
  interactive: () => ["codex", ...FLAGS],
  headless: () => ["codex", "exec", ...FLAGS, "--skip-git-repo-check"],
  files: (s) => [
    {
      path: `${s.home}/.codex/config.toml`,
      content: config(s),
      mode: 0o600,
      what: "the codex configuration",
    },
    ...(s.prompt !== undefined
      ? [
          {
            path: `${s.home}/.codex/AGENTS.md`,
            content: s.prompt,
            mode: 0o644,
            what: "the agent's prompt (AGENTS.md)",
          },
        ]
      : []),
  ],
};
