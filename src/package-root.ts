import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The nearest folder above `from` whose package.json is bot-bottle's: the same answer whether
 * this module runs from src/ (tsx), from tsc's dist/, or bundled into dist/bot-bottle.js or one
 * of its chunks in dist/chunks/.
 */
export function packageRootOf(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown };
      if (pkg.name === "bot-bottle") return dir;
    } catch {
      // No package.json here (or not one to read): look further up.
    }
    if (dirname(dir) === dir)
      throw new Error(`no bot-bottle package.json above ${from}: the installation is incomplete`);
  }
}

/** The installed package's root folder (holds examples/, images/, schema/). */
export const PACKAGE_ROOT = packageRootOf(fileURLToPath(import.meta.url));
