/**
 * The Workers runtime: builds the Gate and the Hono app from the Worker's bindings, once per isolate, with the
 * composition the Node runtime uses (../compose.ts). Only the directory adapter (WorkersLdapDirectory) and where
 * things come from differ: the config from a binding, secrets from Workers secrets, trust anchors inline, CRLs
 * over fetch() with no file reader.
 */
import { createJsonLineLogger, writeToConsole, type Logger } from "../../../lib/json-lines.ts";
import { unreachableFromCloudflare, WorkersLdapDirectory } from "../../ldap/workers-directory.ts";
import { DurableObjectLimiterStore, type BruteForceNamespace } from "../../limiter/durable-object-store.ts";
import { composeApi, type ComposedApi } from "../compose.ts";
import { CONFIG_SOURCE, loadWorkerConfig, stringsOf, unsetWorkersSecret, type WorkerEnv } from "./config.ts";

export type WorkerRuntime = Omit<ComposedApi<WorkersLdapDirectory>, "directories" | "decisions">;

/** One JSON object a line on the console: Workers Logs and `wrangler tail` pick it up. */
export const consoleLogger: Logger = createJsonLineLogger(writeToConsole);

export async function buildWorkerRuntime(env: WorkerEnv, log: Logger = consoleLogger): Promise<WorkerRuntime> {
  const config = loadWorkerConfig(env);
  const { app, gate, crls } = await composeApi(config, {
    source: CONFIG_SOURCE,
    env: stringsOf(env),
    unsetSecret: unsetWorkersSecret,
    log,
    // No readNamedFile: file references were refused with the configuration. Per isolate, each isolate downloads
    // and caches its own CRLs, with the same refresh and freshness rules as Node. fetch is wrapped because
    // workerd's must not be called detached from the global object.
    crlTransport: { fetch: (input, init) => fetch(input, init) },
    limiterStores: {
      redis: {
        missing:
          "this runtime has no Redis store (a Worker cannot keep a connection between requests): use durable-object",
      },
      // loadWorkerConfig checked that the binding is a Durable Object namespace.
      "durable-object": (store) =>
        new DurableObjectLimiterStore({
          namespace: env[store.binding as string] as BruteForceNamespace,
          shards: store.shards,
          commandTimeoutMs: store.commandTimeoutMs,
        }),
    },
    createDirectory(name, directory, access) {
      const unreachable = directory.hosts.filter(unreachableFromCloudflare);
      if (unreachable.length > 0) {
        log({
          level: "warn",
          msg: "directory hosts a deployed Worker cannot reach (loopback or private addresses): fine for wrangler dev and tests only",
          directory: name,
          hosts: unreachable,
        });
      }
      return new WorkersLdapDirectory({
        name,
        hosts: directory.hosts,
        mode: directory.mode,
        failbackAfterMs: directory.failbackAfterMs,
        hostDownForMs: directory.hostDownForMs,
        connectTimeoutMs: directory.connectTimeoutMs,
        operationTimeoutMs: directory.operationTimeoutMs,
        serviceBind: directory.bind ? { dn: directory.bind.dn, password: access.bindPassword as string } : undefined,
      });
    },
  });
  return { app, gate, crls };
}
