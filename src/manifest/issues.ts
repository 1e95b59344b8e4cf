/**
 * Turns zod's issues into Problems: bot-bottle's own sentences, with the field's description as
 * the "what to write instead" where zod's default sentence would say only what went wrong.
 * Zod is never asked to report input values, and no sentence here includes one.
 */
import type { z } from "zod";
import type { JsonPath, Problem } from "./problems.js";
import { closest, NAME_RULE } from "./rules.js";

type Issue = z.core.$ZodIssue;
type AnySchema = z.core.$ZodType;

interface Def {
  type: string;
  shape?: Record<string, AnySchema>;
  valueType?: AnySchema;
  element?: AnySchema;
  innerType?: AnySchema;
  in?: AnySchema;
  options?: AnySchema[];
}

function defOf(schema: AnySchema): Def {
  return schema._zod.def;
}

function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (
      def.innerType &&
      ["optional", "default", "nullable", "prefault", "readonly"].includes(def.type)
    )
      current = def.innerType;
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
}

/**
 * The object form of a union that `value` takes: the option whose "provider" literal it names,
 * else the one option that is an object (as `true` or `{ … }` for supervise).
 */
function objectOption(options: AnySchema[], value: unknown): Def | undefined {
  const provider = (value as Record<string, unknown> | undefined)?.["provider"];
  const match = options.find((o) => {
    const shape = defOf(unwrap(o)).shape;
    const literal = shape?.["provider"] ? defOf(unwrap(shape["provider"])) : undefined;
    return (literal as unknown as { values?: unknown[] })?.values?.includes(provider);
  });
  if (match) return defOf(unwrap(match));
  const objects = options.map((o) => defOf(unwrap(o))).filter((d) => d.type === "object");
  return objects.length === 1 ? objects[0] : undefined;
}

/** The schema that describes the value at `path`, when the path leads through known shapes. */
export function schemaAt(root: AnySchema, path: JsonPath, data: unknown): AnySchema | undefined {
  let schema: AnySchema | undefined = root;
  let value = data;
  for (const part of path) {
    if (schema === undefined) return undefined;
    const def = defOf(unwrap(schema));
    if (def.type === "object" && def.shape && typeof part === "string") schema = def.shape[part];
    else if (def.type === "record" && def.valueType) schema = def.valueType;
    else if (def.type === "array" && def.element) schema = def.element;
    else if (def.type === "union" && def.options) {
      const chosen = objectOption(def.options, value);
      schema = chosen?.shape && typeof part === "string" ? chosen.shape[part] : undefined;
    } else return undefined;
    value = (value as Record<string | number, unknown> | undefined)?.[part];
  }
  return schema;
}

function descriptionAt(root: AnySchema, path: JsonPath, data: unknown): string | undefined {
  const schema = schemaAt(root, path, data);
  if (!schema) return undefined;
  const direct = (schema as unknown as { description?: string }).description;
  return direct ?? (unwrap(schema) as unknown as { description?: string }).description;
}

function valueAt(data: unknown, path: JsonPath): unknown {
  let value = data;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[part];
  }
  return value;
}

function allowedKeys(root: AnySchema, path: JsonPath, data: unknown): string[] {
  const schema = schemaAt(root, path, data);
  if (!schema) return [];
  let def: Def | undefined = defOf(unwrap(schema));
  if (def.type === "union" && def.options) def = objectOption(def.options, valueAt(data, path));
  if (def?.type === "object" && def.shape) return Object.keys(def.shape);
  return [];
}

const TYPE_WORDS: Record<string, string> = {
  string: "a string (in double quotes)",
  boolean: "true or false",
  number: "a number",
  array: "a list ([ … ])",
  object: "an object ({ … })",
  record: "an object ({ … })",
};

function isDefaultMessage(message: string): boolean {
  return /^(Invalid|Too (small|big)|Unrecognized key)/.test(message);
}

function withDescription(sentence: string, description: string | undefined): string {
  return description ? `${sentence} — ${description}` : sentence;
}

/** Converts one zod issue into one or more Problems. */
export function issueToProblems(root: AnySchema, issue: Issue, data: unknown): Problem[] {
  const path = issue.path as JsonPath;
  const describe = (p: JsonPath = path) => descriptionAt(root, p, data);
  switch (issue.code) {
    case "invalid_type": {
      const missing = valueAt(data, path) === undefined;
      if (missing) return [{ path, message: withDescription("is missing", describe()) }];
      const expected = TYPE_WORDS[issue.expected] ?? issue.expected;
      return [{ path, message: withDescription(`must be ${expected}`, describe()) }];
    }
    case "unrecognized_keys": {
      const allowed = allowedKeys(root, path, data).filter(
        (k) => k !== "$schema" || path.length === 0,
      );
      return issue.keys.map((key) => {
        const guess = closest(key, allowed);
        const hint = guess ? `did you mean "${guess}"? ` : "";
        return {
          path: [...path, key],
          message: `is not a field here — ${hint}remove it or use one of: ${allowed.join(", ")}`,
        };
      });
    }
    case "invalid_key": {
      const inner = issue.issues.find((i) => !isDefaultMessage(i.message));
      const parent = path.slice(0, -1);
      const isName = parent.length === 1 && (parent[0] === "agents" || parent[0] === "bottles");
      const message = inner?.message ?? (isName ? NAME_RULE : "is not a valid name here");
      // The key itself may be the mistake (a pasted token): point at its place, never print it.
      return [
        { path: [...parent, "<key>"], at: path, message: `is not a valid key: it ${message}` },
      ];
    }
    case "invalid_value":
      return [
        {
          path,
          message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`,
        },
      ];
    case "invalid_union": {
      const discriminator = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (discriminator && options)
        return [
          {
            path,
            message: `must be one of ${options.map((v) => JSON.stringify(v)).join(", ")}`,
          },
        ];
      // A value of one option's type (an object where `true` or `{ … }` is accepted) is
      // reported as that option reports it, field by field.
      const errors = (issue as { errors?: Issue[][] }).errors ?? [];
      const typed = errors.filter(
        (e) => !e.some((i) => i.code === "invalid_type" && i.path.length === 0),
      );
      if (typed.length === 1 && typed[0]?.length)
        return typed[0].flatMap((inner) =>
          issueToProblems(root, { ...inner, path: [...path, ...inner.path] }, data),
        );
      if (!isDefaultMessage(issue.message))
        return [{ path, message: withDescription(issue.message, describe()) }];
      return [{ path, message: withDescription("does not match any accepted form", describe()) }];
    }
    case "too_small":
      if (issue.origin === "array")
        return [{ path, message: "must not be an empty list — leave the field out instead" }];
      if (issue.origin === "string")
        return [{ path, message: withDescription("must not be empty", describe()) }];
      return [{ path, message: withDescription("is too small", describe()) }];
    case "too_big":
      return [{ path, message: withDescription("is too long", describe()) }];
    case "invalid_format":
    case "custom":
    case "not_multiple_of":
    case "invalid_element":
      if (!isDefaultMessage(issue.message)) return [{ path, message: issue.message }];
      return [{ path, message: withDescription("has the wrong form", describe()) }];
  }
}
