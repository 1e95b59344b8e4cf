import { homedir } from "node:os";
import { join } from "node:path";

/** Where bottles keep their state: ${XDG_STATE_HOME:-~/.local/state}/bot-bottle. */
export function stateRoot(env: NodeJS.ProcessEnv): string {
  return join(env["XDG_STATE_HOME"] || join(homedir(), ".local", "state"), "bot-bottle");
}

/** Where bot-bottle keeps what it can make again: ${XDG_CACHE_HOME:-~/.cache}/bot-bottle. */
export function cacheRoot(env: NodeJS.ProcessEnv): string {
  return join(env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "bot-bottle");
}
