/**
 * `smtpgate check`: whether a configuration would start, without starting anything. In order, stopping at the
 * first stage with a problem: the document (YAML/JSON, schema, references), the files it names (CA bundles, trust
 * anchors, intermediates, CRL files), the secrets (each { env: NAME } set and well-formed); with --connect, every
 * directory host (connect, TLS, service bind, a base search per query) and every CRL URL.
 */
import { ConfigError, problemText, type ConfigProblem } from "../lib/config/config-error.ts";
import { resolveSecrets, type Secrets } from "../api/config/load.ts";
import type { Config } from "../api/config/schema.ts";
import type { LdapDirectory } from "../api/ldap/ldap-directory.ts";
import { createDirectories, loadCrlStore, loadIntermediates, loadTrustAnchors } from "../api/runtime/node/loaders.ts";
import { readConfigFile } from "../api/runtime/node/server.ts";
import { EXIT, environment, parseCommandLine, UsageError } from "./command.ts";
import { checkDirectoryHosts } from "./directory-check.ts";

export const HELP = `usage: smtpgate check [--connect] [--schema-only] [--env-file FILE] FILE...

Checks the decision API's configuration FILE (default: $SMTPGATE_CONFIG) the way "smtpgate api" would read it at
start, and prints each stage:

  schema    YAML or JSON, every key and value, references between sections (each problem by its path)
  files     directories.*.tls.caFile, trustAnchors, intermediates, crlSources.*.file: readable and parsable
  secrets   every { env: NAME } set in the environment (values are never printed)
  connect   with --connect: each host of each directory on its own: connect, StartTLS or LDAPS, the service
            bind, then a base-scope search of every base DN a query uses, each timed; and each CRL URL fetched.
            A failure names the key to change (e.g. invalid credentials (49): bind.dn or its secret; a TLS error:
            tls.caFile or tls.serverName)

Options:
  --connect         also talk to the directories and CRL servers
  --schema-only     check the document only (no files, no secrets): for examples and CI
  --env-file FILE   read secrets from NAME=value lines too (e.g. the unit's EnvironmentFile)
  -h, --help        this help

Exit status: 0 every stage passed; 2 the configuration would not start (schema, file or secret); 1 --connect
found a problem (a refused bind, a missing base DN, a TLS failure, a stale CRL); 3 --connect could not reach a
host or a CRL URL (and found nothing worse).
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCommandLine(
    argv,
    { connect: { type: "boolean" }, "schema-only": { type: "boolean" }, "env-file": { type: "string" } },
    { min: 0, max: 64, name: "FILE" },
  );
  if (help) {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (values.connect && values["schema-only"]) throw new UsageError("--connect and --schema-only exclude each other");
  const files = positionals.length > 0 ? positionals : process.env.SMTPGATE_CONFIG ? [process.env.SMTPGATE_CONFIG] : [];
  if (files.length === 0) throw new UsageError("missing FILE (or set SMTPGATE_CONFIG)");
  const env = environment(values["env-file"]);
  let status: number = EXIT.ok;
  for (const file of files) {
    const outcome = await checkFile(file, env, {
      connect: values.connect ?? false,
      schemaOnly: values["schema-only"] ?? false,
    });
    status = worse(status, outcome);
  }
  return status;
}

/** 2 (will not start) over 1 (found a problem) over 3 (could not reach) over 0. */
function worse(a: number, b: number): number {
  const rank = (status: number): number => [EXIT.ok, EXIT.unavailable, EXIT.problem, EXIT.usage].indexOf(status as 0);
  return rank(b) > rank(a) ? b : a;
}

async function checkFile(
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  options: { connect: boolean; schemaOnly: boolean },
): Promise<number> {
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  print(file);
  let config: Config;
  try {
    config = await readConfigFile(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    printProblems("schema", error.problems, print);
    return EXIT.usage;
  }
  print(`  schema   ok: ${summary(config)}`);
  if (options.schemaOnly) return EXIT.ok;

  // Every file the configuration names, read as the API reads it; CRL URLs wait for --connect.
  const fileProblems = await problemsOf(async () => {
    await loadTrustAnchors(config, file);
    await loadIntermediates(config, file);
    const directories = await createDirectories(config, {}, file);
    await Promise.all(Object.values(directories).map((directory) => directory.close()));
    await loadCrlStore(onlyCrlFiles(config), file, () => {});
  });
  if (fileProblems.length > 0) {
    printProblems("files", fileProblems, print);
    return EXIT.usage;
  }
  const named = namedFiles(config);
  print(`  files    ok${named.length > 0 ? `: ${named.join(", ")}` : " (none named)"}`);

  let secrets: Secrets | undefined;
  const secretProblems = await problemsOf(async () => {
    secrets = resolveSecrets(config, env, file);
  });
  if (secretProblems.length > 0 || !secrets) {
    printProblems("secrets", secretProblems, print);
    return EXIT.usage;
  }
  print(`  secrets  ok: ${[...secretNames(config)].join(", ")} set`);
  if (!options.connect) return EXIT.ok;

  print("  connect");
  const errors = new Map<string, unknown>();
  const directories: Record<string, LdapDirectory> = await createDirectories(
    config,
    secrets.bindPasswords,
    file,
    (directory, attempt) => {
      if (attempt.error !== undefined) errors.set(directory, attempt.error);
    },
  );
  const hosts = await checkDirectoryHosts(config, directories, (directory) => errors.get(directory));
  for (const line of hosts.lines) print(`    ${line}`);
  const crls = await checkCrlUrls(config, file);
  for (const line of crls.lines) print(`    ${line}`);
  if (hosts.problems + crls.problems > 0) return EXIT.problem;
  return hosts.unreachable + crls.unreachable > 0 ? EXIT.unavailable : EXIT.ok;
}

async function checkCrlUrls(
  config: Config,
  file: string,
): Promise<{ lines: string[]; problems: number; unreachable: number }> {
  const report = { lines: [] as string[], problems: 0, unreachable: 0 };
  const urls = Object.entries(config.crlSources).filter(([, source]) => source.url !== undefined);
  if (urls.length === 0) return report;
  const store = await loadCrlStore({ ...config, crlSources: Object.fromEntries(urls) }, file, () => {});
  for (const state of store?.status() ?? []) {
    const at = `crlSources.${state.name} ${state.location}`;
    if (!state.crl) {
      report.lines.push(
        `${at}: FAILED: ${state.error ?? "not loaded"}`,
        `  fix: check crlSources.${state.name}.url and that the CRL server answers`,
      );
      report.unreachable += 1;
      continue;
    }
    const next = state.crl.nextUpdate;
    const stale = !next || next < new Date();
    report.lines.push(
      `${at}: ${stale ? "STALE" : "ok"}: issuer ${state.crl.issuer}, thisUpdate ${state.crl.thisUpdate.toISOString()}, nextUpdate ${next?.toISOString() ?? "absent"}`,
    );
    if (stale) {
      report.lines.push("  fix: the CA must publish a fresh CRL (until then decisions see revocation as unknown)");
      report.problems += 1;
    }
  }
  return report;
}

async function problemsOf(stage: () => Promise<void>): Promise<readonly ConfigProblem[]> {
  try {
    await stage();
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

function printProblems(stage: string, problems: readonly ConfigProblem[], print: (line: string) => void): void {
  print(`  ${stage.padEnd(8)} ${problems.length} problem${problems.length > 1 ? "s" : ""}:`);
  for (const problem of problems) print(`    ${problemText(problem).replace(/\n/g, "\n      ")}`);
}

function summary(config: Config): string {
  const count = (items: object, one: string, many: string): string => {
    const n = Object.keys(items).length;
    return `${n} ${n === 1 ? one : many}`;
  };
  return [
    count(config.directories, "directory", "directories"),
    count(config.authProfiles, "auth profile", "auth profiles"),
    count(config.listeners, "listener", "listeners"),
  ].join(", ");
}

function onlyCrlFiles(config: Config): Config {
  return {
    ...config,
    crlSources: Object.fromEntries(Object.entries(config.crlSources).filter(([, source]) => source.file !== undefined)),
  };
}

function namedFiles(config: Config): string[] {
  const files: string[] = [];
  for (const [name, directory] of Object.entries(config.directories))
    if (directory.tls.caFile) files.push(`directories.${name}.tls.caFile`);
  for (const [name, profile] of Object.entries(config.authProfiles)) {
    if (profile.type !== "certificate") continue;
    if ("file" in profile.trustAnchors) files.push(`authProfiles.${name}.trustAnchors`);
    if (profile.intermediates && "file" in profile.intermediates) files.push(`authProfiles.${name}.intermediates`);
  }
  for (const [name, source] of Object.entries(config.crlSources))
    if (source.file) files.push(`crlSources.${name}.file`);
  return files;
}

function secretNames(config: Config): Set<string> {
  const names = new Set<string>();
  for (const ref of [...config.api.tokens, ...config.api.metricsTokens]) names.add(ref.env);
  for (const directory of Object.values(config.directories)) if (directory.bind) names.add(directory.bind.password.env);
  return names;
}
