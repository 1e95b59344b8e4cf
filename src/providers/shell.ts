/** The shell template: a plain Debian with git, curl and node, for bringing your own agent. */
import { promptPath, type AgentProvider } from "./provider.js";

export const shell: AgentProvider = {
  name: "shell",
  summary: "a plain Debian image with git, curl, node and tmux: bring your own agent",
  image: "shell",
  skillsDir: ".bot-bottle/skills",
  routes: () => [],
  env: (s): Record<string, string> =>
    s.prompt !== undefined ? { BOT_BOTTLE_PROMPT_FILE: promptPath(s.home) } : {},
  interactive: () => ["bash", "-l"],
  headless: () => ["bash", "-lc"],
  files: (s) =>
    s.prompt !== undefined
      ? [{ path: promptPath(s.home), content: s.prompt, mode: 0o644, what: "the agent's prompt" }]
      : [],
};
