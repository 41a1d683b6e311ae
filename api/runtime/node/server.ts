/**
 * The Node.js runtime: builds the ldapts directories from the configuration and serves the Hono app with
 * @hono/node-server, with explicit limits for slow clients (api.headersTimeoutMs, requestTimeoutMs,
 * keepAliveTimeoutMs), a probe of every directory host at start, reloads (live-app.ts) and a graceful stop.
 * Used by the CLI entry point (main.ts), the demo and the tests.
 */
import { readFile } from "node:fs/promises";
import type { Server, ServerOptions } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { ConfigError, parseConfig, resolveSecrets } from "../../config/load.ts";
import { readConfigText } from "../../config/read-file.ts";
import type { Config } from "../../config/schema.ts";
import { Gate } from "../../core/gate.ts";
import { createTokenChecker } from "../../http/api-tokens.ts";
import { createApp, type Logger } from "../../http/app.ts";
import { LdapDirectory, type HostAttempt } from "../../ldap/ldap-directory.ts";
import { observedDirectories } from "../../metrics/api-metrics.ts";
import { parseTrustAnchors } from "../../pki/certificate-chain.ts";
import { CrlStore } from "../../pki/crl-store.ts";
import type { X509Certificate } from "../../pki/x509.ts";
import { countRequestsInFlight, drainHttpServer, LiveApp } from "./live-app.ts";
import { probeDirectoriesAtStart } from "./startup-probe.ts";

export interface ApiServerOptions {
  config: Config;
  /** Where the configuration came from, for error messages. */
  source?: string;
  env?: Readonly<Record<string, string | undefined>>;
  /** Override the configured listen address (tests use port 0). */
  listen?: { host: string; port: number };
  log?: Logger;
}

export interface ApiServer {
  url: string;
  /** The current configuration's gate and directories (a reload replaces them). */
  readonly gate: Gate;
  readonly directories: Record<string, LdapDirectory>;
  /** Settles when the start-up probe of every directory host has been logged; the API serves meanwhile. */
  probed: Promise<void>;
  /**
   * Serves `config` from now on: requests in flight finish on the old gate, which then closes. Throws (a
   * ConfigError, for what only shows when built: unreadable files, missing secrets) and keeps the old one.
   */
  reload(config: Config): Promise<void>;
  /** Stops accepting, lets decisions in flight finish within api.shutdownGraceMs, then closes. */
  close(): Promise<void>;
}

export const jsonLineLogger: Logger = (record) => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
};

export async function readConfigFile(path: string): Promise<Config> {
  return parseConfig(await readConfigText(path), path);
}

/** Builds one LdapDirectory per LDAP server profile; reads the CA bundles. */
export async function createDirectories(
  config: Config,
  bindPasswords: Record<string, string>,
  source: string,
  onHostAttempt?: (directory: string, attempt: HostAttempt) => void,
): Promise<Record<string, LdapDirectory>> {
  const problems: string[] = [];
  const directories: Record<string, LdapDirectory> = {};
  for (const [name, directory] of Object.entries(config.directories)) {
    let ca: string | undefined;
    if (directory.tls.caFile) {
      try {
        ca = await readFile(directory.tls.caFile, "utf8");
        if (!ca.includes("-----BEGIN CERTIFICATE-----"))
          problems.push(`directories.${name}.tls.caFile: ${directory.tls.caFile} holds no PEM certificate`);
      } catch (error) {
        problems.push(
          `directories.${name}.tls.caFile: cannot read ${directory.tls.caFile} (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        );
      }
    }
    directories[name] = new LdapDirectory({
      name,
      hosts: directory.hosts,
      mode: directory.mode,
      failbackAfterMs: directory.failbackAfterMs,
      hostDownForMs: directory.hostDownForMs,
      security: {
        startTls: directory.startTls,
        ca,
        serverName: directory.tls.serverName,
        connectTimeoutMs: directory.connectTimeoutMs,
        operationTimeoutMs: directory.operationTimeoutMs,
      },
      serviceBind: directory.bind ? { dn: directory.bind.dn, password: bindPasswords[name] as string } : undefined,
      maxConnections: directory.maxConnections,
      ...(onHostAttempt ? { onHostAttempt: (attempt: HostAttempt) => onHostAttempt(name, attempt) } : {}),
    });
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return directories;
}

/** Reads each certificate profile's PEM bundle under `key` (a file or inline PEM). */
async function loadProfileCertificates(
  config: Config,
  source: string,
  key: "trustAnchors" | "intermediates",
): Promise<Record<string, X509Certificate[]>> {
  const problems: string[] = [];
  const bundles: Record<string, X509Certificate[]> = {};
  for (const [name, profile] of Object.entries(config.authProfiles)) {
    if (profile.type !== "certificate") continue;
    const ref = profile[key];
    if (!ref) continue;
    try {
      const pem = "file" in ref ? await readFile(ref.file, "utf8") : ref.pem;
      bundles[name] = parseTrustAnchors(pem, "file" in ref ? ref.file : "pem");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      problems.push(
        `authProfiles.${name}.${key}: ${code ? `cannot read ${(ref as { file: string }).file} (${code})` : (error as Error).message}`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  return bundles;
}

/** Each certificate profile's trust anchors. */
export function loadTrustAnchors(config: Config, source: string): Promise<Record<string, X509Certificate[]>> {
  return loadProfileCertificates(config, source, "trustAnchors");
}

/** Each certificate profile's intermediate CAs. */
export function loadIntermediates(config: Config, source: string): Promise<Record<string, X509Certificate[]>> {
  return loadProfileCertificates(config, source, "intermediates");
}

/**
 * The CRL store of the configured sources, each loaded once; null when no profile checks revocation. A CRL file
 * that cannot be read is a configuration error (a URL may just be down for now).
 */
export async function loadCrlStore(config: Config, source: string, log: Logger): Promise<CrlStore | null> {
  const crlSources = Object.entries(config.crlSources).map(([name, crl]) => ({
    name,
    url: crl.url,
    file: crl.file,
    refreshSeconds: crl.refreshSeconds,
  }));
  const usesRevocation = Object.values(config.authProfiles).some(
    (profile) => profile.type === "certificate" && profile.revocation,
  );
  if (!usesRevocation && crlSources.length === 0) return null;
  const crls = new CrlStore({ sources: crlSources, readFile: (path) => readFile(path), log });
  await crls.refreshAll();
  const unreadable = crls
    .status()
    .filter((state) => config.crlSources[state.name]?.file !== undefined && state.crl === null);
  if (unreadable.length > 0)
    throw new ConfigError(
      source,
      unreadable.map((state) => `crlSources.${state.name}.file: ${state.error ?? "not loaded"}`),
    );
  return crls;
}

/** How often the Node runtime looks for CRL sources whose refresh period is over. */
const CRL_SCHEDULE_MS = 15_000;

/** One configuration built into a served app: what a reload replaces as a whole. */
interface NodeRuntime {
  app: ReturnType<typeof createApp>;
  config: Config;
  gate: Gate;
  directories: Record<string, LdapDirectory>;
  close(): Promise<void>;
}

/** Builds the gate and the app from a configuration; throws ConfigError for what only shows when built. */
async function buildNodeRuntime(
  config: Config,
  env: Readonly<Record<string, string | undefined>>,
  source: string,
  log: Logger,
): Promise<NodeRuntime> {
  const secrets = resolveSecrets(config, env, source);
  const trustAnchors = await loadTrustAnchors(config, source);
  const intermediates = await loadIntermediates(config, source);
  const directories = await createDirectories(config, secrets.bindPasswords, source);
  const crls = await loadCrlStore(config, source, log);
  const crlTimer = crls ? setInterval(() => void crls.refreshDue(), CRL_SCHEDULE_MS).unref() : undefined;
  const gate = new Gate({ config, directories, trustAnchors, intermediates, crls });
  const app = createApp({
    gate,
    tokens: await createTokenChecker(secrets.apiTokens),
    metricsTokens: await createTokenChecker([...secrets.apiTokens, ...secrets.metricsTokens]),
    directories: observedDirectories(config, directories),
    maxBodyBytes: config.api.maxBodyBytes,
    log,
  });
  return {
    app,
    config,
    gate,
    directories,
    close: async () => {
      clearInterval(crlTimer);
      await Promise.all(Object.values(directories).map((directory) => directory.close()));
    },
  };
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const source = options.source ?? "config";
  const log = options.log ?? jsonLineLogger;
  const env = options.env ?? process.env;
  const first = await buildNodeRuntime(options.config, env, source, log);
  const live = new LiveApp(first);
  const listen = options.listen ?? options.config.api.listen;

  const server = await new Promise<ServerType>((resolve, reject) => {
    const started = serve(
      {
        fetch: live.fetch,
        hostname: listen.host,
        port: listen.port,
        serverOptions: httpServerOptions(options.config.api),
      },
      () => resolve(started),
    );
    started.once("error", reject);
  });
  const http = server as Server;
  applyHttpTimeouts(http, options.config.api);
  const requestsInFlight = countRequestsInFlight(http);
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const probe = (runtime: NodeRuntime): Promise<void> =>
    probeDirectoriesAtStart(runtime.config, runtime.directories, log).catch((error: unknown) =>
      log({ level: "error", msg: "directory probe failed", error: String(error) }),
    );
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    get gate() {
      return live.current.gate;
    },
    get directories() {
      return live.current.directories;
    },
    probed: probe(first),
    reload: async (config) => {
      const previous = live.current.config;
      const next = await buildNodeRuntime(config, env, source, log);
      live.swap(next);
      applyHttpTimeouts(http, config.api);
      if (JSON.stringify(config.api.listen) !== JSON.stringify(previous.api.listen))
        log({ level: "warn", msg: "api.listen changed: still listening on the old address until a restart" });
      void probe(next);
    },
    close: () =>
      (stopping ??= (async () => {
        await drainHttpServer(http, requestsInFlight, live.current.config.api.shutdownGraceMs);
        await live.close();
      })()),
  };
}

/** node:http's limits for slow or idle clients, from api.* (the relay's slow-client discipline, applied to the API). */
function httpServerOptions(api: Config["api"]): ServerOptions {
  return {
    headersTimeout: api.headersTimeoutMs,
    requestTimeout: api.requestTimeoutMs,
    keepAliveTimeout: api.keepAliveTimeoutMs,
    // Node looks for requests past their deadline this often (default 30 s, which would stretch a 10 s limit).
    connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(api.headersTimeoutMs / 4))),
  };
}

/** The same limits on a running server (a reload may change them; the checking interval stays). */
function applyHttpTimeouts(server: Server, api: Config["api"]): void {
  server.headersTimeout = api.headersTimeoutMs;
  server.requestTimeout = api.requestTimeoutMs;
  server.keepAliveTimeout = api.keepAliveTimeoutMs;
}
