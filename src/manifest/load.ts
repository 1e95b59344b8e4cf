/**
 * Reading a manifest file: JSON with comments, parsed into a tree so every problem can point at
 * its line; validated against the one schema; yielding a ManifestIndex of every agent and bottle.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  findNodeAtLocation,
  getNodeValue,
  parseTree,
  printParseErrorCode,
  type Node,
  type ParseError,
} from "jsonc-parser";
import { ManifestIndex } from "./index.js";
import { issueToProblems } from "./issues.js";
import { ManifestError, ManifestMissingError, type JsonPath, type Problem } from "./problems.js";
import { closest } from "./rules.js";
import { ManifestSchema } from "./schema.js";

/** The template names an agent may use: the built-in providers and the installed plugins. */
export interface TemplateCatalog {
  builtins: readonly string[];
  plugins: readonly string[];
  pluginsDir: string;
}

export const DEFAULT_MANIFEST = "bot-bottle.json";

/** -f/--manifest wins, then BOT_BOTTLE_MANIFEST, then ./bot-bottle.json. */
export function manifestPath(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string,
): string {
  return resolve(cwd, flag ?? (env["BOT_BOTTLE_MANIFEST"] || DEFAULT_MANIFEST));
}

export const PARSE_SENTENCES: Record<string, string> = {
  InvalidSymbol: "has a character that is not JSON here",
  InvalidNumberFormat: "has a malformed number",
  PropertyNameExpected: 'expects a field name in double quotes, e.g. "agents"',
  ValueExpected: "expects a value (a string, number, true/false, list or object)",
  ColonExpected: 'expects ":" between a field name and its value',
  CommaExpected: 'expects "," between two fields or list items',
  CloseBraceExpected: 'expects "}" to close an object',
  CloseBracketExpected: 'expects "]" to close a list',
  EndOfFileExpected: "has text after the end of the top-level object",
  InvalidCommentToken: "has a comment that is not closed",
  UnexpectedEndOfComment: "has a comment that is not closed",
  UnexpectedEndOfString: "has a string that is not closed",
  UnexpectedEndOfNumber: "has a number that is cut off",
  InvalidUnicode: "has an invalid \\u escape",
  InvalidEscapeCharacter: "has an invalid escape (\\) in a string",
  InvalidCharacter: "has a control character inside a string",
};

export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Duplicate keys would be silently collapsed by JSON parsing: in a sandbox policy, refuse them. */
export function duplicateKeys(
  node: Node,
  path: (string | number)[],
  out: Problem[],
  text: string,
): void {
  if (node.type === "object") {
    const seen = new Set<string>();
    for (const property of node.children ?? []) {
      const [keyNode, valueNode] = property.children ?? [];
      if (!keyNode) continue;
      const key = String(keyNode.value);
      if (seen.has(key))
        out.push({
          path: [...path, key],
          message: "appears twice in the same object — JSON keeps only the last one; merge them",
          ...lineColumn(text, keyNode.offset),
        });
      seen.add(key);
      if (valueNode) duplicateKeys(valueNode, [...path, key], out, text);
    }
  } else if (node.type === "array") {
    (node.children ?? []).forEach((child, i) => duplicateKeys(child, [...path, i], out, text));
  }
}

export function locate(
  tree: Node,
  text: string,
  path: JsonPath,
): { line: number; column: number } | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = findNodeAtLocation(tree, path.slice(0, depth));
    if (!node) continue;
    // For a key, point at the key rather than its value.
    const target = depth === path.length && node.parent?.type === "property" ? node.parent : node;
    return lineColumn(text, target.offset);
  }
  return undefined;
}

/** Parses and validates manifest text. Throws ManifestError with every problem found. */
export function parseManifest(
  file: string,
  text: string,
  templates: TemplateCatalog,
): ManifestIndex {
  const parseErrors: ParseError[] = [];
  const tree = parseTree(text, parseErrors, { allowTrailingComma: true, disallowComments: false });
  if (parseErrors.length > 0 || tree === undefined) {
    const problems = parseErrors.map((e) => ({
      path: [],
      message: `is not valid JSON: the text here ${PARSE_SENTENCES[printParseErrorCode(e.error)] ?? "cannot be read"}`,
      ...lineColumn(text, e.offset),
    }));
    throw new ManifestError(
      file,
      problems.length
        ? problems
        : [{ path: [], message: "is empty — run `bot-bottle init` for an example" }],
    );
  }
  if (tree.type !== "object")
    throw new ManifestError(file, [
      {
        path: [],
        message: 'must be a JSON object with "agents" and "bottles"',
        line: 1,
        column: 1,
      },
    ]);

  const problems: Problem[] = [];
  duplicateKeys(tree, [], problems, text);
  const data: unknown = getNodeValue(tree);
  const result = ManifestSchema.safeParse(data);
  if (!result.success) {
    for (const issue of result.error.issues)
      problems.push(...issueToProblems(ManifestSchema, issue, data));
  } else {
    const known = [...templates.builtins, ...templates.plugins];
    for (const [name, agent] of Object.entries(result.data.agents)) {
      if (known.includes(agent.template)) continue;
      const guess = closest(agent.template, known);
      const plugins = templates.plugins.length
        ? `the plugins installed in ${templates.pluginsDir}: ${templates.plugins.join(", ")}`
        : `no plugins are installed in ${templates.pluginsDir}`;
      problems.push({
        path: ["agents", name, "template"],
        message: `is not a known template${guess ? ` — did you mean "${guess}"?` : ""} — use "claude", "codex" or "shell", or a plugin name (${plugins})`,
      });
    }
  }
  if (problems.length > 0) {
    for (const p of problems)
      if (p.line === undefined) Object.assign(p, locate(tree, text, p.at ?? p.path));
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new ManifestError(file, problems);
  }
  if (!result.success) throw new Error("unreachable: schema failed without problems");
  return new ManifestIndex(file, result.data, createHash("sha256").update(text).digest("hex"));
}

export async function loadManifest(
  file: string,
  templates: TemplateCatalog,
): Promise<ManifestIndex> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ManifestMissingError(file);
    throw new ManifestError(file, [
      {
        path: [],
        message: `cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"}) — check its permissions`,
      },
    ]);
  }
  return parseManifest(file, text, templates);
}
