/**
 * User plugins: a provider of the operator's own, declared in `<plugins dir>/<name>/plugin.json`
 * (JSON with comments): the built-in it starts from, a Dockerfile layered on that image, the
 * commands that start the agent, its variables, routes and the files its home holds. The file is
 * read like the manifest (manifest/load.ts): every problem at file:line:col with its JSON path and
 * what to write instead, never a value from the file; a credential is refused wherever it shows.
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, posix, sep } from "node:path";
import { parseTree, printParseErrorCode, getNodeValue, type ParseError } from "jsonc-parser";
import { z } from "zod";
import { BotBottleError, EXIT, UsageError } from "../errors.js";
import { issueToProblems } from "../manifest/issues.js";
import { duplicateKeys, lineColumn, locate, PARSE_SENTENCES } from "../manifest/load.js";
import { formatPath, MAX_SHOWN, type Problem } from "../manifest/problems.js";
import {
  checkEnvName,
  checkRouteHost,
  ENV_NAME_PATTERN,
  NAME_PATTERN,
  NAME_RULE,
  normaliseDnsName,
} from "../manifest/rules.js";
import { RouteSchema, type Route } from "../manifest/schema.js";
import { findSecretPattern } from "../shared/secret-patterns.js";
import { claude } from "./claude.js";
import { codex } from "./codex.js";
import type { AgentFile, AgentProvider } from "./provider.js";
import { shell } from "./shell.js";

export const PLUGIN_FILE = "plugin.json";
/** The built-ins a plugin can start from. */
export const PLUGIN_BASES = { shell, claude, codex } as const;
export const MAX_PLUGIN_JSON_BYTES = 256 * 1024;
export const MAX_FILE_BYTES = 256 * 1024;
export const MAX_FILES_TOTAL_BYTES = 1024 * 1024;

const NO_CREDENTIAL =
  'a credential never goes in a plugin: declare a route with "auth" (the sidecar bundle holds the token and the agent a placeholder) and name the variable the agent\'s CLI reads in "api_key"';

/** One issue per problem a check reports. */
function rule<T>(check: (value: T) => string | undefined) {
  return (value: T, ctx: z.RefinementCtx) => {
    const problem = check(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  };
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function credentialIn(text: string): string | undefined {
  const found = findSecretPattern(text);
  return found && `holds text shaped like ${found.pattern.description} — ${NO_CREDENTIAL}`;
}

/** A relative path that stays below its folder: no absolute path, no "~", no ".." segment. */
function checkRelative(example: string, below: string) {
  return (value: string): string | undefined => {
    if (hasControl(value)) return `has a control character — ${example}`;
    if (
      isAbsolute(value) ||
      value.startsWith("~") ||
      /^[A-Za-z]:/.test(value) ||
      value.startsWith("\\")
    )
      return `must be relative to ${below}, ${example}`;
    const parts = value.split(/[/\\]/);
    if (parts.includes("..")) return `must stay inside ${below}: no ".." segments, ${example}`;
    if (posix.normalize(value) === "." || value.endsWith("/"))
      return `must name a file, not a folder, ${example}`;
    return undefined;
  };
}

const pluginPath = (example: string) =>
  z
    .string()
    .min(1)
    .superRefine(rule(checkRelative(`e.g. "${example}"`, "the plugin folder")));

const homePath = (example: string) =>
  z
    .string()
    .min(1)
    .superRefine(rule(checkRelative(`e.g. "${example}"`, "the agent's home")));

const argv = (what: string) =>
  z
    .array(
      z
        .string()
        .min(1)
        .max(4096)
        .superRefine(
          rule((arg: string) =>
            arg.includes("\u0000")
              ? "has a NUL character, which no argument can hold"
              : credentialIn(arg),
          ),
        ),
    )
    .min(1)
    .describe(what);

/**
 * Variables bot-bottle sets in every agent: a plugin may not change where requests go or whom
 * the agent trusts.
 */
const PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY"];
const CA_VARS = [
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "REQUESTS_CA_BUNDLE",
  "CURL_CA_BUNDLE",
  "GIT_SSL_CAINFO",
  "GIT_SSL_CAPATH",
  "GIT_SSL_NO_VERIFY",
  "CODEX_CA_CERTIFICATE",
  "NODE_TLS_REJECT_UNAUTHORIZED",
];
/** Names that hold credentials by convention. */
const CREDENTIAL_NAME =
  /(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|(API|ACCESS|PRIVATE|SECRET)_?KEY)S?(_|$)/i;

/** Why a plugin may not set this variable, or undefined. */
export function checkPluginEnvName(name: string): string | undefined {
  const upper = name.toUpperCase();
  if (!ENV_NAME_PATTERN.test(name) || name.length > 128)
    return 'must be a variable name (letters, digits and _, not starting with a digit), e.g. "MY_AGENT_MODE"';
  if (findSecretPattern(name))
    return `is shaped like a credential, not a variable name — ${NO_CREDENTIAL}`;
  if (PROXY_VARS.includes(upper))
    return "is a proxy variable, which bot-bottle sets to the bottle's egress proxy (every request leaves through it) — remove it";
  if (CA_VARS.includes(upper))
    return "decides which certificate authorities the agent trusts, which bot-bottle sets to the bottle's CA — remove it";
  if (upper === "HOME" || upper === "USER")
    return "is set by bot-bottle (the agent's user and home) — remove it";
  if (upper.startsWith("BOT_BOTTLE_"))
    return 'is bot-bottle\'s own (BOT_BOTTLE_…) — choose another name, e.g. "MY_AGENT_MODE"';
  if (CREDENTIAL_NAME.test(name)) return `names a credential — ${NO_CREDENTIAL}`;
  return undefined;
}

/** A key is shown in a problem only when it is a plain variable name and not shaped like a token. */
function shownKey(name: string): string {
  return ENV_NAME_PATTERN.test(name) && !findSecretPattern(name) ? name : "<key>";
}

export const PluginFileSchema = z
  .strictObject({
    $schema: z
      .string()
      .optional()
      .describe("Path or URL of a JSON Schema for editors; bot-bottle ignores it."),
    description: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\n\r]*$/, "must be one line")
      .describe("One line saying what the plugin runs, shown by `bot-bottle templates`."),
    base: z
      .enum(Object.keys(PLUGIN_BASES) as ["shell", "claude", "codex"])
      .default("shell")
      .describe(
        'The built-in template the plugin starts from: its image, routes, variables, files and API key, to which the plugin adds its own. "shell" (the default) is a plain Debian with git, curl, node and tmux.',
      ),
    dockerfile: pluginPath("Dockerfile")
      .optional()
      .describe(
        "Path of a Dockerfile in the plugin folder, layered on the base's image: it starts `ARG BASE_IMAGE` then `FROM ${BASE_IMAGE}`, and its folder is the build context. Rebuilt only when it or its folder changes.",
      ),
    interactive: argv(
      'The command line of the agent\'s interactive UI, run in its tmux session in the bottle, e.g. ["my-agent", "--yolo"].',
    ),
    headless: argv(
      'The command line of one headless task (`bot-bottle run`): the prompt is appended as its last argument, e.g. ["my-agent", "--print"].',
    ),
    env: z
      .record(
        z.string(),
        z
          .string()
          .max(4096)
          .superRefine(
            rule((v: string) =>
              hasControl(v)
                ? "must be one line of text without control characters"
                : credentialIn(v),
            ),
          ),
      )
      .superRefine((env, ctx) => {
        for (const name of Object.keys(env)) {
          const problem = checkPluginEnvName(name);
          if (problem) ctx.addIssue({ code: "custom", path: [shownKey(name)], message: problem });
        }
      })
      .default({})
      .describe(
        "Variables set in the agent, name → value. Never a credential (refused), and not the proxy, CA, HOME, USER or BOT_BOTTLE_ variables, which bot-bottle sets.",
      ),
    routes: z
      .array(RouteSchema)
      .default([])
      .describe(
        "Routes the plugin adds to every bottle it runs in, written like a manifest route (bottles.<name>.egress.routes). A bottle's own route for the same host and port replaces the plugin's.",
      ),
    api_key: z
      .strictObject({
        env: z
          .string()
          .superRefine(rule(checkEnvName))
          .describe(
            'The variable the agent\'s CLI reads its API key from, e.g. "MY_AGENT_API_KEY": the agent holds the placeholder of the token a route for `host` injects.',
          ),
        host: z
          .string()
          .superRefine(
            rule((h: string) =>
              h.includes("*")
                ? 'must be one host name without "*", e.g. "api.example.com"'
                : checkRouteHost(h, false),
            ),
          )
          .describe(
            "The host the key is for, e.g. \"api.example.com\"; the route for it (the plugin's or the bottle's) says which token is injected.",
          ),
      })
      .optional()
      .describe(
        "The API key the agent's CLI reads, as a placeholder: it replaces the base's. Leave out for none.",
      ),
    files: z
      .array(
        z
          .strictObject({
            path: homePath(".my-agent/config.toml").describe(
              "Where the file goes, relative to the agent's home (/home/node), e.g. \".my-agent/config.toml\"; not in the workspace. A base's file at the same path is replaced.",
            ),
            source: pluginPath("config.toml").describe(
              `Path of the file in the plugin folder whose text is copied, read when the plugin is loaded: UTF-8, at most ${MAX_FILE_BYTES / 1024} KiB (${MAX_FILES_TOTAL_BYTES / 1024 / 1024} MiB for all files), no credential.`,
            ),
            mode: z
              .string()
              .regex(
                /^0?[0-7]{3}$/,
                'must be permission bits in octal, in a string, e.g. "0644" or "0600"',
              )
              .default("0644")
              .describe('Its permission bits in octal, e.g. "0600"; "0644" by default.'),
          })
          .describe(
            "One file the agent's home holds before the agent starts, owned by the agent's user.",
          ),
      )
      .max(64)
      .superRefine((files, ctx) => {
        const seen = new Map<string, number>();
        files.forEach((f, i) => {
          const key = posix.normalize(f.path);
          const first = seen.get(key);
          if (first === undefined) seen.set(key, i);
          else
            ctx.addIssue({
              code: "custom",
              path: [i, "path"],
              message: `is the path of files[${first}] too — each file needs its own path`,
            });
        });
      })
      .default([])
      .describe("Files written in the agent's home before the agent starts: its configuration."),
    skills_dir: homePath(".my-agent/skills")
      .optional()
      .describe(
        "Where the agent's skills (agents.<name>.skills) go, relative to its home. Leave out for the base's.",
      ),
  })
  .superRefine(
    (plugin, ctx) => {
      // Variables the bottle gives placeholders are launch's to set.
      const raw = plugin as unknown as Record<string, unknown>;
      const env = raw["env"];
      if (typeof env !== "object" || env === null) return;
      const held = new Set<string>();
      const key = raw["api_key"] as { env?: unknown } | undefined;
      if (typeof key?.env === "string") held.add(key.env);
      if (Array.isArray(raw["routes"]))
        for (const r of raw["routes"] as { auth?: { token_env?: unknown } }[])
          if (typeof r?.auth?.token_env === "string") held.add(r.auth.token_env);
      for (const name of Object.keys(env))
        if (held.has(name))
          ctx.addIssue({
            code: "custom",
            path: ["env", shownKey(name)],
            message:
              "holds the placeholder of a token (api_key.env or a route's auth.token_env), which bot-bottle sets — remove it",
          });
    },
    { when: () => true },
  )
  .describe(
    'A user plugin (plugin.json): a provider of your own, used in a manifest as "template": "<folder name>".',
  );

export type PluginFile = z.output<typeof PluginFileSchema>;

function formatPluginProblems(file: string, problems: readonly Problem[]): string {
  const shown = problems.slice(0, MAX_SHOWN).map((p) => `  ${problemLine(file, p)}`);
  const more = problems.length - shown.length;
  if (more > 0) shown.push(`  …and ${more} more (fix these first)`);
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `${file} is not a valid bot-bottle plugin (${count}):\n${shown.join("\n")}`;
}

/** `file:line:col  path message`. */
export function problemLine(file: string, p: Problem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`;
  return `${where}  ${formatPath(p.path)} ${p.message}`;
}

export class PluginError extends BotBottleError {
  readonly file: string;
  readonly problems: readonly Problem[];

  constructor(file: string, problems: readonly Problem[]) {
    super("manifest_invalid", formatPluginProblems(file, problems), {
      exitCode: EXIT.manifest,
      hint: "docs/plugins.md describes every field of plugin.json",
    });
    this.name = "PluginError";
    this.file = file;
    this.problems = problems;
  }
}

/** Parses and validates plugin.json's text; throws PluginError with every problem found. */
export function parsePlugin(
  file: string,
  text: string,
): {
  plugin: PluginFile;
  locate: (path: Problem["path"]) => { line: number; column: number } | undefined;
} {
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0 || tree === undefined)
    throw new PluginError(
      file,
      errors.length
        ? errors.map((e) => ({
            path: [],
            message: `is not valid JSON: the text here ${PARSE_SENTENCES[printParseErrorCode(e.error)] ?? "cannot be read"}`,
            ...lineColumn(text, e.offset),
          }))
        : [{ path: [], message: 'is empty — write an object with "interactive" and "headless"' }],
    );
  if (tree.type !== "object")
    throw new PluginError(file, [
      { path: [], message: "must be a JSON object ({ … })", line: 1, column: 1 },
    ]);
  const problems: Problem[] = [];
  duplicateKeys(tree, [], problems, text);
  const data: unknown = getNodeValue(tree);
  const result = PluginFileSchema.safeParse(data);
  if (!result.success)
    for (const issue of result.error.issues)
      problems.push(...issueToProblems(PluginFileSchema, issue, data));
  const where = (path: Problem["path"]) => locate(tree, text, path);
  if (problems.length > 0 || !result.success) {
    for (const p of problems) if (p.line === undefined) Object.assign(p, where(p.at ?? p.path));
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw new PluginError(file, problems);
  }
  return { plugin: result.data, locate: where };
}

/** `target` itself, when it is a regular file whose real path stays inside `root`. */
async function fileInside(root: string, target: string): Promise<{ size: number } | string> {
  const s = await stat(target).catch(() => undefined);
  if (!s) return "does not exist — create it in the plugin folder, or remove this field";
  if (!s.isFile()) return "is not a regular file — name a file in the plugin folder";
  const real = await realpath(target);
  if (!real.startsWith(root + sep))
    return "leads out of the plugin folder (through a link) — copy the file into the folder";
  return { size: s.size };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads the files a valid plugin.json names; every problem found, located in plugin.json. */
async function readPluginFiles(
  folder: string,
  plugin: PluginFile,
): Promise<{ contents: string[]; problems: Problem[] }> {
  const root = await realpath(folder);
  const problems: Problem[] = [];
  if (plugin.dockerfile !== undefined) {
    const found = await fileInside(root, join(folder, plugin.dockerfile));
    if (typeof found === "string") problems.push({ path: ["dockerfile"], message: found });
  }
  const contents: string[] = [];
  let total = 0;
  for (const [i, f] of plugin.files.entries()) {
    const path = ["files", i, "source"];
    contents.push("");
    const found = await fileInside(root, join(folder, f.source));
    if (typeof found === "string") {
      problems.push({ path, message: found });
      continue;
    }
    if (found.size > MAX_FILE_BYTES) {
      problems.push({
        path,
        message: `is larger than ${MAX_FILE_BYTES / 1024} KiB — a plugin's files are configuration; put bigger things in its Dockerfile`,
      });
      continue;
    }
    total += found.size;
    if (total > MAX_FILES_TOTAL_BYTES) {
      problems.push({
        path,
        message: `brings the plugin's files over ${MAX_FILES_TOTAL_BYTES / 1024 / 1024} MiB in all — put bigger things in its Dockerfile`,
      });
      continue;
    }
    let text: string;
    try {
      text = utf8.decode(await readFile(join(folder, f.source)));
    } catch {
      problems.push({
        path,
        message: "is not UTF-8 text — a plugin's files are text; put other files in its Dockerfile",
      });
      continue;
    }
    const credential = credentialIn(text);
    if (credential) problems.push({ path, message: `is a file that ${credential}` });
    contents[i] = text;
  }
  return { contents, problems };
}

function routeKey(r: Route): string {
  const host = r.host.startsWith("*.")
    ? `*.${normaliseDnsName(r.host.slice(2)) ?? r.host}`
    : (normaliseDnsName(r.host) ?? r.host);
  return `${host}:${r.port ?? ""}`;
}

/**
 * The plugin `name` installed in `dir`, as a provider: its base's, with the plugin's image layer,
 * commands, variables, routes, API key and files. Throws PluginError for a broken plugin.json.
 */
export async function loadPlugin(dir: string, name: string): Promise<AgentProvider> {
  return (await readPlugin(dir, name)).provider;
}

/** The plugin `name` in `dir`: its file, as read, and its provider. */
export async function readPlugin(
  dir: string,
  name: string,
): Promise<{ plugin: PluginFile; provider: AgentProvider }> {
  if (!NAME_PATTERN.test(name))
    throw new UsageError(
      "the template is neither a built-in nor a valid plugin name",
      `a plugin's folder name ${NAME_RULE.replace(/^must be/, "is")}`,
    );
  if (Object.hasOwn(PLUGIN_BASES, name))
    throw new UsageError(
      `"${name}" is the name of a built-in template, which a manifest's "template": "${name}" always means`,
      "rename the plugin's folder",
    );
  const folder = join(dir, name);
  const file = join(folder, PLUGIN_FILE);
  const s = await stat(file).catch(() => undefined);
  if (!s)
    throw new UsageError(
      `no template named "${name}": it is not a built-in, and ${file} does not exist`,
      `use "claude", "codex" or "shell", or write ${file} (docs/plugins.md); \`bot-bottle templates\` lists the installed ones`,
    );
  if (!s.isFile() || s.size > MAX_PLUGIN_JSON_BYTES)
    throw new PluginError(file, [
      {
        path: [],
        message: !s.isFile()
          ? "is not a regular file"
          : `is larger than ${MAX_PLUGIN_JSON_BYTES / 1024} KiB — put big things in the plugin's files or Dockerfile`,
      },
    ]);
  const { plugin, locate: where } = parsePlugin(file, await readFile(file, "utf8"));
  const { contents, problems } = await readPluginFiles(folder, plugin);
  if (problems.length > 0) {
    for (const p of problems) Object.assign(p, where(p.path));
    throw new PluginError(file, problems);
  }
  return { plugin, provider: pluginProvider(name, folder, file, plugin, contents, where) };
}

function pluginProvider(
  name: string,
  folder: string,
  file: string,
  plugin: PluginFile,
  contents: readonly string[],
  where: (path: Problem["path"]) => { line: number; column: number } | undefined,
): AgentProvider {
  const base: AgentProvider = PLUGIN_BASES[plugin.base];
  const field = `plugins.${name}`;
  const apiKey = plugin.api_key
    ? {
        env: plugin.api_key.env,
        host: normaliseDnsName(plugin.api_key.host) ?? plugin.api_key.host,
      }
    : base.apiKey;
  const routes = () => {
    const own = plugin.routes.map((r) => structuredClone(r));
    const replaced = new Set(own.map(routeKey));
    return [...base.routes().filter((r) => !replaced.has(routeKey(r))), ...own];
  };
  const files = (s: Parameters<AgentProvider["files"]>[0]): AgentFile[] => {
    const own = plugin.files.map((f, i): AgentFile => {
      const path = posix.join(s.home, posix.normalize(f.path));
      if (path === s.workspace || path.startsWith(`${s.workspace}/`))
        throw new PluginError(file, [
          {
            path: ["files", i, "path"],
            message:
              "lies in the agent's workspace, the operator's project — choose a path elsewhere in the agent's home",
            ...where(["files", i, "path"]),
          },
        ]);
      return {
        path,
        content: contents[i] ?? "",
        mode: parseInt(f.mode, 8),
        what: `the "${name}" plugin's ${f.path}`,
      };
    });
    const paths = new Set(own.map((f) => f.path));
    return [...base.files(s).filter((f) => !paths.has(f.path)), ...own];
  };
  return {
    name,
    summary: plugin.description,
    image: base.image,
    skillsDir: plugin.skills_dir ?? base.skillsDir,
    ...(apiKey ? { apiKey } : {}),
    routes,
    env: (s) => ({ ...base.env(s), ...plugin.env }),
    interactive: () => [...plugin.interactive],
    headless: () => [...plugin.headless],
    files,
    layers: plugin.dockerfile
      ? [{ what: `${field}.dockerfile`, dockerfile: join(folder, plugin.dockerfile) }]
      : [],
    trusted: [
      { what: field, path: folder },
      { what: `${field} (${PLUGIN_FILE})`, path: file },
      ...(plugin.dockerfile
        ? [{ what: `${field}.dockerfile`, path: join(folder, plugin.dockerfile) }]
        : []),
      ...plugin.files.map((f, i) => ({
        what: `${field}.files[${i}].source`,
        path: join(folder, f.source),
      })),
    ],
  };
}
