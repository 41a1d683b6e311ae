/**
 * The relay's health port: GET /healthz, GET /livez and GET /metrics. /healthz says what a load balancer (or a
 * readiness probe) needs to know, from state kept up to date in the background, never from a check per request:
 *
 * - 503 `stopping` once close() began (no new clients during the grace period);
 * - 503 `upstream-unavailable` when the last probe of the upstream MTA failed: every message would get 451, so
 *   clients are better sent to another relay. The probe (UpstreamProbe) is nodemailer's verify() on the
 *   relay's own transport settings (connect, greeting, EHLO, STARTTLS where configured, QUIT) every
 *   `upstream.probeIntervalSeconds`;
 * - 200 `ok` otherwise. A failing decision API is named in the body (`dependencies.api`, from the last policy
 *   refresh) but keeps 200: the relay goes on with its last good policy, and sessions that need a decision get
 *   454 until the API is back, which another relay (same API) would not do better.
 *
 * /livez is for liveness probes: 200 as long as the process answers (a restart cures no dependency).
 */
import { createServer, type Server } from "node:http";
import type { ListenerPolicyHolder } from "../contract/listener-policy-holder.ts";
import type { Logger } from "./log.ts";
import { METRICS_CONTENT_TYPE, type RelayMetrics } from "./metrics.ts";
import { printable } from "./printable.ts";

export interface ProbeState {
  /** null until the first probe has answered. */
  readonly reachable: boolean | null;
  readonly error: string | null;
  readonly checkedAt: string | null;
}

/** The upstream's reachability, probed on a timer (one probe at a time) and cached. */
export class UpstreamProbe {
  readonly #verify: () => Promise<unknown>;
  readonly #onChange: (state: ProbeState, was: boolean | null) => void;
  #state: ProbeState = { reachable: null, error: null, checkedAt: null };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;

  constructor(verify: () => Promise<unknown>, onChange: (state: ProbeState, was: boolean | null) => void) {
    this.#verify = verify;
    this.#onChange = onChange;
  }

  get state(): ProbeState {
    return this.#state;
  }

  /** Probes now and then every `everySeconds` (0: never; the state stays unknown). */
  start(everySeconds: number): void {
    this.stop();
    if (everySeconds <= 0) return;
    void this.probe();
    this.#timer = setInterval(() => void this.probe(), everySeconds * 1000).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One probe (or the one already running). */
  probe(): Promise<void> {
    this.#running ??= this.#verify()
      .then(
        () => this.#settle(true, null),
        (error: unknown) => this.#settle(false, printable((error as Error).message ?? String(error), 200)),
      )
      .finally(() => (this.#running = null));
    return this.#running;
  }

  #settle(reachable: boolean, error: string | null): void {
    const was = this.#state.reachable;
    this.#state = { reachable, error, checkedAt: new Date().toISOString() };
    if (was !== reachable) this.#onChange(this.#state, was);
  }
}

export interface HealthSources {
  listener: string;
  policy: ListenerPolicyHolder;
  upstream: UpstreamProbe;
  metrics: RelayMetrics;
  isShuttingDown(): boolean;
  /** The relay is still waiting for its listener policy (it does not listen for SMTP yet). */
  isStarting(): boolean;
}

/** The body of GET /healthz and its status code. */
export function healthReport(sources: HealthSources): { code: number; body: Record<string, unknown> } {
  const upstream = sources.upstream.state;
  const status = sources.isShuttingDown()
    ? "stopping"
    : sources.isStarting()
      ? "starting"
      : upstream.reachable === false
        ? "upstream-unavailable"
        : "ok";
  return {
    code: status === "ok" ? 200 : 503,
    body: {
      status,
      listener: sources.listener,
      policyRefreshError: sources.policy.lastError,
      dependencies: {
        api: { ok: sources.policy.lastError === null, error: sources.policy.lastError },
        upstream: { ok: upstream.reachable, error: upstream.error, checkedAt: upstream.checkedAt },
      },
    },
  };
}

export function createHealthServer(sources: HealthSources): Server {
  return createServer(function onHealthRequest(request, response) {
    const path = (request.url ?? "").split("?")[0];
    if (request.method === "GET" && path === "/healthz") {
      const { code, body } = healthReport(sources);
      response.writeHead(code, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
      return;
    }
    if (request.method === "GET" && path === "/livez") {
      // Liveness: the process answers. Never 503 for a dependency (restarting the relay would not bring it back).
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ status: "alive", listener: sources.listener }));
      return;
    }
    if (request.method === "GET" && path === "/metrics") {
      response.writeHead(200, { "content-type": METRICS_CONTENT_TYPE });
      response.end(sources.metrics.registry.render());
      return;
    }
    response.writeHead(404).end();
  });
}

/** The log line for a change of the upstream's reachability. */
export function logUpstreamChange(log: Logger, upstream: string) {
  return function onUpstreamChange(state: ProbeState, was: boolean | null): void {
    if (state.reachable) {
      if (was === false) log({ level: "info", msg: "upstream reachable again", upstream });
    } else log({ level: "warn", msg: "upstream unreachable: /healthz answers 503", upstream, error: state.error });
  };
}
