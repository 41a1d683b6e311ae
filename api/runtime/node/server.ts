/**
 * The Node.js runtime: builds the ldapts directories from the configuration and serves the Hono app with
 * @hono/node-server. Used by the CLI entry point (main.ts), the demo and the tests.
 */
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { ConfigError } from "../../../lib/config/config-error.ts";
import { createJsonLineLogger, writeToStdout } from "../../../lib/json-lines.ts";
import { readConfigText, readNamedFile } from "../../../lib/node/read-config-file.ts";
import { parseConfig } from "../../config/load.ts";
import type { Config } from "../../config/schema.ts";
import type { Gate } from "../../gate/gate.ts";
import type { Logger } from "../../http/app.ts";
import { LdapDirectory } from "../../ldap/ldap-directory.ts";
import { composeApi } from "../compose.ts";

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
  gate: Gate;
  directories: Record<string, LdapDirectory>;
  close(): Promise<void>;
}

export const jsonLineLogger: Logger = createJsonLineLogger(writeToStdout);

export async function readConfigFile(path: string): Promise<Config> {
  return parseConfig(await readConfigText(path), path);
}

/** How often the Node runtime looks for CRL sources whose refresh period is over. */
const CRL_SCHEDULE_MS = 15_000;

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const source = options.source ?? "config";
  const log = options.log ?? jsonLineLogger;
  const { app, gate, directories, crls } = await composeApi(options.config, {
    source,
    env: options.env ?? process.env,
    log,
    readNamedFile,
    crlTransport: { readFile: (path) => readFile(path) },
    createDirectory: (name, directory, access) =>
      new LdapDirectory({
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
      }),
  });
  await crls?.refreshAll();
  // A CRL file that cannot be read is a configuration error (a URL may just be down for now).
  const unreadable = (crls?.status() ?? []).filter(
    (state) => options.config.crlSources[state.name]?.file !== undefined && state.crl === null,
  );
  if (unreadable.length > 0)
    throw new ConfigError(
      source,
      unreadable.map((state) => ({ path: `crlSources.${state.name}.file`, message: state.error ?? "not loaded" })),
    );
  const crlTimer = crls ? setInterval(() => void crls.refreshDue(), CRL_SCHEDULE_MS).unref() : undefined;
  const listen = options.listen ?? options.config.api.listen;

  const server = await new Promise<ServerType>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, hostname: listen.host, port: listen.port }, () => resolve(started));
    started.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    gate,
    directories,
    close: async () => {
      clearInterval(crlTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections would hold close() open; the API holds no state worth waiting for.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await Promise.all(Object.values(directories).map((directory) => directory.close()));
    },
  };
}
