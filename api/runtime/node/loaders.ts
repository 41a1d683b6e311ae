/**
 * The Node runtime's pieces of the composition (api/runtime/compose.ts) for callers that build them one by one:
 * the API server (through composeApi) and the `smtpgate` command's checks and decision traces. Each throws a
 * ConfigError naming every problem it found.
 */
import { readFile } from "node:fs/promises";
import { throwIfProblems, type ConfigProblem } from "../../../lib/config/config-error.ts";
import type { Logger } from "../../../lib/json-lines.ts";
import { readNamedFile } from "../../../lib/node/read-config-file.ts";
import type { Config, DirectoryConfig } from "../../config/schema.ts";
import { LdapDirectory, type HostAttempt } from "../../ldap/ldap-directory.ts";
import type { CrlStore } from "../../pki/crl-store.ts";
import type { X509Certificate } from "../../pki/x509.ts";
import {
  createCrlStore,
  createDirectories as composeDirectories,
  namedFileReader,
  profileCertificates,
  type DirectoryAccess,
} from "../compose.ts";

/** How the Node runtime reads the files a configuration names, and downloads or reads CRLs. */
export const NODE_FILES = { readNamedFile, crlTransport: { readFile: (path: string) => readFile(path) } };

/** The pooled ldapts adapter for one LDAP server profile. */
export function nodeDirectory(
  name: string,
  directory: DirectoryConfig,
  access: DirectoryAccess,
  onHostAttempt?: (attempt: HostAttempt) => void,
): LdapDirectory {
  return new LdapDirectory({
    name,
    hosts: directory.hosts,
    mode: directory.mode,
    failbackAfterMs: directory.failbackAfterMs,
    hostDownForMs: directory.hostDownForMs,
    security: {
      startTls: directory.startTls,
      ca: access.ca,
      serverName: directory.tls.serverName,
      connectTimeoutMs: directory.connectTimeoutMs,
      operationTimeoutMs: directory.operationTimeoutMs,
    },
    serviceBind: directory.bind ? { dn: directory.bind.dn, password: access.bindPassword as string } : undefined,
    maxConnections: directory.maxConnections,
    ...(onHostAttempt ? { onHostAttempt } : {}),
  });
}

/** One LdapDirectory per LDAP server profile, with its CA bundle read. */
export async function createDirectories(
  config: Config,
  bindPasswords: Readonly<Record<string, string>>,
  source: string,
  onHostAttempt?: (directory: string, attempt: HostAttempt) => void,
): Promise<Record<string, LdapDirectory>> {
  const problems: ConfigProblem[] = [];
  const directories = await composeDirectories(
    config,
    {
      createDirectory: (name, directory, access) =>
        nodeDirectory(name, directory, access, onHostAttempt && ((attempt) => onHostAttempt(name, attempt))),
    },
    bindPasswords,
    namedFileReader(NODE_FILES, problems),
    problems,
  );
  if (problems.length > 0) await Promise.all(Object.values(directories).map((directory) => directory.close()));
  throwIfProblems(source, problems);
  return directories;
}

async function loadBundles(
  config: Config,
  source: string,
  key: "trustAnchors" | "intermediates",
): Promise<Record<string, X509Certificate[]>> {
  const problems: ConfigProblem[] = [];
  const bundles = await profileCertificates(config, key, namedFileReader(NODE_FILES, problems), problems);
  throwIfProblems(source, problems);
  return bundles;
}

/** Each certificate profile's trust anchors. */
export function loadTrustAnchors(config: Config, source: string): Promise<Record<string, X509Certificate[]>> {
  return loadBundles(config, source, "trustAnchors");
}

/** Each certificate profile's intermediate CAs. */
export function loadIntermediates(config: Config, source: string): Promise<Record<string, X509Certificate[]>> {
  return loadBundles(config, source, "intermediates");
}

/**
 * Loads every CRL source once. A CRL file that cannot be read is a configuration error (a URL may just be down for
 * now, and is retried on its schedule).
 */
export async function loadCrls(crls: CrlStore | null, config: Config, source: string): Promise<void> {
  await crls?.refreshAll();
  const unreadable = (crls?.status() ?? []).filter(
    (state) => config.crlSources[state.name]?.file !== undefined && state.crl === null,
  );
  throwIfProblems(
    source,
    unreadable.map((state) => ({ path: `crlSources.${state.name}.file`, message: state.error ?? "not loaded" })),
  );
}

/** The CRL store of the configured sources, each loaded once; null when no profile checks revocation. */
export async function loadCrlStore(config: Config, source: string, log: Logger): Promise<CrlStore | null> {
  const crls = createCrlStore(config, { ...NODE_FILES, log });
  await loadCrls(crls, config, source);
  return crls;
}
