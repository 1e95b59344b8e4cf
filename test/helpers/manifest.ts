import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "jsonc-parser";
import { ManifestError } from "../../src/manifest/problems.js";
import { parseManifest } from "../../src/manifest/load.js";
import type { ManifestIndex } from "../../src/manifest/index.js";
import type { TemplateCatalog } from "../../src/manifest/load.js";
import { BUILTIN_TEMPLATES } from "../../src/providers/templates.js";
import { PACKAGE_ROOT } from "../../src/package-root.js";

export const EXAMPLE_FILE = join(PACKAGE_ROOT, "examples", "bot-bottle.json");
export const EXAMPLE_TEXT = readFileSync(EXAMPLE_FILE, "utf8");

/** The example manifest as a plain object, comments stripped, to mutate per test. */
export function example(): Record<string, any> {
  return parse(EXAMPLE_TEXT) as Record<string, any>;
}

export const NO_PLUGINS: TemplateCatalog = {
  builtins: BUILTIN_TEMPLATES,
  plugins: [],
  pluginsDir: "/nonexistent/plugins",
};

export function load(
  data: unknown,
  templates: TemplateCatalog = NO_PLUGINS,
  file = "/work/bot-bottle.json",
): ManifestIndex {
  return parseManifest(
    file,
    typeof data === "string" ? data : JSON.stringify(data, null, 2),
    templates,
  );
}

/** Loads expecting failure; returns the ManifestError. */
export function problemsOf(data: unknown, templates: TemplateCatalog = NO_PLUGINS): ManifestError {
  try {
    load(data, templates);
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error("expected the manifest to be refused, but it loaded");
}

/** A valid ed25519 host key line (github.com's published key). */
export const HOST_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

export function gitEntry(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    upstream: `git@git.example.com:team/${name}.git`,
    known_host_key: HOST_KEY,
    key: { provider: "static", path: "keys/deploy" },
    ...extra,
  };
}
