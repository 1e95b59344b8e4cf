// Writes the files derived from the manifest schema: schema/bot-bottle.schema.json and
// docs/manifest.md. test/unit/manifest/generated.test.ts fails when they are out of date.
import { writeFileSync } from "node:fs";
import { manifestJsonSchema } from "../src/manifest/json-schema.js";
import { manifestReference } from "../src/manifest/reference.js";

const schema = manifestJsonSchema();
writeFileSync("schema/bot-bottle.schema.json", JSON.stringify(schema, null, 2) + "\n");
writeFileSync("docs/manifest.md", manifestReference(schema));
console.log("wrote schema/bot-bottle.schema.json and docs/manifest.md");
