import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The installed package's root folder (holds examples/, images/, schema/). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
