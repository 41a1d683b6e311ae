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
 * GET /healthz and /metrics on the health port. close() stops accepting at once and gives open sessions
 * limits.shutdownGraceMs to finish their transaction.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { ApiClient } from "../contract/api-client.ts";
import type { Decider } from "../contract/decider.ts";
import type { RelayConfig } from "./config.ts";
import type { RelayContext } from "./context.ts";
import { Delivery } from "./delivery.ts";
import { ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import { jsonLines, type Logger } from "./log.ts";
import { createRelayMetrics, METRICS_CONTENT_TYPE, type RelayMetrics } from "./metrics.ts";
import { startSmtpListener } from "./server.ts";
import { SessionRegistry } from "./session.ts";
import type { AdaptedSmtpServer } from "./smtp-server-adapter.ts";
import { createUpstreamTransport } from "./upstream.ts";

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
}

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const { config } = options;
  const log = options.log ?? jsonLines;
  const metrics = createRelayMetrics();
  const api = new ApiClient({
    url: config.api.url,
    token: options.apiToken,
    timeoutMs: config.api.timeoutMs,
    connections: config.api.connections,
  });
  const policy = new ListenerPolicyHolder(api, config.listener, log, {
    onRefreshFailure: (stage) => {
      metrics.policyRefreshFailures.inc();
      if (stage === "fetch") metrics.apiErrors.inc({ call: "policy" });
    },
  });
  try {
    await policy.load();
  } catch (error) {
    await api.close();
    throw new Error(
      `cannot load the policy of listener "${config.listener}" from ${config.api.url}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  policy.startRefreshing(config.api.policyRefreshSeconds);

  const transport = createUpstreamTransport(config, options.upstreamCa);
  const servers: AdaptedSmtpServer[] = [];
  /** Set by close(): new transactions get 421 4.3.2 from then on. */
  let shuttingDown = false;
  const relay: RelayContext = {
    config,
    policy,
    decider: options.decider ?? api,
    metrics,
    sessions: new SessionRegistry(),
    delivery: new Delivery({ transport, config, metrics }),
    log,
    isShuttingDown: () => shuttingDown,
    closeSession: (session) => servers.forEach((server) => server.closeSession(session)),
  };

  const ports: Relay["ports"] = {};
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

  let health: HttpServer | undefined;
  if (config.listen.health) {
    health = createHttpServer(function onHealthRequest(request, response) {
      const path = (request.url ?? "").split("?")[0];
      if (request.method === "GET" && path === "/healthz") {
        // 503 while stopping: a load balancer stops sending new clients during the grace period.
        response.writeHead(shuttingDown ? 503 : 200, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            status: shuttingDown ? "stopping" : "ok",
            listener: config.listener,
            policyRefreshError: policy.lastError,
          }),
        );
        return;
      }
      if (request.method === "GET" && path === "/metrics") {
        response.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
        response.end(metrics.registry.render());
        return;
      }
      response.writeHead(404).end();
    });
    const address = config.listen.health;
    await new Promise<void>((resolve) => health?.listen(address.port, address.host, resolve));
    ports.health = (health.address() as AddressInfo).port;
  }

  log({
    level: "info",
    msg: "relay listening",
    listener: config.listener,
    ports,
    upstream: `${config.upstream.host}:${config.upstream.port}`,
  });

  const openSessions = (): number => servers.reduce((count, server) => count + server.openSessions, 0);

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    policy.stopRefreshing();
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
    transport.close();
    await api.close();
    log({ level: "info", msg: "relay stopped", listener: config.listener });
  };

  let stopped: Promise<void> | undefined;
  return {
    ports,
    policy,
    metrics,
    close: () => (stopped ??= shutdown()),
  };
}
