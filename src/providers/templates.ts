/**
 * Which `template` names an agent may use: the built-in providers, and the user plugins installed
 * on this machine. A plugin is a directory `<plugins dir>/<name>/` holding a `plugin.json`.
 */
import { readdir, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import type { TemplateCatalog } from "../manifest/load.js";
import { claude } from "./claude.js";
import { codex } from "./codex.js";
import type { AgentProvider } from "./provider.js";
import { shell } from "./shell.js";

export const BUILTIN_PROVIDERS: readonly AgentProvider[] = [claude, codex, shell];
export const BUILTIN_TEMPLATES: readonly string[] = BUILTIN_PROVIDERS.map((p) => p.name);

/** The built-in provider of that name, if there is one. */
export function builtinProvider(name: string): AgentProvider | undefined {
  return BUILTIN_PROVIDERS.find((p) => p.name === name);
}

export function pluginsDir(env: NodeJS.ProcessEnv): string {
  if (env["BOT_BOTTLE_PLUGINS_DIR"]) return env["BOT_BOTTLE_PLUGINS_DIR"];
  const config = env["XDG_CONFIG_HOME"] || join(homedir(), ".config");
  return join(config, "bot-bottle", "plugins");
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
      if ((await stat(join(dir, name, "plugin.json"))).isFile()) names.push(name);
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
 * the plugins folder.
 */
export function loadProvider(template: string, env: NodeJS.ProcessEnv): Promise<AgentProvider> {
  const builtin = builtinProvider(template);
  if (builtin) return Promise.resolve(builtin);
  void env;
  return Promise.reject(
    new UsageError(
      `the "${template}" template is a user plugin, and this version of bot-bottle cannot start plugins yet`,
      'use "template": "claude", "codex" or "shell"',
    ),
  );
}
