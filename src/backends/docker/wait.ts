/** Waiting on a container's log for a typed event, with a deadline and a precise message. */
import { CommandFailedError } from "../../exec/run.js";
import type { DockerCli } from "./cli.js";

export class ReadinessError extends Error {}

/**
 * Follows `docker logs -f` of a container until a JSON event line matches `event`. Fails when
 * the deadline passes or the container's log ends first, quoting the last line it wrote.
 */
export async function waitForEvent(
  docker: DockerCli,
  container: string,
  event: string,
  deadlineMs: number,
  what: string,
): Promise<void> {
  const controller = new AbortController();
  let lastLine = "";
  let seen = false;
  const onLine = (line: string) => {
    if (line.trim()) lastLine = line.trim();
    if (seen || !line.startsWith("{")) return;
    try {
      if ((JSON.parse(line) as { event?: string }).event === event) {
        seen = true;
        controller.abort();
      }
    } catch {
      /* not an event line */
    }
  };
  const timer = setTimeout(() => controller.abort(), deadlineMs);
  try {
    await docker.run(["logs", "--follow", container], {
      signal: controller.signal,
      onStdoutLine: onLine,
      onStderrLine: onLine,
    });
  } catch (err) {
    if (!(err instanceof CommandFailedError)) throw err;
  } finally {
    clearTimeout(timer);
  }
  if (seen) return;
  const last = lastLine ? `; last log line: ${lastLine.slice(0, 300)}` : "; it wrote no log line";
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
