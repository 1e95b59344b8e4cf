/**
 * Reading a JSON file one side of the bundle wrote for the other (init.json, egress.json, an audit
 * line) through its zod schema. A file that does not match is refused with an error naming the
 * file and the JSON path of the first problems, in bot-bottle's own words: zod is never asked to
 * report input values, and no sentence here includes one (these files sit beside tokens).
 */
import type { z } from "zod";

/** One thing wrong with a file: where (`routes[0].auth.tokenEnv`) and what. */
export interface ConfigProblem {
  path: string;
  message: string;
}

/** At most this many problems are spelt out in the message; all are on `problems`. */
export const MAX_PROBLEMS_SHOWN = 5;

/** A config file that is not JSON or does not match its schema. */
export class ConfigFileError extends Error {
  readonly code = "config_invalid";

  constructor(
    readonly file: string,
    readonly what: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    const shown = problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `${p.path} ${p.message}`);
    const more = problems.length - shown.length;
    if (more > 0) shown.push(`…and ${more} more`);
    super(`${file} is not a valid ${what}: ${shown.join("; ")}`);
    this.name = "ConfigFileError";
  }
}

type JsonPath = readonly PropertyKey[];

/** Keys that look like a pasted credential are shown as `<key>`, never spelt out. */
const TOKEN_LIKE =
  /^(gh[pousr]_|github_pat_|glpat-|xox[abpr]-|sk-|sk_live_|AKIA|eyJ)|[A-Za-z0-9+/=_-]{40,}/;

/** `routes[1].auth.tokenEnv`, `extraHosts["git.example.com"]`; `(top level)` for the root. */
export function formatJsonPath(path: JsonPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part !== "string" || TOKEN_LIKE.test(part)) out += "[<key>]";
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === "" ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === "" ? "(top level)" : out;
}

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "an object",
  record: "an object",
};

const UNITS: Record<string, string> = { string: "characters", array: "entries" };

function isPresent(data: unknown, path: JsonPath): boolean {
  let value = data;
  for (const part of path) {
    if (value === null || typeof value !== "object") return false;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value !== undefined;
}

function bound(origin: string, limit: number | bigint, word: "least" | "most"): string {
  if (origin === "string" && word === "least" && Number(limit) === 1) return "must not be empty";
  if (origin === "array" && word === "least" && Number(limit) === 1)
    return "must have at least one entry";
  const unit = UNITS[origin];
  return `must be at ${word} ${String(limit)}${unit ? ` ${unit}` : ""}`;
}

/** One zod issue as problems. Every sentence is built from the schema, never from the input. */
function problemsOf(issue: z.core.$ZodIssue, data: unknown): ConfigProblem[] {
  const at = (path: JsonPath, message: string) => ({ path: formatJsonPath(path), message });
  switch (issue.code) {
    case "invalid_type":
      return [
        at(
          issue.path,
          isPresent(data, issue.path)
            ? `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}`
            : "is missing",
        ),
      ];
    case "unrecognized_keys":
      return issue.keys.map((key) => at([...issue.path, key], "is not a known field"));
    case "too_small":
      return [at(issue.path, bound(issue.origin, issue.minimum, "least"))];
    case "too_big":
      return [at(issue.path, bound(issue.origin, issue.maximum, "most"))];
    case "invalid_value":
      return [
        at(issue.path, `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`),
      ];
    case "invalid_format":
      // The schemas give their own sentence for a pattern; zod's default names the format only.
      return [
        at(
          issue.path,
          issue.message.startsWith("must ") ? issue.message : `must be a valid ${issue.format}`,
        ),
      ];
    case "invalid_key":
      return [at(issue.path, "has a key that is not allowed")];
    case "invalid_union":
    case "invalid_element":
    case "not_multiple_of":
    case "custom":
      return [at(issue.path, "is not valid")];
  }
}

/** The problems zod found in `data`, in the order it found them. */
export function configProblems(
  issues: readonly z.core.$ZodIssue[],
  data: unknown,
): ConfigProblem[] {
  return issues.flatMap((issue) => problemsOf(issue, data));
}

/**
 * `text`, the contents of `file`, parsed as JSON and checked against `schema`. Throws
 * ConfigFileError (never quoting the file's contents) when it is not JSON or does not match.
 */
export function parseConfigText<S extends z.ZodType>(
  schema: S,
  what: string,
  file: string,
  text: string,
): z.output<S> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // JSON.parse's own message quotes the text around the mistake: keep only the position.
    const position = err instanceof Error ? /position (\d+)/.exec(err.message)?.[1] : undefined;
    throw new ConfigFileError(file, what, [
      {
        path: "(top level)",
        message: `is not JSON${position === undefined ? "" : ` (at character ${position})`}`,
      },
    ]);
  }
  const result = schema.safeParse(data);
  if (!result.success)
    throw new ConfigFileError(file, what, configProblems(result.error.issues, data));
  return result.data;
}
