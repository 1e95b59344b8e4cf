/**
 * docs/manifest.md, derived from the JSON Schema (itself derived from the zod schema): one section
 * per object in the manifest, one row per field.
 */
type JsonSchema = {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  pattern?: string;
};

interface Section {
  path: string;
  schema: JsonSchema;
}

function typeName(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" | ");
  const options = s.oneOf ?? s.anyOf;
  // Plain alternatives (`true` or an object) by their types; tagged forms each get a section.
  if (options?.every((o) => !Object.values(o.properties ?? {}).some((p) => p.const !== undefined)))
    return options.map(typeName).join(" or ");
  if (options) return "one of the forms below";
  if (s.type === "array" && s.items) return `list of ${typeName(s.items)}`;
  if (s.type === "object" && !s.properties && typeof s.additionalProperties === "object")
    return `map of name → ${typeName(s.additionalProperties)}`;
  return s.type ?? "any";
}

function escape(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function collect(path: string, schema: JsonSchema, out: Section[]): void {
  if (schema.type === "object" && schema.properties) {
    out.push({ path, schema });
    for (const [key, child] of Object.entries(schema.properties))
      collect(`${path}.${key}`, child, out);
  } else if (schema.type === "object" && typeof schema.additionalProperties === "object") {
    collect(`${path}.<name>`, schema.additionalProperties, out);
  } else if (schema.type === "array" && schema.items) {
    collect(`${path}[]`, schema.items, out);
  } else if (schema.oneOf ?? schema.anyOf) {
    for (const option of schema.oneOf ?? schema.anyOf ?? []) {
      const tag = Object.entries(option.properties ?? {}).find(([, p]) => p.const !== undefined);
      collect(tag ? `${path} (${tag[0]}: ${JSON.stringify(tag[1].const)})` : path, option, out);
    }
  }
}

export function manifestReference(schema: Record<string, unknown>): string {
  const sections: Section[] = [];
  collect("(top level)", schema, sections);
  const lines = [
    "# Manifest reference",
    "",
    "<!-- Generated from src/manifest/schema.ts by `npm run gen`. Do not edit by hand. -->",
    "",
    "A manifest (`bot-bottle.json`) is JSON; `//` and `/* */` comments and trailing commas are",
    "allowed. Unknown fields are errors. `bot-bottle schema` prints the JSON Schema for editors;",
    "`bot-bottle validate` checks a file. Paths are relative to the manifest's folder; `~` is your",
    "home. Names of agents and bottles are 1–40 lower-case letters, digits or `-`.",
    "",
  ];
  for (const { path, schema: s } of sections) {
    const title =
      path === "(top level)" ? "Top level" : `\`${path.replace(/^\(top level\)\./, "")}\``;
    lines.push(`## ${title}`, "");
    if (s.description) lines.push(escape(s.description), "");
    lines.push("| field | type | required | description |", "| --- | --- | --- | --- |");
    for (const [key, child] of Object.entries(s.properties ?? {})) {
      const required = s.required?.includes(key)
        ? "yes"
        : child.default !== undefined
          ? `no (default \`${JSON.stringify(child.default)}\`)`
          : "no";
      lines.push(
        `| \`${key}\` | ${escape(typeName(child))} | ${escape(required)} | ${escape(child.description ?? "")} |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}
