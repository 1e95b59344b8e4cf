/**
 * The claude template: Claude Code, run with full autonomy as the agent's user. It reaches
 * api.anthropic.com through the egress proxy holding a placeholder API key; nonessential traffic
 * (telemetry, feature flags, update checks) is switched off, so the model API is its one host.
 */
import { placeholderRef } from "../backends/plan.js";
import { claudeLogin } from "./claude-login.js";
import { promptPath, type AgentProvider, type AgentSession } from "./provider.js";

export const CLAUDE_API_HOST = "api.anthropic.com";

function common(s: AgentSession): string[] {
  return [
    "--dangerously-skip-permissions",
    ...(s.model !== undefined ? ["--model", s.model] : []),
    ...(s.prompt !== undefined ? ["--append-system-prompt-file", promptPath(s.home)] : []),
  ];
}

export const claude: AgentProvider = {
  name: "claude",
  summary: "Claude Code (@anthropic-ai/claude-code), key from $ANTHROPIC_API_KEY",
  image: "claude",
  skillsDir: ".claude/skills",
  apiKey: { env: "ANTHROPIC_API_KEY", host: CLAUDE_API_HOST },
  hostLogin: claudeLogin(CLAUDE_API_HOST),
  routes: () => [
    {
      host: CLAUDE_API_HOST,
      allow_ip_literal: false,
      tls_passthrough: false,
      auth: { header: "x-api-key", token_env: "ANTHROPIC_API_KEY" },
    },
  ],
  env: (s) => ({
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
    // Claude Code otherwise defers MCP tools behind a ToolSearch call: the model would not see
    // that it can ask the operator (supervise) until it searched for it.
    ...(s.mcpServers ? { ENABLE_TOOL_SEARCH: "false" } : {}),
  }),
  interactive: (s) => ["claude", ...common(s)],
  headless: (s) => ["claude", ...common(s), "-p"],
  files: (s) => [
    // Claude Code's first-run questions (theme, trusting the folder) would stop an unattended
    // start: the bottle answers them, the folder being the workspace the operator chose.
    {
      path: `${s.home}/.claude.json`,
      content:
        JSON.stringify(
          {
            hasCompletedOnboarding: true,
            // Its question "use this API key?" is answered for the placeholder the agent holds.
            customApiKeyResponses: {
              approved: [placeholderRef("ANTHROPIC_API_KEY", 20)],
              rejected: [],
            },
            projects: {
              [s.workspace]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true },
            },
            // The bundle's MCP servers, at user scope: no per-project approval to wait for.
            ...(s.mcpServers
              ? {
                  mcpServers: Object.fromEntries(
                    Object.entries(s.mcpServers).map(([name, url]) => [
                      name,
                      { type: "http", url },
                    ]),
                  ),
                }
              : {}),
          },
          null,
          2,
        ) + "\n",
      mode: 0o600,
      what: "Claude Code's settings",
    },
    // The bottle is the sandbox Claude Code's bypass-permissions warning asks for.
    {
      path: `${s.home}/.claude/settings.json`,
      content: JSON.stringify({ skipDangerousModePermissionPrompt: true }, null, 2) + "\n",
      mode: 0o644,
      what: "Claude Code's user settings",
    },
    ...(s.prompt !== undefined
      ? [{ path: promptPath(s.home), content: s.prompt, mode: 0o644, what: "the agent's prompt" }]
      : []),
  ],
};
