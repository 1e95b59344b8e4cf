/** The JSON Schema editors use for completion, derived from the zod schema (never hand-written). */
import { z } from "zod";
import { ManifestSchema } from "./schema.js";

export const SCHEMA_ID = "https://bot-bottle.dev/schema/manifest.schema.json";

export function manifestJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ManifestSchema, { io: "input", target: "draft-2020-12" });
  return { ...schema, $id: SCHEMA_ID, title: "bot-bottle manifest" };
}
