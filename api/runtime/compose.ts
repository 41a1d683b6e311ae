/**
 * What both runtimes build the same way from a configuration: secrets, each certificate profile's trust anchors
 * and intermediates, the directory adapters, the CRL store, the gate and the Hono app. A runtime hands in only
 * what differs (Hono's `adapter/<runtime>` idea): where secrets and files come from, how CRLs travel and which
 * directory adapter to build.
 *
 *   const { gate, app, crls } = await composeApi(config, {
 *     source: "smtpgate.yaml", env: process.env, log,
 *     readNamedFile, crlTransport: { readFile }, createDirectory: (name, directory, access) => new LdapDirectory(...),
 *   });
 *
 * Every problem found on the way (an unset secret, an unreadable CA file, a bundle without a certificate) is
 * reported at once, as a ConfigError naming each path.
 */
import type { Hono } from "hono";
import { throwIfProblems, type ConfigProblem } from "../../lib/config/config-error.ts";
import type { Environment, UnsetSecretMessage } from "../../lib/config/secret-ref.ts";
import type { Logger } from "../../lib/json-lines.ts";
import { resolveSecrets } from "../config/load.ts";
import type { Config, DirectoryConfig } from "../config/schema.ts";
import type { Directory } from "../core/directory.ts";
import type { DecisionService } from "../decisions/decision-service.ts";
import { Gate } from "../gate/gate.ts";
import { BruteForceLimiter, type LimiterStore } from "../core/brute-force.ts";
import { bruteForcePolicySchema, type BruteForceStoreConfig } from "../config/brute-force-schema.ts";
import { MemoryLimiterStore } from "../limiter/memory-store.ts";
import { createTokenChecker } from "../http/api-tokens.ts";
import { createApp } from "../http/app.ts";
import type { HostSelector } from "../ldap/host-selector.ts";
import { observedDirectories } from "../metrics/api-metrics.ts";
import { parseTrustAnchors } from "../pki/certificate-chain.ts";
import { CrlStore, type CrlStoreOptions } from "../pki/crl-store.ts";
import type { X509Certificate } from "../pki/x509.ts";

/** A file the configuration names, read, or the problem with it at its config path. */
export type NamedFile = { ok: true; text: string } | { ok: false; problem: ConfigProblem };

/** What a directory adapter needs beyond its configuration: the service bind's password and the CA bundle. */
export interface DirectoryAccess {
  bindPassword: string | undefined;
  /** PEM text of `tls.caFile`; undefined = the system store. */
  ca: string | undefined;
}

export interface RuntimeAdapter<D extends Directory & { selector: HostSelector }> {
  /** How the configuration is named in errors. */
  source: string;
  env: Environment;
  /** How an unset secret is explained (default: an environment variable). */
  unsetSecret?: UnsetSecretMessage;
  log: Logger;
  /**
   * Reads a file the configuration names at `configPath`. Absent where there are no files: that runtime refuses
   * file references with the configuration, before anything is built.
   */
  readNamedFile?: (file: string, configPath: string) => Promise<NamedFile>;
  /** How the CRL store downloads (fetch) and reads (readFile) CRLs. */
  crlTransport: Pick<CrlStoreOptions, "fetch" | "readFile">;
  createDirectory(name: string, directory: DirectoryConfig, access: DirectoryAccess): D;
  /**
   * The brute-force stores this runtime has besides memory, by `bruteForceStore.type`, each with what to use
   * instead when asked for one it lacks (Node: redis; Workers: durable-object).
   */
  limiterStores: LimiterStoreFactories;
}

export interface ComposedApi<D> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- createApp's own variables type stays its business
  app: Hono<any>;
  /** The app's decisions, for a front in the same process (an InProcessDecider over it). */
  decisions: DecisionService;
  gate: Gate;
  directories: Record<string, D>;
  crls: CrlStore | null;
}

export async function composeApi<D extends Directory & { selector: HostSelector }>(
  config: Config,
  adapter: RuntimeAdapter<D>,
): Promise<ComposedApi<D>> {
  const secrets = resolveSecrets(config, adapter.env, adapter.source, adapter.unsetSecret);
  const problems: ConfigProblem[] = [...limiterStoreProblems(config, adapter)];
  const read = namedFileReader(adapter, problems);
  const trustAnchors = await profileCertificates(config, "trustAnchors", read, problems);
  const intermediates = await profileCertificates(config, "intermediates", read, problems);
  const directories = await createDirectories(config, adapter, secrets.bindPasswords, read, problems);
  if (problems.length > 0) await Promise.all(Object.values(directories).map((directory) => directory.close()));
  throwIfProblems(adapter.source, problems);

  const crls = createCrlStore(config, adapter);
  const bruteForce = createBruteForceLimiter(config, adapter);
  const gate = new Gate({ config, directories, trustAnchors, intermediates, crls, bruteForce });
  const app = createApp({
    gate,
    tokens: await createTokenChecker(secrets.apiTokens),
    metricsTokens: await createTokenChecker([...secrets.apiTokens, ...secrets.metricsTokens]),
    directories: observedDirectories(config, directories),
    maxBodyBytes: config.api.maxBodyBytes,
    log: adapter.log,
    upstreams: Object.fromEntries(
      Object.entries(config.listeners).flatMap(([name, listener]) =>
        listener.upstream ? [[name, listener.upstream]] : [],
      ),
    ),
  });
  return { app, decisions: app.decisions, gate, directories, crls };
}

type SharedStoreType = Exclude<BruteForceStoreConfig["type"], "memory">;

export type LimiterStoreFactories = {
  [type in SharedStoreType]: ((store: BruteForceStoreConfig, env: Environment) => LimiterStore) | { missing: string };
};

/** How this runtime builds the configured store: undefined for memory. */
function configuredStore(config: Config, adapter: Pick<RuntimeAdapter<never>, "limiterStores">) {
  const { type } = config.bruteForceStore;
  return type === "memory" ? undefined : adapter.limiterStores[type];
}

/** A `bruteForceStore.type` this runtime does not have, with what to use instead. */
function limiterStoreProblems(config: Config, adapter: Pick<RuntimeAdapter<never>, "limiterStores">): ConfigProblem[] {
  const factory = configuredStore(config, adapter);
  return typeof factory === "object" ? [{ path: "bruteForceStore.type", message: factory.missing }] : [];
}

/**
 * The limiter over the configured store; each store failure is logged (and counted by the metrics). A store this
 * runtime lacks was refused with the other problems (limiterStoreProblems, in composeApi).
 */
function createBruteForceLimiter(
  config: Config,
  adapter: Pick<RuntimeAdapter<never>, "limiterStores" | "env" | "log">,
): BruteForceLimiter {
  const settings = config.bruteForceStore;
  const factory = configuredStore(config, adapter);
  const store = typeof factory === "function" ? factory(settings, adapter.env) : new MemoryLimiterStore();
  const off = { ...bruteForcePolicySchema.parse(undefined), mode: "off" as const };
  return new BruteForceLimiter({
    store,
    // An unknown listener never reaches the limiter (the gate refuses it first); "off" keeps the type honest.
    policyOf: (listener) => config.listeners[listener]?.bruteForce ?? off,
    onStoreFailure: settings.onStoreFailure,
    storeFailed: (operation, error) =>
      adapter.log({
        level: "error",
        msg: "brute-force store failed",
        store: settings.type,
        operation,
        onStoreFailure: settings.onStoreFailure,
        error: error instanceof Error ? error.message : String(error),
      }),
  });
}

/** Reads a file the configuration names, or records the problem with it (and answers undefined). */
export type ConfigFileReader = (file: string, configPath: string) => Promise<string | undefined>;

export function namedFileReader(
  adapter: Pick<RuntimeAdapter<never>, "readNamedFile">,
  problems: ConfigProblem[],
): ConfigFileReader {
  return async (file, configPath) => {
    const named = adapter.readNamedFile
      ? await adapter.readNamedFile(file, configPath)
      : { ok: false as const, problem: { path: configPath, message: "this runtime has no files" } };
    if (!named.ok) problems.push(named.problem);
    return named.ok ? named.text : undefined;
  };
}

/** One directory adapter per LDAP server profile, with its CA bundle read. */
export async function createDirectories<D extends Directory>(
  config: Config,
  adapter: Pick<RuntimeAdapter<D & { selector: HostSelector }>, "createDirectory">,
  bindPasswords: Readonly<Record<string, string>>,
  read: ConfigFileReader,
  problems: ConfigProblem[],
): Promise<Record<string, D>> {
  const directories: Record<string, D> = {};
  for (const [name, directory] of Object.entries(config.directories)) {
    const caPath = `directories.${name}.tls.caFile`;
    const ca = directory.tls.caFile === undefined ? undefined : await read(directory.tls.caFile, caPath);
    if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----"))
      problems.push({ path: caPath, message: `${directory.tls.caFile} holds no PEM certificate` });
    directories[name] = adapter.createDirectory(name, directory, { bindPassword: bindPasswords[name], ca });
  }
  return directories;
}

/** The CRL store of the configured sources (nothing loaded yet); null when no profile checks revocation. */
export function createCrlStore(
  config: Config,
  adapter: Pick<RuntimeAdapter<never>, "crlTransport" | "log">,
): CrlStore | null {
  const crlSources = Object.entries(config.crlSources).map(([name, crl]) => ({
    name,
    url: crl.url,
    file: crl.file,
    refreshSeconds: crl.refreshSeconds,
  }));
  const usesRevocation = Object.values(config.authProfiles).some(
    (profile) => profile.type === "certificate" && profile.revocation,
  );
  return usesRevocation || crlSources.length > 0
    ? new CrlStore({ sources: crlSources, ...adapter.crlTransport, log: adapter.log })
    : null;
}

/** Each certificate profile's PEM bundle under `key`: a file (read with `read`) or inline PEM. */
export async function profileCertificates(
  config: Config,
  key: "trustAnchors" | "intermediates",
  read: ConfigFileReader,
  problems: ConfigProblem[],
): Promise<Record<string, X509Certificate[]>> {
  const bundles: Record<string, X509Certificate[]> = {};
  for (const [name, profile] of Object.entries(config.authProfiles)) {
    if (profile.type !== "certificate") continue;
    const ref = profile[key];
    if (!ref) continue;
    const path = `authProfiles.${name}.${key}.${"file" in ref ? "file" : "pem"}`;
    const pem = "file" in ref ? await read(ref.file, path) : ref.pem;
    if (pem === undefined) continue;
    try {
      bundles[name] = parseTrustAnchors(pem, "file" in ref ? ref.file : "the PEM text");
    } catch (error) {
      problems.push({ path, message: (error as Error).message });
    }
  }
  return bundles;
}
