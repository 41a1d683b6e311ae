/**
 * Reading and checking a configuration: parse (YAML or JSON), validate against the schema, resolve secrets.
 * Every problem is reported with the path of the offending value and the reason, all at once (references
 * between sections are checked once each section is valid on its own):
 *
 *   directories.corp.hosts[1]: not an ldap:// or ldaps:// URL (scheme, host and optional port only)
 *
 * Nothing here touches the file system or the network: the runtime entry points read the file and pass the
 * environment in, so the same code serves Node.js and Workers.
 */
import { parse as parseYaml, YAMLParseError } from "yaml";
import type { z } from "zod";
import { configSchema, type Config, type SecretRef } from "./schema.ts";

/** RFC 6750 §2.1 b64token: what an Authorization: Bearer header can carry. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`${source}: invalid configuration\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
    this.problems = problems;
  }
}

/** `directories.corp.hosts[1]` from zod's `["directories", "corp", "hosts", 1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "(top level)" : out;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${formatPath(issue.path)}: ${issueMessage(issue)}`);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  // Parsed with reportInput, so an absent value is told apart from a value of the wrong type.
  if (issue.code === "unrecognized_keys")
    return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
  if (issue.code === "invalid_type" && issue.input === undefined) return `required (${issue.expected})`;
  return issue.message;
}

/** Parses the text of a configuration file and validates it. Throws ConfigError. */
export function parseConfig(text: string, source: string): Config {
  let document: unknown;
  try {
    // JSON is a subset of YAML 1.2, so one parser reads both.
    document = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (error) {
    const message = error instanceof YAMLParseError ? error.message.split("\n")[0] : String(error);
    throw new ConfigError(source, [`not valid YAML or JSON: ${message}`]);
  }
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    throw new ConfigError(source, ["(top level): must be a mapping with directories, authProfiles, listeners and api"]);
  }
  return validateConfig(document, source);
}

export function validateConfig(document: unknown, source: string): Config {
  const result = configSchema.safeParse(document, { reportInput: true });
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return result.data;
}

/** Secrets resolved from the environment, by where they are used. */
export interface Secrets {
  apiTokens: string[];
  /** Tokens that may only read GET /metrics. */
  metricsTokens: string[];
  bindPasswords: Record<string, string>;
}

/** Resolves one secret reference; a missing or empty variable is a ConfigError naming `path`. */
export function resolveSecretRef(
  ref: SecretRef,
  env: Readonly<Record<string, string | undefined>>,
  path: string,
  source: string,
): string {
  const value = env[ref.env];
  if (value === undefined || value === "")
    throw new ConfigError(source, [`${path}: environment variable ${ref.env} is not set`]);
  return value;
}

/** Resolves every `{ env: NAME }` reference; a missing or empty variable is an error naming the config path. */
export function resolveSecrets(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  source: string,
): Secrets {
  const problems: string[] = [];
  const read = (ref: SecretRef, path: string): string => {
    const value = env[ref.env];
    if (value === undefined || value === "") {
      problems.push(`${path}: environment variable ${ref.env} is not set`);
      return "";
    }
    return value;
  };
  const tokens = (key: "tokens" | "metricsTokens"): string[] =>
    config.api[key].map((ref, index) => {
      const token = read(ref, `api.${key}[${index}]`);
      if (token !== "" && !BEARER_TOKEN.test(token)) {
        problems.push(
          `api.${key}[${index}]: the value of ${ref.env} is not a valid bearer token (letters, digits and - . _ ~ + / with trailing =)`,
        );
      }
      return token;
    });
  const apiTokens = tokens("tokens");
  const metricsTokens = tokens("metricsTokens");
  const bindPasswords: Record<string, string> = {};
  for (const [name, directory] of Object.entries(config.directories)) {
    if (directory.bind) bindPasswords[name] = read(directory.bind.password, `directories.${name}.bind.password`);
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { apiTokens, metricsTokens, bindPasswords };
}
