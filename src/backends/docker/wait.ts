/** Waiting on a container's log for a typed event, with a deadline and a precise message. */
import { CommandFailedError } from "../../exec/run.js";
import type { DockerCli } from "./cli.js";

/**
 * How long a start waits for the bundle's daemons to report ready. Ready takes about a second on
 * an idle machine, and a bundle that exits ends the wait at once; the margin is for a busy one —
 * several starts at once on two cores, with dozens of bottles up, took up to 25 s.
 */
export const BUNDLE_READY_DEADLINE_MS = 60_000;

export class ReadinessError extends Error {}

export type EventMatch = string | ((event: Record<string, unknown>) => boolean);

/**
 * Follows `docker logs -f` of a container (from `since`, an RFC 3339 time, when given) until a
 * JSON event line matches: by event name, or by a predicate. Resolves to that event. Fails when
 * the deadline passes or the container's log ends first, quoting the last line it wrote.
 */
export async function waitForEvent(
  docker: DockerCli,
  container: string,
  match: EventMatch,
  deadlineMs: number,
  what: string,
  since?: string,
): Promise<Record<string, unknown>> {
  const controller = new AbortController();
  const matches =
    typeof match === "string" ? (e: Record<string, unknown>) => e["event"] === match : match;
  let lastLine = "";
  /** A daemon's own account of why it failed: worth more than the line init writes after it. */
  let lastFailure = "";
  let seen: Record<string, unknown> | undefined;
  const onLine = (line: string) => {
    if (line.trim()) lastLine = line.trim();
    if (seen || !line.startsWith("{")) return;
    try {
      const event = JSON.parse(line) as Record<string, unknown>;
      const { event: name, component, message } = event;
      if (
        typeof name === "string" &&
        /(^|-)failed$|^config-invalid$/.test(name) &&
        typeof message === "string"
      )
        lastFailure = `${typeof component === "string" ? component : "bundle"}: ${message}`;
      if (matches(event)) {
        seen = event;
        controller.abort();
      }
    } catch {
      /* not an event line */
    }
  };
  const timer = setTimeout(() => controller.abort(), deadlineMs);
  try {
    await docker.run(["logs", "--follow", ...(since ? ["--since", since] : []), container], {
      signal: controller.signal,
      onStdoutLine: onLine,
      onStderrLine: onLine,
    });
  } catch (err) {
    if (!(err instanceof CommandFailedError)) throw err;
  } finally {
    clearTimeout(timer);
  }
  if (seen) return seen;
  const last = lastFailure
    ? `: ${lastFailure.slice(0, 300)}`
    : lastLine
      ? `; last log line: ${lastLine.slice(0, 300)}`
      : "; it wrote no log line";
  const state = await docker
    .run(["inspect", "--format", "{{.State.Status}}", container])
    .then((r) => r.stdout.trim())
    .catch(() => "gone");
  const why =
    state === "running"
      ? `did not become ready within ${deadlineMs / 1000} s`
      : `stopped (${state}) before it was ready`;
  throw new ReadinessError(`${what} ${why}${last}`);
}
