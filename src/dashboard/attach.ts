/**
 * `enter` on a bottle: its agent session, either in a new window of the operator's tmux (the
 * dashboard stays on screen in its own) or, outside tmux, on this terminal while the dashboard
 * waits (runDashboard suspends it and draws it again after the detach).
 */
import { run } from "../exec/run.js";

/**
 * What the `attach` in the new window needs of this environment: the engine, the state and the
 * manifest, and nothing else (the window's command line is visible to the host's `ps`, and the
 * operator's shell may hold tokens).
 */
const PASSED = [
  "HOME",
  "PATH",
  "DOCKER_HOST",
  "DOCKER_CONTEXT",
  "DOCKER_CONFIG",
  "DOCKER_CERT_PATH",
  "DOCKER_TLS_VERIFY",
  "XDG_STATE_HOME",
  "XDG_CACHE_HOME",
  "XDG_CONFIG_HOME",
  "BOT_BOTTLE_MANIFEST",
  "BOT_BOTTLE_PLUGINS_DIR",
];

/** Whether the dashboard runs inside tmux, where `enter` opens a window. */
export function insideTmux(env: NodeJS.ProcessEnv): boolean {
  return (env["TMUX"] ?? "") !== "";
}

/**
 * Opens a tmux window named after the bottle running `bot-bottle attach SLUG` (this same
 * bot-bottle); the window closes when the session is detached.
 */
export async function attachInTmuxWindow(slug: string, env: NodeJS.ProcessEnv): Promise<void> {
  const script = process.argv[1];
  if (!script) throw new Error("cannot tell which bot-bottle runs this dashboard");
  await run("tmux", tmuxWindowArgs(slug, env, script), { env });
}

/** tmux's arguments for that window: its name, the variables passed, and the command. */
export function tmuxWindowArgs(slug: string, env: NodeJS.ProcessEnv, script: string): string[] {
  const passed = PASSED.flatMap((name) => {
    const value = env[name];
    return value === undefined ? [] : ["-e", `${name}=${value}`];
  });
  return ["new-window", "-n", slug, ...passed, process.execPath, script, "attach", slug];
}
