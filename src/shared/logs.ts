/**
 * A bottle's log lines as every face shows them: the bundle's typed events and the agent's
 * output, each with the time it was written and the part that wrote it. Backends produce them;
 * the state dir keeps them as "<RFC 3339 time> <text>" lines (logs/<source>.log) after a stop.
 */
export interface LogLine {
  time: string;
  /** The part that wrote it: "bundle" or "agent". */
  source: string;
  text: string;
}

/** Splits timestamped output ("<RFC3339Nano> <text>", as `docker logs --timestamps` writes it). */
export function parseTimestamped(source: string, output: string): LogLine[] {
  return output
    .split("\n")
    .filter((l) => l.trim())
    .map((line) => {
      const space = line.indexOf(" ");
      const time = space > 0 ? line.slice(0, space) : "";
      return /^\d{4}-\d\d-\d\dT/.test(time)
        ? { time, source, text: line.slice(space + 1) }
        : { time: "", source, text: line };
    });
}

export function mergeByTime(...streams: LogLine[][]): LogLine[] {
  return streams.flat().sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
