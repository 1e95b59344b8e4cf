/**
 * Build contexts: the files `docker build` is given, gathered as a map (path in the context ->
 * where its bytes come from), hashed for a recipe label, and copied into a temporary folder that
 * holds exactly them. Gathering and hashing read files only; nothing runs.
 */
import { createHash } from "node:crypto";
import {
  chmod,
  copyFile,
  stat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A file of a context: copied from a host file, written from text, or a symbolic link. */
export type ContextEntry = { file: string } | { content: string } | { link: string };

/** Context path (relative, "/"-separated) -> where it comes from. */
export type BuildContext = Map<string, ContextEntry>;

/** Which names a walk takes: files by name, folders by name (false skips the whole folder). */
export interface WalkFilter {
  file?: (name: string) => boolean;
  dir?: (name: string) => boolean;
}

/** Adds every file under `dir` to `context`, under `prefix`. Links are kept as links. */
export async function addFolder(
  context: BuildContext,
  dir: string,
  prefix: string,
  filter: WalkFilter = {},
): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const source = join(dir, e.name);
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) {
      if (filter.dir?.(e.name) !== false) await addFolder(context, source, path, filter);
    } else if (filter.file?.(e.name) !== false) {
      context.set(path, e.isSymbolicLink() ? { link: await readlink(source) } : { file: source });
    }
  }
}

/**
 * A digest of the context: each path with its kind, its bytes (or link target) and whether it
 * is executable, in path order. Equal contexts hash equal wherever their files live.
 */
export async function hashContext(context: BuildContext): Promise<string> {
  const hash = createHash("sha256");
  for (const path of [...context.keys()].sort()) {
    const entry = context.get(path) as ContextEntry;
    hash.update(path).update("\0");
    if ("link" in entry) hash.update("l\0").update(entry.link);
    else if ("content" in entry) hash.update("t\0").update(entry.content);
    else {
      const executable = ((await stat(entry.file)).mode & 0o111) !== 0;
      hash.update(executable ? "x\0" : "f\0").update(await readFile(entry.file));
    }
    hash.update("\0");
  }
  return hash.digest("hex");
}

/** A temporary folder holding exactly the context's files; the caller removes it. */
export async function assembleContext(context: BuildContext): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "bot-bottle-build-"));
  for (const [path, entry] of context) {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true });
    if ("link" in entry) await symlink(entry.link, target);
    else if ("content" in entry) await writeFile(target, entry.content);
    else {
      await copyFile(entry.file, target);
      await chmod(target, (await stat(entry.file)).mode & 0o7777);
    }
  }
  return root;
}
