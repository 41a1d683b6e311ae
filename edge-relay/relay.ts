/**
 * The edge relay: smtp-server in front, the decision API behind, nodemailer towards the upstream MTA. This file
 * only composes the parts:
 *
 * - mail-flow/checks/*: the stage lists (connect, starttls, auth, mail, rcpt, data), pure, shared with the other
 *   fronts; server.ts binds smtp-server's hooks to them, decisions.ts asks the Decider at STARTTLS and AUTH.
 * - delivery.ts: DATA streamed to the upstream, 250 only after it accepted (refused-recipients.ts: the DSN for
 *   recipients it refused while accepting others).
 * - smtp-server-adapter.ts: smtp-server's behaviour adjusted for these server instances only, each override
 *   written down.
 * - session.ts: what the relay keeps per session; contract/listener-policy-holder.ts: the listener's policy from the API.
 *
 * Per session (docs/edge-relay.md): the sender group is chosen at connect time from the host access table and its
 * mail-flow policy governs the session. Every answer the API cannot give in time is a 454, never an accept.
 * GET /healthz and /metrics on the health port (health.ts: 503 when the upstream is unreachable). The start
 * waits for the listener policy (startup.ts). reload() takes a new configuration and TLS key/certificate without
 * dropping sessions. close() stops accepting at once and gives open sessions limits.shutdownGraceMs to finish
 * their transaction.
 */
import type { Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createSecureContext } from "node:tls";
import { isDeepStrictEqual } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiClient } from "../contract/api-client.ts";
import type { Decider } from "../contract/decider.ts";
import type { RelayConfig } from "./config.ts";
import type { RelayContext } from "./context.ts";
import { Delivery } from "./delivery.ts";
import { ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import { jsonLines, type Logger } from "./log.ts";
import { createHealthServer, logUpstreamChange, UpstreamProbe } from "./health.ts";
import { createRelayMetrics, type RelayMetrics } from "./metrics.ts";
import { startSmtpListener } from "./server.ts";
import { SessionRegistry } from "./session.ts";
import type { RelaySettings } from "./settings.ts";
import { loadPolicyWhenAvailable, type StartupBackoff } from "./startup.ts";
import type { AdaptedSmtpServer } from "./smtp-server-adapter.ts";
import { createUpstreamPool } from "./upstream.ts";

export interface RelayOptions {
  config: RelayConfig;
  /** The API token (resolved from the environment by the caller). */
  apiToken: string;
  tls: { key: string; cert: string };
  /** PEM CA bundle for the upstream's certificate. */
  upstreamCa?: string | undefined;
  log?: Logger;
  /**
   * Who decides at STARTTLS and AUTH; default: the decision API at config.api.url (which also serves the listener
   * policy, whatever decides). Tests give a fake one.
   */
  decider?: Decider;
  /** Aborts the wait for the listener policy at start (startRelay then rejects with the signal's reason). */
  signal?: AbortSignal;
  /** How the policy load is retried while the API cannot answer (default: 500 ms doubling up to 30 s). */
  startupBackoff?: StartupBackoff;
}

export interface Relay {
  ports: { starttls?: number; implicitTls?: number; health?: number };
  policy: ListenerPolicyHolder;
  metrics: RelayMetrics;
  /**
   * Stops the relay: no new connections from the first moment; sessions in a mail transaction may finish it
   * (a new transaction, AUTH or STARTTLS gets 421 4.3.2); after limits.shutdownGraceMs the sessions still open
   * get `421 4.3.2 Service shutting down, try again later` and are closed. Calling it again returns the same
   * promise.
   */
  close(): Promise<void>;
  /**
   * Takes a new configuration and TLS key/certificate (SIGHUP: settings.ts) without dropping a session. Refused
   * (rejects, nothing changed) when the key and certificate make no TLS context, or while stopping. In force at
   * once: `tls` (new handshakes; sessions already in TLS keep theirs), `api` (a new client; requests in flight
   * finish on the old one), `limits` (new sessions; smtp-server's maxClients and idle timeout at once). The
   * RELOAD_NEEDS_RESTART settings keep their running value and are named in the outcome. The listener policy is
   * fetched again at once.
   */
  reload(settings: RelaySettings): Promise<ReloadOutcome>;
}

/** Settings a running relay cannot change: its sockets, its name in greetings, its upstream connections. */
export const RELOAD_NEEDS_RESTART = ["listener", "hostname", "listen", "upstream"] as const;

export interface ReloadOutcome {
  /** The sections whose new values are in force: "tls", "api", "limits". */
  applied: string[];
  /** RELOAD_NEEDS_RESTART keys that differ in the new configuration: still the old values. */
  needRestart: string[];
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  // The configuration in force, the relay's own copy: reload() replaces its reloadable sections in place, so every
  // part that reads `config.limits.x` or `config.api.x` at its moment of use sees the new value from then on.
  const config: RelayConfig = { ...options.config };
  const log = options.log ?? jsonLines;
  const metrics = createRelayMetrics();
  let apiToken = options.apiToken;
  const apiClient = (): ApiClient =>
    new ApiClient({
      url: config.api.url,
      token: apiToken,
      timeoutMs: config.api.timeoutMs,
      connections: config.api.connections,
    });
  let api = apiClient();
  // What the hooks call: the API client in force (a reload may replace it), unless a test gave its own Decider.
  const decider: Decider = options.decider ?? {
    decideTls: (request, context) => api.decideTls(request, context),
    decideAuth: (request, context) => api.decideAuth(request, context),
  };
  const policy = new ListenerPolicyHolder(api, config.listener, log, {
    onRefreshFailure: (stage) => {
      metrics.policyRefreshFailures.inc();
      if (stage === "fetch") metrics.apiErrors.inc({ call: "policy" });
    },
  });
  // The health port opens first: while the relay waits for the API, /livez says it is alive (an orchestrator must
  // not restart it for a dependency) and /healthz answers 503 "starting".
  const pool = createUpstreamPool(config, options.upstreamCa);
  /** Set by close(): new transactions get 421 4.3.2 from then on. */
  let shuttingDown = false;
  let started = false;
  const ports: Relay["ports"] = {};
  const upstreamName = `${config.upstream.host}:${config.upstream.port}`;
  const upstream = new UpstreamProbe(() => pool.verify(), logUpstreamChange(log, upstreamName));
  upstream.start(config.upstream.probeIntervalSeconds);
  let health: HttpServer | undefined;
  if (config.listen.health) {
    health = createHealthServer({
      listener: config.listener,
      policy,
      upstream,
      metrics,
      isShuttingDown: () => shuttingDown,
      isStarting: () => !started,
    });
    const address = config.listen.health;
    await new Promise<void>((resolve) => health?.listen(address.port, address.host, resolve));
    ports.health = (health.address() as AddressInfo).port;
  }
  try {
    await loadPolicyWhenAvailable(policy, { listener: config.listener, apiUrl: config.api.url }, log, {
      signal: options.signal,
      backoff: options.startupBackoff,
    });
  } catch (error) {
    upstream.stop();
    await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
    pool.close();
    await api.close();
    throw error;
  }
  policy.startRefreshing(config.api.policyRefreshSeconds);
  started = true;

  const servers: AdaptedSmtpServer[] = [];
  const relay: RelayContext = {
    config,
    policy,
    decider,
    metrics,
    sessions: new SessionRegistry(),
    delivery: new Delivery({ pool, config, metrics, upstreamCa: options.upstreamCa }),
    log,
    isShuttingDown: () => shuttingDown,
    closeSession: (session) => servers.forEach((server) => server.closeSession(session)),
  };

  if (config.listen.starttls) {
    const { server, port } = await startSmtpListener(relay, false, options.tls, config.listen.starttls);
    servers.push(server);
    ports.starttls = port;
  }
  if (config.listen.implicitTls) {
    const { server, port } = await startSmtpListener(relay, true, options.tls, config.listen.implicitTls);
    servers.push(server);
    ports.implicitTls = port;
  }

  log({
    level: "info",
    msg: "relay listening",
    listener: config.listener,
    ports,
    upstream: upstreamName,
  });

  const openSessions = (): number => servers.reduce((count, server) => count + server.openSessions, 0);

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    policy.stopRefreshing();
    upstream.stop();
    const graceMs = config.limits.shutdownGraceMs;
    log({
      level: "info",
      msg: "relay stopping: no new connections; open sessions may finish their mail transaction",
      listener: config.listener,
      openSessions: openSessions(),
      graceMs,
    });
    // Stop accepting at once: the listening sockets close and the kernel refuses new connections. (smtp-server's
    // own close() would do that too, but it also answers every command from then on with 421 at once: no
    // session could finish.)
    for (const server of servers) server.stopListening();
    const deadline = Date.now() + graceMs;
    while (openSessions() > 0 && Date.now() < deadline) await sleep(Math.max(0, Math.min(25, deadline - Date.now())));
    const left = openSessions();
    if (left > 0)
      log({
        level: "warn",
        msg: "relay stopping: grace period over, closing the sessions left with 421 4.3.2",
        listener: config.listener,
        openSessions: left,
        messagesStreaming: relay.delivery.messagesStreaming,
      });
    relay.delivery.abortStreaming();
    // smtp-server's close(): handshakes in progress are dropped, and every session left gets "421 Server
    // shutting down" (rewritten to 421 4.3.2 Service shutting down, try again later) and is closed.
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
    pool.close();
    await api.close();
    log({ level: "info", msg: "relay stopped", listener: config.listener });
  };

  let tlsInForce = options.tls;
  const reload = async (next: RelaySettings): Promise<ReloadOutcome> => {
    if (shuttingDown) throw new Error("the relay is stopping");
    // Refused before anything changes: a key that does not match its certificate, or no PEM at all.
    createSecureContext({ ...next.tls, minVersion: next.config.tls.minVersion });
    const applied: string[] = [];
    const needRestart = RELOAD_NEEDS_RESTART.filter((key) => !isDeepStrictEqual(config[key], next.config[key]));
    if (!isDeepStrictEqual(tlsInForce, next.tls) || !isDeepStrictEqual(config.tls, next.config.tls)) {
      for (const server of servers) server.updateSecureContext({ ...next.tls, minVersion: next.config.tls.minVersion });
      tlsInForce = next.tls;
      applied.push("tls");
    }
    if (!isDeepStrictEqual(config.api, next.config.api) || apiToken !== next.apiToken) {
      const { policyRefreshSeconds, ...client } = next.config.api;
      const { policyRefreshSeconds: runningRefresh, ...runningClient } = config.api;
      config.api = next.config.api;
      if (!isDeepStrictEqual(client, runningClient) || apiToken !== next.apiToken) {
        const previous = api;
        apiToken = next.apiToken;
        api = apiClient();
        policy.useApi(api);
        void previous.close();
      }
      if (policyRefreshSeconds !== runningRefresh) policy.startRefreshing(policyRefreshSeconds);
      applied.push("api");
    }
    if (!isDeepStrictEqual(config.limits, next.config.limits)) {
      config.limits = next.config.limits;
      for (const server of servers) server.applyLimits(config.limits);
      applied.push("limits");
    }
    config.tls = next.config.tls;
    const outcome = { applied, needRestart };
    log({ level: "info", msg: "configuration reloaded", listener: config.listener, ...outcome });
    if (needRestart.length > 0)
      log({
        level: "warn",
        msg: "configuration reloaded, but these settings changed and need a restart: the running values stay",
        listener: config.listener,
        settings: needRestart,
      });
    await policy.refresh();
    return outcome;
  };
  let reloading = Promise.resolve<unknown>(undefined);

  let stopped: Promise<void> | undefined;
  return {
    ports,
    policy,
    metrics,
    close: () => (stopped ??= shutdown()),
    // One reload at a time, in the order asked.
    reload(next) {
      const done = reloading.then(() => reload(next));
      reloading = done.catch(() => undefined);
      return done;
    },
  };
}
