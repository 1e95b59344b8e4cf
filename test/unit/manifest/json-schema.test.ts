import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { manifestJsonSchema } from "../../../src/manifest/json-schema.js";
import { manifestReference } from "../../../src/manifest/reference.js";
import { PACKAGE_ROOT } from "../../../src/package-root.js";
import { example, gitEntry } from "../../helpers/manifest.js";

function validator() {
  return new Ajv2020({ allErrors: true, strict: false }).compile(manifestJsonSchema());
}

describe("the JSON Schema derived from the manifest schema", () => {
  test("accepts the example manifest under a standard JSON Schema validator", () => {
    const validate = validator();
    assert.equal(validate(example()), true, JSON.stringify(validate.errors));
  });

  test("rejects what the manifest loader rejects by shape: unknown keys, wrong types, bad enums", () => {
    const validate = validator();
    const unknown = example();
    unknown.bottles.dev.egres = {};
    assert.equal(validate(unknown), false);
    const wrongType = example();
    wrongType.bottles.dev.supervise = "yes";
    assert.equal(validate(wrongType), false);
    const badMethod = example();
    badMethod.bottles.dev.egress.routes[1].methods = ["get"];
    assert.equal(validate(badMethod), false);
    const badName = example();
    badName.bottles.dev.git = [gitEntry("bad name")];
    assert.equal(validate(badName), false);
  });

  test("describes every field", () => {
    const undescribed: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== "object") return;
      const s = node as Record<string, unknown>;
      for (const [key, child] of Object.entries(
        (s["properties"] as Record<string, unknown>) ?? {},
      )) {
        const c = child as Record<string, unknown>;
        if (typeof c["description"] !== "string") undescribed.push(`${path}.${key}`);
        walk(child, `${path}.${key}`);
      }
      for (const k of ["additionalProperties", "items"])
        walk(s[k], `${path}${k === "items" ? "[]" : ".<name>"}`);
      for (const option of (s["oneOf"] as unknown[]) ?? []) walk(option, path);
    };
    walk(manifestJsonSchema(), "");
    assert.deepEqual(undescribed, []);
  });

  test("the committed schema file and manifest reference are up to date (npm run gen)", () => {
    const schema = manifestJsonSchema();
    const committed = readFileSync(join(PACKAGE_ROOT, "schema", "bot-bottle.schema.json"), "utf8");
    assert.equal(committed, JSON.stringify(schema, null, 2) + "\n");
    const docs = readFileSync(join(PACKAGE_ROOT, "docs", "manifest.md"), "utf8");
    assert.equal(docs, manifestReference(schema));
  });
});
