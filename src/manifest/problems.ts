/**
 * Problems found in a manifest, as a person reads them: the file, the line, the JSON path, what is
 * wrong and what to write instead — at most a handful, and never a value from the file.
 */
import { BotBottleError, EXIT } from "../errors.js";

export type JsonPath = readonly (string | number)[];

export interface Problem {
  path: JsonPath;
  message: string;
  /** Where in the file to point, when that differs from the path shown. */
  at?: JsonPath;
  /** 1-based position in the file, when known. */
  line?: number;
  column?: number;
}

/** Keys that look like a pasted credential are shown as `<key>`, never spelt out. */
const TOKEN_LIKE =
  /^(gh[pousr]_|github_pat_|glpat-|xox[abpr]-|sk-|sk_live_|AKIA|eyJ)|[A-Za-z0-9+/=_-]{40,}/;

/** `bottles.dev.git[1].known_host_key`; keys that are not plain words are quoted. */
export function formatPath(path: JsonPath): string {
  let out = "";
  for (const raw of path) {
    const part = typeof raw === "string" && TOKEN_LIKE.test(raw) ? "<key>" : raw;
    if (typeof part === "number") out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(part) || /^<\w+>$/.test(part))
      out += out === "" ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === "" ? "(top level)" : out;
}

export const MAX_SHOWN = 5;

export function formatProblems(file: string, problems: readonly Problem[]): string {
  const shown = problems.slice(0, MAX_SHOWN).map((p) => {
    const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
    return `  ${where}  ${formatPath(p.path)} ${p.message}`;
  });
  const more = problems.length - shown.length;
  if (more > 0) shown.push(`  …and ${more} more (fix these first)`);
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `${file} is not a valid bot-bottle manifest (${count}):\n${shown.join("\n")}`;
}

export class ManifestError extends BotBottleError {
  readonly file: string;
  readonly problems: readonly Problem[];

  constructor(file: string, problems: readonly Problem[]) {
    super("manifest_invalid", formatProblems(file, problems), {
      exitCode: EXIT.manifest,
      hint: "`bot-bottle schema` prints the JSON Schema; docs/manifest.md describes every field.",
    });
    this.name = "ManifestError";
    this.file = file;
    this.problems = problems;
  }
}

export class ManifestMissingError extends BotBottleError {
  readonly file: string;
  constructor(file: string) {
    super("manifest_missing", `no manifest at ${file}`, {
      exitCode: EXIT.manifest,
      hint: "run `bot-bottle init` to write an example there, or choose a file with -f PATH or BOT_BOTTLE_MANIFEST",
    });
    this.name = "ManifestMissingError";
    this.file = file;
  }
}
