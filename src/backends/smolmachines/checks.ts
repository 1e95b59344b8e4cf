/** Can this machine run smolmachines bottles? smolvm installed and working. */
import { CommandFailedError, CommandNotFoundError, run } from "../../exec/run.js";
import type { Check } from "../../shared/checks.js";

/** The first line smolvm wrote on stderr, else the error's own. */
function reason(err: unknown): string {
  const text = err instanceof CommandFailedError && err.stderr.trim() ? err.stderr : String(err);
  return text.trim().split("\n")[0] ?? text;
}

export async function smolvmChecks(env: NodeJS.ProcessEnv): Promise<Check[]> {
  try {
    const { stdout } = await run("smolvm", ["--version"], { env, timeoutMs: 10_000 });
    return [
      { name: "smolvm", status: "ok", detail: `installed: ${stdout.trim().split("\n")[0] ?? ""}` },
    ];
  } catch (err) {
    return [
      {
        name: "smolvm",
        status: "info",
        detail:
          err instanceof CommandNotFoundError
            ? "not installed"
            : `installed but not working: ${reason(err)}`,
        remedy:
          "optional: only the smolmachines (microVM) backend needs it; Docker bottles work without it",
      },
    ];
  }
}
