/**
 * The configuration of the Workers runtime, from its bindings:
 *
 * - `SMTPGATE_CONFIG`: the same document as the Node config file, either as a JSON var (a table under
 *   `[vars.SMTPGATE_CONFIG]` in wrangler.toml arrives as an object) or as text holding JSON or YAML (a var, a
 *   secret, or `wrangler deploy --var`). The schema, the error messages and the secret references are the Node
 *   runtime's: `parseConfig`/`validateConfig` and `resolveSecrets`.
 * - Workers secrets (`wrangler secret put NAME`, `.dev.vars` locally) for every `{ env: NAME }` reference: the
 *   directories' bind passwords and the API tokens.
 *
 * On top of the schema, what workerd cannot do is refused here, each problem with its path and what to use
 * instead: files (there is no file system), StartTLS, custom CAs (see workersDirectoryProblems).
 */
import { ConfigError, throwIfProblems, type ConfigProblem } from "../../../lib/config/config-error.ts";
import { TOP_LEVEL } from "../../../lib/validation/problems.ts";
import { parseConfig, validateConfig } from "../../config/load.ts";
import type { Config } from "../../config/schema.ts";
import { workersDirectoryProblems } from "../../ldap/workers-directory.ts";

/** The binding that holds the configuration document. */
export const CONFIG_BINDING = "SMTPGATE_CONFIG";
/** How the configuration is named in error messages. */
export const CONFIG_SOURCE = `binding ${CONFIG_BINDING}`;

/** What the Worker's `env` holds: vars (strings or JSON values) and secrets (strings). */
export type WorkerEnv = Readonly<Record<string, unknown>>;

/** On Workers an "environment variable" is a secret: say how to set one. */
export const unsetWorkersSecret = (name: string): string =>
  `Workers secret ${name} is not set (wrangler secret put ${name}; for wrangler dev, a line in .dev.vars)`;

/** Reads, validates and checks the configuration. Throws ConfigError. */
export function loadWorkerConfig(env: WorkerEnv): Config {
  const raw = env[CONFIG_BINDING];
  let config: Config;
  if (raw === undefined || raw === null || raw === "") {
    throw new ConfigError(CONFIG_SOURCE, [
      {
        path: TOP_LEVEL,
        message: `the ${CONFIG_BINDING} binding is not set; define it under [vars] in wrangler.toml (a table, or JSON/YAML text) or with wrangler deploy --var`,
      },
    ]);
  } else if (typeof raw === "string") {
    config = parseConfig(raw, CONFIG_SOURCE);
  } else {
    config = validateConfig(raw, CONFIG_SOURCE);
  }
  throwIfProblems(CONFIG_SOURCE, [...workersProblems(config), ...bruteForceBindingProblems(config, env)]);
  return config;
}

/** A durable-object store's binding must be there and be a Durable Object namespace. */
function bruteForceBindingProblems(config: Config, env: WorkerEnv): ConfigProblem[] {
  const { type, binding } = config.bruteForceStore;
  if (type !== "durable-object" || binding === undefined) return [];
  const namespace = env[binding] as { idFromName?: unknown } | undefined;
  if (typeof namespace?.idFromName === "function") return [];
  return [
    {
      path: "bruteForceStore.binding",
      message: `the Worker has no Durable Object namespace bound as ${binding}: add [[durable_objects.bindings]] name = "${binding}", class_name = "BruteForceObject" to wrangler.toml (and its migration)`,
    },
  ];
}

/** Everything in a valid configuration that the Workers runtime cannot do. */
export function workersProblems(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [name, directory] of Object.entries(config.directories))
    problems.push(...workersDirectoryProblems(name, directory));
  for (const [name, profile] of Object.entries(config.authProfiles)) {
    if (profile.type === "certificate" && "file" in profile.trustAnchors) {
      problems.push({
        path: `authProfiles.${name}.trustAnchors.file`,
        message:
          'a Worker has no file system; give the CA certificates inline as trustAnchors: { pem: "-----BEGIN CERTIFICATE-----..." }',
      });
    }
    if (profile.type === "certificate" && profile.intermediates && "file" in profile.intermediates) {
      problems.push({
        path: `authProfiles.${name}.intermediates.file`,
        message:
          'a Worker has no file system; give the certificates inline as intermediates: { pem: "-----BEGIN CERTIFICATE-----..." }',
      });
    }
  }
  for (const [name, source] of Object.entries(config.crlSources)) {
    if (source.file !== undefined) {
      problems.push({
        path: `crlSources.${name}.file`,
        message:
          "a Worker has no file system; publish the CRL over http(s) and give its url (fetched and cached per isolate)",
      });
    }
  }
  for (const index of config.fronts.postfixPolicy.keys())
    problems.push({
      path: `fronts.postfixPolicy.${index}`,
      message:
        "a Worker cannot listen on a socket; run the policy server at the edge against this Worker (node fronts/postfix-policy/edge.ts --api URL ...)",
    });
  return problems;
}

/** Secrets are strings; vars that hold JSON values are not secrets and are left out. */
export function stringsOf(env: WorkerEnv): Record<string, string> {
  const strings: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (typeof value === "string") strings[key] = value;
  return strings;
}
