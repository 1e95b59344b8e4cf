import { homedir } from "node:os";
import { join } from "node:path";

/** Where bottles keep their state: ${XDG_STATE_HOME:-~/.local/state}/bot-bottle. */
export function stateRoot(env: NodeJS.ProcessEnv): string {
  return join(env["XDG_STATE_HOME"] || join(homedir(), ".local", "state"), "bot-bottle");
}
