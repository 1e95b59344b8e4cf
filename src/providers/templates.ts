/**
 * Which `template` names an agent may use: the built-in providers, and the user plugins installed
 * on this machine. A plugin is a directory `<plugins dir>/<name>/` holding a `plugin.json`
 * (plugins.ts); the plugins dir is ~/.bot-bottle/contrib, or $BOT_BOTTLE_PLUGINS_DIR.
 */
import { readdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { BotBottleError } from "../errors.js";
import { templateImage } from "../backends/images.js";
import type { TemplateCatalog } from "../manifest/load.js";
import { claude } from "./claude.js";
import { codex } from "./codex.js";
import { loadPlugin, PLUGIN_FILE, PluginError, problemLine, readPlugin } from "./plugins.js";
import type { AgentProvider } from "./provider.js";
import { shell } from "./shell.js";

export const BUILTIN_PROVIDERS: readonly AgentProvider[] = [claude, codex, shell];
export const BUILTIN_TEMPLATES: readonly string[] = BUILTIN_PROVIDERS.map((p) => p.name);

/** The built-in provider of that name, if there is one. */
export function builtinProvider(name: string): AgentProvider | undefined {
  return BUILTIN_PROVIDERS.find((p) => p.name === name);
}

/** $BOT_BOTTLE_PLUGINS_DIR, else ~/.bot-bottle/contrib (HOME from `env`). */
export function pluginsDir(env: NodeJS.ProcessEnv): string {
  if (env["BOT_BOTTLE_PLUGINS_DIR"]) return env["BOT_BOTTLE_PLUGINS_DIR"];
  return join(env["HOME"] || homedir(), ".bot-bottle", "contrib");
}

/** Names of the plugins installed in `dir`; none when the directory does not exist. */
export async function installedPlugins(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const names: string[] = [];
  for (const name of entries.sort()) {
    try {
      if ((await stat(join(dir, name, PLUGIN_FILE))).isFile()) names.push(name);
    } catch {
      /* not a plugin */
    }
  }
  return names;
}

export async function templateCatalog(env: NodeJS.ProcessEnv): Promise<TemplateCatalog> {
  const dir = pluginsDir(env);
  return { builtins: BUILTIN_TEMPLATES, plugins: await installedPlugins(dir), pluginsDir: dir };
}

/**
 * The provider behind a template name: a built-in, or the user plugin of that name installed in
 * the plugins folder (read and checked now: a broken plugin.json is a PluginError).
 */
export async function loadProvider(
  template: string,
  env: NodeJS.ProcessEnv,
): Promise<AgentProvider> {
  return builtinProvider(template) ?? (await loadPlugin(pluginsDir(env), template));
}

export interface BuiltinListing {
  name: string;
  summary: string;
  /** The agent CLI its image pins (`name@version`); none for "shell". */
  pinned?: string;
}

export interface PluginListing {
  name: string;
  valid: boolean;
  description?: string;
  base?: string;
  /** What is wrong with a broken plugin: its first problem. */
  problem?: string;
}

export interface TemplateListing {
  builtins: BuiltinListing[];
  pluginsDir: string;
  plugins: PluginListing[];
}

/** A plugin as `bot-bottle templates` shows it; a broken one says why, and never throws. */
async function listPlugin(dir: string, name: string): Promise<PluginListing> {
  try {
    const { plugin } = await readPlugin(dir, name);
    return { name, valid: true, description: plugin.description, base: plugin.base };
  } catch (err) {
    const problem =
      err instanceof PluginError && err.problems[0]
        ? problemLine(PLUGIN_FILE, err.problems[0]) +
          (err.problems.length > 1 ? ` (and ${err.problems.length - 1} more)` : "")
        : err instanceof BotBottleError
          ? err.message
          : `cannot be read (${err instanceof Error ? err.message : String(err)})`;
    return { name, valid: false, problem };
  }
}

/** The built-in templates and the plugins installed for `env`, broken ones included. */
export async function templateListing(env: NodeJS.ProcessEnv): Promise<TemplateListing> {
  const dir = pluginsDir(env);
  const builtins = BUILTIN_PROVIDERS.map((p): BuiltinListing => {
    const pkg = templateImage(p.image)?.agentPackage;
    return {
      name: p.name,
      summary: p.summary,
      ...(pkg ? { pinned: `${pkg.name}@${pkg.version}` } : {}),
    };
  });
  const plugins = await Promise.all(
    (await installedPlugins(dir)).map((name) => listPlugin(dir, name)),
  );
  return { builtins, pluginsDir: dir, plugins };
}
