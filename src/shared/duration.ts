/**
 * Durations as an operator writes them ("30s", "5m", "2h", "1d", "1h30m"): in the manifest
 * (`supervise.wait`, `supervise.timeout`) and on the command line (`approve --for`).
 */

const UNITS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** How a duration is written, for messages. */
export const DURATION_EXAMPLE = 'e.g. "30s", "5m", "2h" or "1h30m"';

/**
 * The seconds a duration stands for: whole numbers each followed by its unit (d, h, m, s), the
 * larger units first, each at most once. Undefined for anything else (a bare number, a
 * fraction, a sign, white space, an unknown unit).
 */
export function parseDuration(text: string): number | undefined {
  if (text === "" || text.length > 40) return undefined;
  const match = DURATION.exec(text);
  if (!match) return undefined;
  const [, d, h, m, s] = match;
  const seconds =
    Number(d ?? 0) * UNITS.d + Number(h ?? 0) * UNITS.h + Number(m ?? 0) * UNITS.m + Number(s ?? 0);
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}

/** The shortest exact spelling parseDuration reads back: 5400 → "1h30m", 0 → "0s". */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  if (rest === 0) return "0s";
  let out = "";
  for (const [unit, size] of Object.entries(UNITS)) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/** A rough age for tables: "12s", "5m", "3h", "2d" (the largest unit only). */
export function roughDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
