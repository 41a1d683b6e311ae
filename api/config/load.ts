/**
 * Reading and checking the API's configuration: parse (YAML or JSON), validate against the schema, resolve
 * secrets. Every problem is reported with the path of the offending value, what was expected and what was found,
 * all at once (references between sections are checked once each section is valid on its own):
 *
 *   directories.corp.hosts[1]: not an ldap:// or ldaps:// URL (scheme, host and optional port only)
 *
 * Nothing here touches the file system or the network: the runtime entry points read the file and pass the
 * environment in, so the same code serves Node.js and Workers. The generic parts (the error type, YAML, secret
 * references) are lib/config's, shared with the relay.
 */
import { throwIfProblems, type ConfigProblem } from "../../lib/config/config-error.ts";
import { parseDocument, validateDocument } from "../../lib/config/document.ts";
import {
  readSecret,
  unsetEnvironmentVariable,
  type Environment,
  type SecretRef,
  type UnsetSecretMessage,
} from "../../lib/config/secret-ref.ts";
import { configSchema, type Config } from "./schema.ts";

/** RFC 6750 §2.1 b64token: what an Authorization: Bearer header can carry. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Parses the text of a configuration file and validates it. Throws ConfigError. */
export function parseConfig(text: string, source: string): Config {
  return validateConfig(parseDocument(text, source, "directories, authProfiles, listeners and api"), source);
}

export function validateConfig(document: unknown, source: string): Config {
  return validateDocument(configSchema, document, source);
}

/** Secrets resolved from the environment, by where they are used. */
export interface Secrets {
  apiTokens: string[];
  /** Tokens that may only read GET /metrics. */
  metricsTokens: string[];
  bindPasswords: Record<string, string>;
}

/**
 * Resolves every `{ env: NAME }` reference; a missing or empty variable is an error naming the config path
 * (`unset` words it: an environment variable on Node, a Workers secret on Workers).
 */
export function resolveSecrets(
  config: Config,
  env: Environment,
  source: string,
  unset: UnsetSecretMessage = unsetEnvironmentVariable,
): Secrets {
  const problems: ConfigProblem[] = [];
  const read = (ref: SecretRef, path: string): string => {
    const value = readSecret(ref, env);
    if (value === undefined) problems.push({ path, message: unset(ref.env) });
    return value ?? "";
  };
  const tokens = (key: "tokens" | "metricsTokens"): string[] =>
    config.api[key].map((ref, index) => {
      const path = `api.${key}[${index}]`;
      const token = read(ref, path);
      if (token !== "" && !BEARER_TOKEN.test(token)) {
        problems.push({
          path,
          message: `the value of ${ref.env} is not a valid bearer token (letters, digits and - . _ ~ + / with trailing =)`,
        });
      }
      return token;
    });
  const apiTokens = tokens("tokens");
  const metricsTokens = tokens("metricsTokens");
  const bindPasswords: Record<string, string> = {};
  for (const [name, directory] of Object.entries(config.directories)) {
    if (directory.bind) bindPasswords[name] = read(directory.bind.password, `directories.${name}.bind.password`);
  }
  throwIfProblems(source, problems);
  return { apiTokens, metricsTokens, bindPasswords };
}
