/**
 * Validation problems as a good compiler reports them: the path, what was expected, what was found, and a
 * did-you-mean where a name was misspelt. One zod error map writes every message that a schema does not write
 * itself (a schema's own message, such as "not an ldap:// or ldaps:// URL", always wins), so no validator
 * internals ("Too big: expected string to have <=16 characters") reach a reader:
 *
 *   directories.corp.hosts: expected a list, found the string "ldaps://ldap.example.com"
 *   listeners.submission: unknown key "hostAcessTable"; did you mean "hostAccessTable"?
 *   api.tokens[0]: a secret is never written inline: put it in an environment variable and write { env: "NAME" }
 *
 *   const checked = validate(configSchema, document);
 *   if (!checked.ok) for (const { path, message } of checked.problems) ...
 *
 * Used for configuration files and for API request bodies alike; a request's values are not repeated back
 * (`showValues: false`): they may be passwords.
 */
import type { z } from "zod";
import { closestMatch } from "./did-you-mean.ts";

/** One problem with one value: where it is (`directories.corp.hosts[1]`) and what is wrong with it. */
export interface ValueProblem {
  readonly path: string;
  readonly message: string;
}

/** The path of a problem with the document as a whole. */
export const TOP_LEVEL = "(top level)";

export interface ValidateOptions {
  /** Quote the offending value in messages (default true); never for secrets. */
  showValues?: boolean;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; problems: ValueProblem[] };

/** How long a quoted value may be before it is cut (the reader needs to recognise it, not read it). */
const MAX_QUOTED = 60;

const secretSchemas = new WeakSet<object>();

/** Marks a schema whose values are secrets: never quoted, and an inline string gets the `{ env: NAME }` advice. */
export function markSecret<S extends z.ZodType>(schema: S): S {
  secretSchemas.add(schema);
  return schema;
}

export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  options: ValidateOptions = {},
): Validated<z.output<S>> {
  const showValues = options.showValues ?? true;
  const result = schema.safeParse(input, { reportInput: true, error: showValues ? SHOWING_VALUES : HIDING_VALUES });
  return result.success ? { ok: true, value: result.data } : { ok: false, problems: problemsOf(result.error.issues) };
}

/** `directories.corp.hosts[1]` from zod's `["directories", "corp", "hosts", 1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? TOP_LEVEL : out;
}

/**
 * One problem per issue, minus the noise: once a value has the wrong type, nothing else about it is news; a union
 * with one branch that fits the value's shape reports that branch's complaints, at their own paths.
 */
function problemsOf(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): ValueProblem[] {
  const mistyped = new Set(issues.filter((issue) => issue.code === "invalid_type").map((i) => formatPath(i.path)));
  const problems: ValueProblem[] = [];
  for (const issue of issues) {
    if (issue.code !== "invalid_type" && mistyped.has(formatPath(issue.path))) continue;
    const branch = issue.code === "invalid_union" ? fittingBranch(issue) : undefined;
    if (branch) problems.push(...problemsOf(branch, [...prefix, ...issue.path]));
    else problems.push({ path: formatPath([...prefix, ...issue.path]), message: issue.message });
  }
  return problems;
}

/** The one branch of a union whose complaints are all inside the value (its type and keys fit), if there is one. */
function fittingBranch(issue: z.core.$ZodIssueInvalidUnion): readonly z.core.$ZodIssue[] | undefined {
  const fitting = issue.errors.filter((branch) => branch.every((nested) => nested.path.length > 0));
  return fitting.length === 1 ? fitting[0] : undefined;
}

type RawIssue = z.core.$ZodRawIssue;

const SHOWING_VALUES = errorMap(true);
const HIDING_VALUES = errorMap(false);

function errorMap(showValues: boolean): z.core.$ZodErrorMap {
  return function describeIssue(issue) {
    const secret = issue.inst !== undefined && secretSchemas.has(issue.inst);
    return messageFor(issue, showValues && !secret, secret);
  };
}

function messageFor(issue: RawIssue, showValues: boolean, secret: boolean): string | undefined {
  const found = (value: unknown): string => describeValue(value, showValues);
  switch (issue.code) {
    case "invalid_type":
      if (secret && typeof issue.input === "string")
        return 'a secret is never written inline: put it in an environment variable (on Workers, a secret) and write { env: "NAME" } here';
      if (secret) return `expected { env: "NAME" } (a secret read from the environment), found ${found(issue.input)}`;
      if (issue.input === undefined) return `missing (expected ${describeType(issue.expected)})`;
      return `expected ${describeType(issue.expected)}, found ${found(issue.input)}`;
    case "too_small":
    case "too_big":
      return describeBound(issue, found);
    case "invalid_value":
      return `expected ${oneOf(issue.values.map(quote))}, found ${found(issue.input)}${didYouMean(issue.input, issue.values)}`;
    case "invalid_format":
      return `expected ${describeFormat(issue.format)}, found ${found(issue.input)}`;
    case "unrecognized_keys":
      return issue.keys.map((key) => `unknown key ${quote(key)}${didYouMean(key, knownKeys(issue.inst))}`).join("; ");
    case "invalid_key": {
      const why = issue.issues.map((nested) => nested.message).join("; ");
      return showValues ? `invalid key ${quote(issue.input)}: ${why}` : `invalid key: ${why}`;
    }
    case "invalid_union":
      return describeUnion(issue, found);
    case "not_multiple_of":
      return `expected a multiple of ${String(issue.divisor)}, found ${found(issue.input)}`;
    default:
      // custom refinements carry their own message.
      return undefined;
  }
}

function describeBound(
  issue: z.core.$ZodRawIssue<z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig>,
  found: (value: unknown) => string,
): string {
  const small = issue.code === "too_small";
  const limit = Number(small ? issue.minimum : issue.maximum);
  const word = small
    ? issue.inclusive === false
      ? "more than"
      : "at least"
    : issue.inclusive === false
      ? "less than"
      : "at most";
  const input = issue.input;
  if (issue.origin === "string" && typeof input === "string")
    return `expected ${word} ${count(limit, "character")}, found ${input === "" ? "an empty string" : String(input.length)}`;
  if (issue.origin === "array" && Array.isArray(input))
    return `expected ${word} ${count(limit, "item")}, found ${input.length === 0 ? "an empty list" : String(input.length)}`;
  return `expected ${word} ${limit}, found ${found(input)}`;
}

function describeUnion(
  issue: z.core.$ZodRawIssue<z.core.$ZodIssueInvalidUnion>,
  found: (value: unknown) => string,
): string {
  const discriminator = (issue as { discriminator?: string }).discriminator;
  const options = (issue as { options?: unknown[] }).options;
  if (discriminator !== undefined && options !== undefined) {
    const value = (issue.input as Record<string, unknown> | undefined)?.[discriminator];
    return `expected ${oneOf(options.map(quote))}, found ${found(value)}${didYouMean(value, options)}`;
  }
  const branches = unionOptions(issue.inst);
  const expected = branches.map(describeBranch);
  const keys = branches.flatMap(knownKeys);
  const unknown =
    issue.input !== null && typeof issue.input === "object" && !Array.isArray(issue.input)
      ? Object.keys(issue.input).filter((key) => !keys.includes(key))
      : [];
  const hint = unknown.length === 1 ? didYouMean(unknown[0], keys) : "";
  return `expected ${[...new Set(expected)].join(" or ")}, found ${found(issue.input)}${hint}`;
}

function describeBranch(schema: z.core.$ZodType): string {
  const keys = knownKeys(schema);
  if (schema._zod.def.type === "object") return `{ ${keys.map((key) => `${key}: …`).join(", ")} }`;
  const format = (schema._zod.def as { format?: string }).format;
  if (format !== undefined) return describeFormat(format);
  return describeType(schema._zod.def.type);
}

function unionOptions(inst: unknown): z.core.$ZodType[] {
  const def = (inst as { _zod?: { def?: { options?: z.core.$ZodType[] } } } | undefined)?._zod?.def;
  return def?.options ?? [];
}

function knownKeys(inst: unknown): string[] {
  const def = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def;
  return Object.keys(def?.shape ?? {});
}

function didYouMean(value: unknown, candidates: readonly unknown[]): string {
  if (typeof value !== "string") return "";
  const match = closestMatch(
    value,
    candidates.filter((candidate): candidate is string => typeof candidate === "string"),
  );
  return match === undefined || match === value ? "" : `; did you mean ${quote(match)}?`;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  map: "a mapping",
  array: "a list",
  tuple: "a list",
  null: "null",
  literal: "a fixed value",
  enum: "one of the allowed values",
};

function describeType(type: string): string {
  return TYPE_NAMES[type] ?? `a value of type ${type}`;
}

const FORMAT_NAMES: Record<string, string> = {
  url: "a URL",
  email: "an email address",
  ipv4: "an IPv4 address",
  ipv6: "an IPv6 address",
  cidrv4: "an IPv4 CIDR block",
  cidrv6: "an IPv6 CIDR block",
  uuid: "a UUID",
  datetime: "an ISO 8601 date and time",
  base64: "base64 text",
};

function describeFormat(format: string): string {
  return FORMAT_NAMES[format] ?? `a value in the ${format} format`;
}

/** What was found, in the reader's words: `the string "8787"`, `a list`, `nothing`. */
function describeValue(value: unknown, showValues: boolean): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (typeof value === "string") {
    if (value === "") return "an empty string";
    return showValues ? `the string ${quote(value)}` : "a string";
  }
  if (typeof value === "number") return showValues ? `the number ${value}` : "a number";
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : "a list";
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

function quote(value: unknown): string {
  const text = JSON.stringify(typeof value === "string" ? value : String(value));
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED - 2)}…"` : text;
}

function oneOf(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? "nothing";
  if (items.length === 2) return `${items[0]} or ${items[1]}`;
  return `one of ${items.join(", ")}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
