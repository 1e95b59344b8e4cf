import type { ManifestIndex } from "../manifest/index.js";
import { loadManifest, manifestPath } from "../manifest/load.js";
import { templateCatalog } from "../providers/templates.js";
import type { CliContext } from "./context.js";

export interface GlobalOptions {
  manifest?: string;
  debug?: boolean;
}

export async function loadFromOptions(
  options: GlobalOptions,
  ctx: CliContext,
): Promise<ManifestIndex> {
  const file = manifestPath(options.manifest, ctx.env, ctx.cwd);
  return loadManifest(file, await templateCatalog(ctx.env));
}
