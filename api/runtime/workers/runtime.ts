/**
 * The Workers runtime: builds the Gate and the Hono app from the Worker's bindings, once per isolate, the way
 * api/runtime/node/server.ts does for Node. Only the directory adapter (WorkersLdapDirectory) and where things
 * come from differ: the config from a binding, secrets from Workers secrets, trust anchors inline, CRLs over
 * fetch() with no file reader.
 */
import type { Hono } from "hono";
import { ConfigError } from "../../config/load.ts";
import type { Config } from "../../config/schema.ts";
import { Gate } from "../../gate/gate.ts";
import { createTokenChecker } from "../../http/api-tokens.ts";
import { createApp, type Logger } from "../../http/app.ts";
import { unreachableFromCloudflare, WorkersLdapDirectory } from "../../ldap/workers-directory.ts";
import { observedDirectories } from "../../metrics/api-metrics.ts";
import { parseTrustAnchors } from "../../pki/certificate-chain.ts";
import { CrlStore } from "../../pki/crl-store.ts";
import type { X509Certificate } from "../../pki/x509.ts";
import { CONFIG_SOURCE, loadWorkerConfig, type WorkerEnv } from "./config.ts";
import { createJsonLineLogger, writeToConsole } from "../../../lib/json-lines.ts";

export interface WorkerRuntime {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- createApp's own variables type stays its business
  app: Hono<any>;
  gate: Gate;
  crls: CrlStore | null;
}

/** One JSON object a line on the console: Workers Logs and `wrangler tail` pick it up. */
export const consoleLogger: Logger = createJsonLineLogger(writeToConsole);

export async function buildWorkerRuntime(env: WorkerEnv, log: Logger = consoleLogger): Promise<WorkerRuntime> {
  const { config, secrets } = loadWorkerConfig(env);
  const trustAnchors = parseInlineBundles(config, "trustAnchors");
  const intermediates = parseInlineBundles(config, "intermediates");
  const directories: Record<string, WorkersLdapDirectory> = {};
  for (const [name, directory] of Object.entries(config.directories)) {
    const unreachable = directory.hosts.filter(unreachableFromCloudflare);
    if (unreachable.length > 0) {
      log({
        level: "warn",
        msg: "directory hosts a deployed Worker cannot reach (loopback or private addresses): fine for wrangler dev and tests only",
        directory: name,
        hosts: unreachable,
      });
    }
    directories[name] = new WorkersLdapDirectory({
      name,
      hosts: directory.hosts,
      mode: directory.mode,
      failbackAfterMs: directory.failbackAfterMs,
      hostDownForMs: directory.hostDownForMs,
      connectTimeoutMs: directory.connectTimeoutMs,
      operationTimeoutMs: directory.operationTimeoutMs,
      serviceBind: directory.bind
        ? { dn: directory.bind.dn, password: secrets.bindPasswords[name] as string }
        : undefined,
    });
  }
  const crlSources = Object.entries(config.crlSources).map(([name, crl]) => ({
    name,
    url: crl.url,
    refreshSeconds: crl.refreshSeconds,
  }));
  const usesRevocation = Object.values(config.authProfiles).some(
    (profile) => profile.type === "certificate" && profile.revocation,
  );
  // Per isolate: each isolate downloads and caches its own copies, with the same refresh and freshness rules as
  // Node. No readFile: `file` sources were refused with the configuration. fetch is wrapped because workerd's
  // must not be called detached from the global object.
  const crls =
    usesRevocation || crlSources.length > 0
      ? new CrlStore({ sources: crlSources, fetch: (input, init) => fetch(input, init), log })
      : null;
  const gate = new Gate({ config, directories, trustAnchors, intermediates, crls });
  const app = createApp({
    gate,
    tokens: await createTokenChecker(secrets.apiTokens),
    metricsTokens: await createTokenChecker([...secrets.apiTokens, ...secrets.metricsTokens]),
    directories: observedDirectories(config, directories),
    maxBodyBytes: config.api.maxBodyBytes,
    log,
  });
  return { app, gate, crls };
}

/** Each certificate profile's inline PEM bundle under `key` (files were refused with the configuration). */
function parseInlineBundles(config: Config, key: "trustAnchors" | "intermediates"): Record<string, X509Certificate[]> {
  const problems: string[] = [];
  const bundles: Record<string, X509Certificate[]> = {};
  for (const [name, profile] of Object.entries(config.authProfiles)) {
    if (profile.type !== "certificate") continue;
    const ref = profile[key];
    if (!ref || !("pem" in ref)) continue;
    const path = `authProfiles.${name}.${key}.pem`;
    try {
      bundles[name] = parseTrustAnchors(ref.pem, path);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (problems.length > 0) throw new ConfigError(CONFIG_SOURCE, problems);
  return bundles;
}
