/**
 * `approve --persist`: what an approval added to a running bottle is also written into the
 * manifest the bottle started from, appended to one of its bottle's lists (`egress.routes`,
 * `git`), keeping the file's comments and layout.
 */
import { readFile } from "node:fs/promises";
import { applyEdits, modify, parse } from "jsonc-parser";
import { readMetadata } from "../state/bottle-state.js";
import { writeFileAtomic } from "../state/files.js";
import { NoSuchBottleError } from "./bottles.js";

/** Appends `value` to `bottles.<the bottle>.<...list>` (made when absent). */
export async function appendToBottle(
  stateDir: string,
  slug: string,
  list: readonly string[],
  value: unknown,
): Promise<void> {
  const meta = await readMetadata(stateDir);
  if (!meta) throw new NoSuchBottleError(slug, `its state dir ${stateDir} has no metadata.json`);
  const file = meta.manifest.file;
  const text = await readFile(file, "utf8");
  let items: unknown = (parse(text) as { bottles?: Record<string, unknown> }).bottles?.[
    meta.bottle
  ];
  for (const key of list)
    items =
      items && typeof items === "object" ? (items as Record<string, unknown>)[key] : undefined;
  const at = Array.isArray(items) ? items.length : undefined;
  const path = ["bottles", meta.bottle, ...list, ...(at !== undefined ? [at] : [])];
  const edits = modify(text, path, at !== undefined ? value : [value], {
    formattingOptions: { insertSpaces: true, tabSize: 2 },
    ...(at !== undefined ? { isArrayInsertion: true } : {}),
  });
  await writeFileAtomic(file, applyEdits(text, edits));
}
