/**
 * From the text of a configuration file (YAML or JSON) to a validated value, for every smtpgate configuration
 * (the API's and the relay's). Nothing here touches the file system, so the Workers runtime uses it too.
 *
 * A YAML error quotes the line it is on, with a caret under the column:
 *
 *   relay.yaml: invalid configuration
 *     not valid YAML or JSON: Nested mappings are not allowed in compact mappings at line 3, column 9:
 *
 *       url: http://127.0.0.1:8787
 *           ^
 */
import { parse as parseYaml, YAMLError } from "yaml";
import type { z } from "zod";
import { validate } from "../validation/problems.ts";
import { TOP_LEVEL } from "../validation/problems.ts";
import { ConfigError } from "./config-error.ts";

/** Parses YAML or JSON text into a mapping; throws ConfigError. `what` says what the mapping holds. */
export function parseDocument(text: string, source: string, what: string): Record<string, unknown> {
  let document: unknown;
  try {
    // JSON is a subset of YAML 1.2, so one parser reads both.
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const message = error instanceof YAMLError ? error.message.trimEnd() : String(error);
    throw new ConfigError(source, [{ path: TOP_LEVEL, message: `not valid YAML or JSON: ${message}` }]);
  }
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    const found =
      document === null || document === undefined
        ? "an empty document"
        : Array.isArray(document)
          ? "a list"
          : `a single ${typeof document}`;
    throw new ConfigError(source, [{ path: TOP_LEVEL, message: `expected a mapping with ${what}, found ${found}` }]);
  }
  return document as Record<string, unknown>;
}

/** Validates a parsed document against `schema`, reporting every problem at once; throws ConfigError. */
export function validateDocument<S extends z.ZodType>(schema: S, document: unknown, source: string): z.output<S> {
  const checked = validate(schema, document);
  if (!checked.ok) throw new ConfigError(source, checked.problems);
  return checked.value;
}
