/**
 * The agent's interactive session lives in the bottle, in tmux, so it outlives the terminal that
 * watches it: `start` opens it, detaching (Ctrl-b d) leaves it running, `bot-bottle attach`
 * comes back to it, and when the agent exits the session ends with it.
 */
import type { Backend, Bottle } from "../backends/backend.js";
import { UsageError } from "../errors.js";
import { readMetadata } from "../state/bottle-state.js";
import { findBottle, NoSuchBottleError } from "./bottles.js";

/** The tmux session the agent runs in, in every bottle. */
export const SESSION = "agent";

export interface SessionSpec {
  /** The agent's interactive command. */
  argv: readonly string[];
  workdir: string;
  user: string;
}

/** Is the agent's session running? */
export async function sessionRuns(bottle: Bottle, spec: SessionSpec): Promise<boolean> {
  try {
    await bottle.exec(["tmux", "has-session", "-t", SESSION], {
      user: spec.user,
      timeoutMs: 10_000,
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the session with the agent's command, detached, at a usual terminal size (an attached
 * terminal resizes it). The status line names the bottle and how to detach.
 */
export async function openSession(bottle: Bottle, spec: SessionSpec): Promise<void> {
  await bottle.exec(
    [
      "tmux",
      "new-session",
      "-d",
      "-s",
      SESSION,
      "-x",
      "120",
      "-y",
      "40",
      "-c",
      spec.workdir,
      ...spec.argv,
      ";",
      "set-option",
      "-t",
      SESSION,
      "status-left",
      `[${bottle.slug}] `,
      ";",
      "set-option",
      "-t",
      SESSION,
      "status-left-length",
      "60",
      ";",
      "set-option",
      "-t",
      SESSION,
      "status-right",
      "detach: Ctrl-b d ",
      // The agents' UIs follow focus (Claude Code asks for it).
      ";",
      "set-option",
      "-g",
      "focus-events",
      "on",
    ],
    { user: spec.user, workdir: spec.workdir, timeoutMs: 15_000 },
  );
}

export type AttachOutcome = "detached" | "ended";

/**
 * This terminal on the agent's session, opened first when it does not run. Resolves once the
 * terminal leaves it: "detached" while the agent still runs, "ended" when it exited.
 */
export async function attachSession(
  bottle: Bottle,
  spec: SessionSpec,
  terminal: { isTTY: boolean; term?: string },
): Promise<AttachOutcome> {
  if (!terminal.isTTY)
    throw new UsageError(
      "attaching to the agent's session needs a terminal, and standard input is not one",
      "run it from a terminal; without one use `start --detach`, `bot-bottle exec SLUG -- CMD` or `bot-bottle run AGENT -- PROMPT`",
    );
  if (!(await sessionRuns(bottle, spec))) await openSession(bottle, spec);
  await bottle.attach(["tmux", "attach-session", "-t", SESSION], {
    tty: true,
    stdin: true,
    user: spec.user,
    workdir: spec.workdir,
    env: { TERM: terminal.term || "xterm-256color" },
  });
  return (await sessionRuns(bottle, spec)) ? "detached" : "ended";
}

/** A running bottle's handle and its session, by slug (the session as its start recorded it). */
export async function bottleSession(
  backends: readonly Backend[],
  slug: string,
): Promise<{ bottle: Bottle; spec: SessionSpec }> {
  const { backend, resources } = await findBottle(backends, slug);
  const bottle = await backend.handle(slug, resources);
  if (!bottle) throw new NoSuchBottleError(slug);
  const stateDir = resources.find((r) => r.stateDir)?.stateDir;
  const session = stateDir ? (await readMetadata(stateDir))?.session : undefined;
  if (!session)
    throw new UsageError(
      `${slug} has no agent session on record (it was started by an older bot-bottle)`,
      `use \`bot-bottle exec ${slug} -- CMD\`, or stop it and start a new bottle`,
    );
  return { bottle, spec: session };
}
