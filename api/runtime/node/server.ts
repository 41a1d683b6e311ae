/**
 * The Node.js runtime: builds the ldapts directories from the configuration and serves the Hono app with
 * @hono/node-server, with explicit limits for slow clients (api.headersTimeoutMs, requestTimeoutMs,
 * keepAliveTimeoutMs), a probe of every directory host at start, reloads (live-app.ts) and a graceful stop.
 * Used by the CLI entry point (main.ts), the demo and the tests.
 */
import type { Server, ServerOptions } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import type { Decider, MtaFactsDecider } from "../../../contract/decider.ts";
import type { ListenerPolicy } from "../../../contract/listener-policy.ts";
import { createJsonLineLogger, writeToStdout } from "../../../lib/json-lines.ts";
import { readConfigText } from "../../../lib/node/read-config-file.ts";
import { parseConfig } from "../../config/load.ts";
import type { Config } from "../../config/schema.ts";
import type { Gate } from "../../gate/gate.ts";
import { InProcessDecider } from "../../decisions/in-process-decider.ts";
import type { Logger } from "../../http/app.ts";
import type { LdapDirectory } from "../../ldap/ldap-directory.ts";
import { composeApi } from "../compose.ts";
import { RedisLimiterStore } from "../../limiter/redis-store.ts";
import { readSecret } from "../../../lib/config/secret-ref.ts";
import { loadCrls, NODE_FILES, nodeDirectory } from "./loaders.ts";
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
  /**
   * Starts the configuration's protocol fronts (`fronts:`) over an in-process Decider, and again after a reload
   * that changes them. The API cannot import a front (the dependency rule): the `smtpgate serve` command passes
   * fronts/start-fronts.ts; without it, configured fronts are not served and a warning says so.
   */
  startFronts?: StartFronts;
}

export type StartFronts = (
  fronts: Config["fronts"],
  decider: Decider & MtaFactsDecider,
  log: Logger,
  /** The listener's policy as it is now (the Postfix policy server matches the client in its host access table). */
  listenerPolicy: (name: string) => ListenerPolicy | null,
) => Promise<{ close(): Promise<void> }>;

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

export const jsonLineLogger: Logger = createJsonLineLogger(writeToStdout);

export async function readConfigFile(path: string): Promise<Config> {
  return parseConfig(await readConfigText(path), path);
}

/** How often the Node runtime looks for CRL sources whose refresh period is over. */
const CRL_SCHEDULE_MS = 15_000;

/** One configuration built into a served app: what a reload replaces as a whole. */
interface NodeRuntime {
  app: Awaited<ReturnType<typeof composeApi>>["app"];
  config: Config;
  gate: Gate;
  /** The fronts' Decider over this configuration's gate (same verdicts, log lines and metrics as HTTP). */
  decider: InProcessDecider;
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
  const { app, decisions, gate, directories, crls } = await composeApi(config, {
    source,
    env,
    log,
    ...NODE_FILES,
    createDirectory: (name, directory, access) => nodeDirectory(name, directory, access),
    limiterStores: {
      redis: (store, storeEnv) =>
        new RedisLimiterStore({
          url: store.url ?? "",
          password: store.password ? readSecret(store.password, storeEnv) : undefined,
          keyPrefix: store.keyPrefix,
          commandTimeoutMs: store.commandTimeoutMs,
        }),
      "durable-object": {
        missing:
          "a Durable Object store exists only on Cloudflare Workers: use memory (one process) or redis (replicas)",
      },
    },
  });
  await loadCrls(crls, config, source);
  const crlTimer = crls ? setInterval(() => void crls.refreshDue(), CRL_SCHEDULE_MS).unref() : undefined;
  return {
    app,
    config,
    gate,
    decider: new InProcessDecider(decisions),
    directories,
    close: async () => {
      clearInterval(crlTimer);
      await Promise.all(Object.values(directories).map((directory) => directory.close()));
      await gate.bruteForce?.close();
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
  // The fronts ask whichever configuration is in force, as HTTP requests do.
  const liveDecider: Decider & MtaFactsDecider = {
    decideTls: (request, context) => live.current.decider.decideTls(request, context),
    decideAuth: (request, context) => live.current.decider.decideAuth(request, context),
    decideCertificateFacts: (request, context) => live.current.decider.decideCertificateFacts(request, context),
    decideIdentity: (request, context) => live.current.decider.decideIdentity(request, context),
  };
  const startFronts = async (config: Config): Promise<{ close(): Promise<void> } | undefined> => {
    if (config.fronts.dovecotSasl.length === 0 && config.fronts.postfixPolicy.length === 0) return undefined;
    if (options.startFronts)
      return options.startFronts(config.fronts, liveDecider, log, (name) => live.current.gate.listenerPolicy(name));
    log({
      level: "warn",
      msg: "fronts: configured but not served by this entry point; start `smtpgate api` (or `smtpgate serve`)",
    });
    return undefined;
  };
  let fronts = await startFronts(options.config).catch(async (error: unknown) => {
    await drainHttpServer(http, requestsInFlight, 0);
    await live.close();
    throw error;
  });
  /** A reload that changes `fronts:` restarts them; when the new ones cannot start, the old ones come back. */
  const restartFronts = async (config: Config, previous: Config): Promise<void> => {
    if (JSON.stringify(config.fronts) === JSON.stringify(previous.fronts)) return;
    await fronts?.close();
    fronts = undefined;
    try {
      fronts = await startFronts(config);
    } catch (error) {
      log({ level: "error", msg: "fronts: the new ones did not start; the previous ones serve", error: String(error) });
      fronts = await startFronts(previous);
    }
  };
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
      await restartFronts(config, previous);
      if (JSON.stringify(config.api.listen) !== JSON.stringify(previous.api.listen))
        log({ level: "warn", msg: "api.listen changed: still listening on the old address until a restart" });
      void probe(next);
    },
    close: () =>
      (stopping ??= (async () => {
        await fronts?.close();
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
