/**
 * docs/configuration-reference.md, generated from the zod schemas of the API's configuration
 * (api/config/schema.ts) and the relay's (edge-relay/config.ts). It walks the JSON Schema that zod derives from
 * them (the same document `npm run schema` publishes), so a key added to a schema appears here with its type,
 * default, limits and `.describe()` text without anyone listing it. Rules that span keys (references between
 * sections, "exactly one of url and file") live in refinements that JSON Schema cannot show: docs/configuration.md
 * explains them.
 */
import { z } from "zod";
import { configSchema } from "../../api/config/schema.ts";
import { nameSchema } from "../../contract/listener-policy.ts";
import { relayConfigSchema } from "../../edge-relay/config.ts";

/** The subset of JSON Schema that zod's toJSONSchema emits for these schemas. */
export interface JsonSchema {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
}

export interface Row {
  key: string;
  type: string;
  default: string;
  meaning: string;
}

export interface Section {
  title: string;
  rows: Row[];
}

/** The JSON Schema of a zod schema as a config file's author writes it (defaults are optional keys). */
export function inputJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
}

const NAME_PATTERN = inputJsonSchema(nameSchema).pattern;

const code = (text: string): string => `\`${text}\``;

function isRecord(schema: JsonSchema): boolean {
  return schema.type === "object" && schema.properties === undefined && typeof schema.additionalProperties === "object";
}

function alternatives(schema: JsonSchema): JsonSchema[] | undefined {
  return schema.oneOf ?? schema.anyOf;
}

/** An object small enough to write on one line: `{ env: string }`, `{ file: string }`. */
function isInline(schema: JsonSchema): boolean {
  const properties = Object.values(schema.properties ?? {});
  return (
    schema.type === "object" &&
    properties.length > 0 &&
    properties.length <= 2 &&
    properties.every(
      (property) =>
        property.default === undefined && property.description === undefined && property.properties === undefined,
    )
  );
}

function range(min: number | undefined, max: number | undefined, unit = ""): string {
  if (min === undefined && max === undefined) return "";
  if (max === undefined) return ` ≥ ${min}${unit}`;
  if (min === undefined) return ` ≤ ${max}${unit}`;
  return ` ${min}–${max}${unit}`;
}

/** What a value of this schema looks like, in a few words. */
export function typeText(schema: JsonSchema): string {
  const choices = alternatives(schema);
  if (choices?.every((choice) => choice.type === "string" && choice.format !== undefined))
    return `string (${choices.map((choice) => choice.format).join(", ")})`;
  if (choices) return choices.map(typeText).join(" or ");
  if (schema.const !== undefined) return code(JSON.stringify(schema.const));
  if (schema.enum) return schema.enum.map((value) => code(String(value))).join(", ");
  switch (schema.type) {
    case "boolean":
      return "boolean";
    case "integer":
    case "number":
      return `${schema.type}${range(schema.minimum, schema.maximum)}`;
    case "string": {
      if (schema.pattern !== undefined && schema.pattern === NAME_PATTERN) return "name";
      const shape = schema.format ?? patternText(schema.pattern);
      const length = range(schema.minLength, schema.maxLength, " chars");
      return `string${shape ? ` (${shape})` : ""}${length && length !== " ≥ 1 chars" ? `,${length}` : ""}`;
    }
    case "array": {
      const count = range(schema.minItems, schema.maxItems);
      return `list${count ? ` (${count.trim()} entries)` : ""} of ${schema.items ? typeText(schema.items) : "values"}`;
    }
    case "object":
      if (isRecord(schema)) return `map of name to ${typeText(schema.additionalProperties as JsonSchema)}`;
      if (isInline(schema))
        return code(
          `{ ${Object.entries(schema.properties ?? {})
            .map(([key, value]) => `${key}: ${plainType(value)}`)
            .join(", ")} }`,
        );
      return "object";
    default:
      return schema.description !== undefined ? "any" : "any value";
  }
}

/** Short patterns are shown; a long one (a domain name's) would drown the table: it is in the JSON Schema. */
function patternText(pattern: string | undefined): string {
  if (pattern === undefined) return "";
  return pattern.length <= 40 ? `matching ${code(pattern)}` : "a pattern: see the JSON Schema";
}

/** A type inside inline code, where no markdown may appear. */
function plainType(schema: JsonSchema): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(" | ");
  return schema.type ?? "any";
}

function defaultText(schema: JsonSchema, required: boolean): string {
  if (required) return "required";
  if (schema.default === undefined) return "optional";
  if (typeof schema.default === "object" && schema.default !== null && !Array.isArray(schema.default))
    return Object.keys(schema.default).length === 0 || schema.properties ? "optional" : code(compact(schema.default));
  return code(typeof schema.default === "string" ? schema.default : compact(schema.default));
}

function compact(value: unknown): string {
  return JSON.stringify(value).replace(/,/g, ", ");
}

/** Table-cell text: one line, no column breaks. */
export function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").replace(/\|/g, "\\|");
}

/** The rows of one object, nested objects flattened to dotted keys and list items to `key[]`. */
export function objectRows(schema: JsonSchema, prefix = ""): Row[] {
  const rows: Row[] = [];
  const required = new Set(schema.required ?? []);
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${key}`;
    const nested = property.type === "object" && property.properties !== undefined && !isInline(property);
    const items = property.items;
    const nestedItems = items?.type === "object" && items.properties !== undefined && !isInline(items);
    rows.push({
      key: path,
      type: nested ? "object" : nestedItems ? "list of objects (below)" : typeText(property),
      default: defaultText(property, required.has(key)),
      meaning: cell(property.description ?? ""),
    });
    if (nested) rows.push(...objectRows(property, `${path}.`));
    if (nestedItems && items) rows.push(...objectRows(items, `${path}[].`));
  }
  return rows;
}

/**
 * One section per top-level key. A map of named objects (`directories.<name>`) documents the named object; a
 * union of object shapes told apart by a constant (`authProfiles` by `type`) gets a section per shape; plain
 * values share one "top level" section.
 */
export function sections(root: JsonSchema, file: string, suffix = ""): Section[] {
  const result: Section[] = [];
  const topLevel: Row[] = [];
  const required = new Set(root.required ?? []);
  for (const [key, property] of Object.entries(root.properties ?? {})) {
    const value = isRecord(property) ? (property.additionalProperties as JsonSchema) : property;
    const base = code(isRecord(property) ? `${key}.<name>` : key);
    const shapes = alternatives(value);
    if (shapes && shapes.every((shape) => shape.type === "object" && shape.properties)) {
      for (const shape of shapes) {
        const [tag, tagSchema] =
          Object.entries(shape.properties ?? {}).find(([, schema]) => schema.const !== undefined) ?? [];
        const title = tag ? `${base} with ${code(`${tag}: ${String(tagSchema?.const)}`)}${suffix}` : base + suffix;
        result.push({ title, rows: objectRows(shape) });
      }
    } else if (value.type === "object" && value.properties) {
      result.push({ title: base + suffix, rows: objectRows(value) });
    } else {
      topLevel.push({
        key,
        type: typeText(property),
        default: defaultText(property, required.has(key)),
        meaning: cell(property.description ?? ""),
      });
    }
  }
  if (topLevel.length > 0) result.unshift({ title: `Top level of ${file}`, rows: topLevel });
  return result;
}

function renderSections(list: Section[], level: string): string[] {
  return list.flatMap((section) => [
    `${level} ${section.title}`,
    "",
    "| Key | Type | Default | Meaning |",
    "|---|---|---|---|",
    ...section.rows.map((row) => `| ${code(row.key)} | ${cell(row.type)} | ${row.default} | ${row.meaning} |`),
    "",
  ]);
}

/** Keys whose schema carries no `.describe()` text, for the generator to report. */
export function undescribedKeys(): string[] {
  const documents = [
    ["smtpgate.yaml", inputJsonSchema(configSchema)],
    ["relay.yaml", inputJsonSchema(relayConfigSchema)],
  ] as const;
  return documents.flatMap(([file, schema]) =>
    sections(schema, file).flatMap((section) =>
      section.rows.filter((row) => row.meaning === "").map((row) => `${file} ${section.title} ${row.key}`),
    ),
  );
}

export function configReferenceMarkdown(): string {
  const lines = [
    "<!-- Generated by `npm run docs` from api/config/schema.ts and edge-relay/config.ts: do not edit. -->",
    "",
    "# Configuration reference",
    "",
    "Every key of the two configuration files, generated from the schemas that validate them at start-up. Types,",
    "defaults and limits are the schemas' own; the meanings are their descriptions. How the keys work together,",
    "with examples, is in [configuration](configuration.md). Every object is strict: an unknown key is an error.",
    "A secret is `{ env: NAME }`, read from that environment variable (or Workers secret) at start-up.",
    "",
    "- [The API's configuration (`smtpgate.yaml`)](#the-apis-configuration-smtpgateyaml)",
    "- [The relay's configuration (`relay.yaml`)](#the-relays-configuration-relayyaml)",
    "",
    "## The API's configuration (`smtpgate.yaml`)",
    "",
    ...renderSections(sections(inputJsonSchema(configSchema), "smtpgate.yaml"), "###"),
    "## The relay's configuration (`relay.yaml`)",
    "",
    ...renderSections(sections(inputJsonSchema(relayConfigSchema), "relay.yaml", " in relay.yaml"), "###"),
  ];
  return `${lines.join("\n").trimEnd()}\n`;
}
