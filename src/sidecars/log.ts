/** Typed log events from sidecar code: one JSON line each on stdout. */
import type { LogEvent } from "../shared/init-config.js";

export type Logger = (event: string, message: string, fields?: Record<string, unknown>) => void;

export function createLogger(
  slug: string,
  component: string,
  write = (line: string) => process.stdout.write(line),
): Logger {
  return (event, message, fields = {}) => {
    const record: LogEvent = {
      time: new Date().toISOString(),
      slug,
      component,
      event,
      message,
      ...fields,
    };
    write(JSON.stringify(record) + "\n");
  };
}
