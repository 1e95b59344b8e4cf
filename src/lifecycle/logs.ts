/**
 * A bottle's logs: the bundle's typed events and the agent container's output, merged in time
 * order. One source (docker's timestamped log lines, or the copies captured at stop), two views:
 * lines for people, JSON lines for programs.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Backend } from "../backends/backend.js";
import type { LogEvent } from "../shared/init-config.js";
import { mergeByTime, parseTimestamped, type LogLine } from "../shared/logs.js";
import { visible } from "../shared/visible.js";
import { stateRoot } from "../state/paths.js";
import { bottleIfAny } from "./bottles.js";

export type { LogLine };

function asEvent(text: string): LogEvent | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const value = JSON.parse(text) as Partial<LogEvent>;
    return typeof value.event === "string" && typeof value.component === "string"
      ? (value as LogEvent)
      : undefined;
  } catch {
    return undefined;
  }
}

/** For people: "14:31:29.865 egress  listen  egress listening on :9099". */
export function renderLine(line: LogLine): string {
  const clock = line.time.slice(11, 23) || "--:--:--.---";
  const event = asEvent(line.text);
  // The agent's output, and what daemons logged about its requests, is the agent's own text.
  if (event)
    return visible(
      `${clock} ${event.component.padEnd(8)} ${event.event.padEnd(12)} ${event.message}`,
    );
  return `${clock} ${line.source.padEnd(8)} ${"output".padEnd(12)} ${visible(line.text)}`;
}

/** For programs: one JSON object a line, typed events kept whole. */
export function renderJson(line: LogLine): string {
  const event = asEvent(line.text);
  return JSON.stringify(
    event ?? { time: line.time, component: line.source, event: "output", message: line.text },
  );
}

/** The logs captured into <stateDir>/logs at stop. */
export async function capturedLogs(stateDir: string): Promise<LogLine[] | undefined> {
  const dir = join(stateDir, "logs");
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".log"));
  } catch {
    return undefined;
  }
  const streams = await Promise.all(
    files.map(async (f) =>
      parseTimestamped(f.replace(/\.log$/, ""), await readFile(join(dir, f), "utf8")),
    ),
  );
  return mergeByTime(...streams);
}

/**
 * A bottle's logs as `bot-bottle logs SLUG` prints them: from its backend while it runs, else
 * those captured at its stop; undefined when there are neither.
 */
export async function bottleLogs(
  backends: readonly Backend[],
  slug: string,
  env: NodeJS.ProcessEnv,
): Promise<LogLine[] | undefined> {
  const found = await bottleIfAny(backends, slug);
  if (found) return found.backend.logs(found.resources);
  return capturedLogs(join(stateRoot(env), slug));
}
