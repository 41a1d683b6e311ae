/**
 * The decision API as a Hono app. Runtime-neutral: the Node and Workers entry points build the Gate (with their
 * directory adapters) and serve this app.
 *
 *   POST /v1/decide/tls    at STARTTLS: the client certificate chain (or null) in, verdict out
 *   POST /v1/decide/auth   SMTP AUTH credentials in, verdict out (always 200 when the call is well-formed)
 *   POST /v1/decide/certificate-facts   a client certificate an MTA verified, as facts (fingerprints, CNs)
 *   POST /v1/decide/identity            a login an MTA authenticated: allowance and addresses
 *   GET  /v1/listeners/:n  the listener's host access table and mail-flow policies, for relays (ETag)
 *   GET  /v1/cache         each auth profile's decision cache: policy, entries, hits, misses, stale serves
 *   POST /v1/cache/flush   empties one profile's decision cache (`{"profile": "corp"}`) or all of them
 *   POST /v1/users/flush, GET /v1/blocks, POST /v1/addresses/clear: the brute-force routes (./brute-force-routes.ts)
 *   GET  /v1/ping          `{"ok":true}`: the cheapest authenticated answer (the HTTP stack's baseline)
 *   GET  /v1/nginx/auth/:l nginx's mail proxy `auth_http` protocol for listener l (fronts/nginx-auth/)
 *   GET  /healthz          the process is up
 *   GET  /readyz           every directory answers and every CRL source holds a CRL
 *   GET  /metrics          Prometheus text format; an API token or one of api.metricsTokens
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { matchedRoutes } from "hono/route";
import type { Gate } from "../gate/gate.ts";
import { DecisionService, type Decided, type LogRecord, type Logger } from "../decisions/decision-service.ts";
import { InProcessDecider } from "../decisions/in-process-decider.ts";
import { createNginxAuth, type Upstream } from "../../fronts/nginx-auth/index.ts";
import { ApiMetrics, type ObservedDirectory } from "../metrics/api-metrics.ts";
import { CONTENT_TYPE as METRICS_CONTENT_TYPE } from "../../lib/prometheus.ts";
import { bearerToken, type TokenChecker } from "./api-tokens.ts";
import { openApiDocument } from "./openapi.ts";
import { problem } from "./problem.ts";
import {
  authRequestSchema,
  cacheFlushRequestSchema,
  certificateFactsRequestSchema,
  identityRequestSchema,
  tlsRequestSchema,
} from "../../contract/requests.ts";
import { malformed, parseBody, parseJson } from "./request-body.ts";
import { addBruteForceRoutes } from "./brute-force-routes.ts";

export type { LogRecord, Logger };

export interface AppOptions {
  gate: Gate;
  tokens: TokenChecker;
  /** Who may read GET /metrics (default: `tokens`); the runtimes pass the API tokens plus api.metricsTokens. */
  metricsTokens?: TokenChecker;
  /** The directory adapters' hosts and selectors, for the host health and failover metrics. */
  directories?: Readonly<Record<string, ObservedDirectory>>;
  maxBodyBytes: number;
  log: Logger;
  newDecisionId?: () => string;
  /** Each listener's `upstream`, where nginx hands the sessions it allowed (GET /v1/nginx/auth/:listener). */
  upstreams?: Readonly<Record<string, Upstream>>;
}

type Env = { Variables: { requestId: string } };

const DIGITS = /^\d{1,15}$/;

/** The app, and its DecisionService for a front in the same process (api/decisions/in-process-decider.ts). */
export function createApp(options: AppOptions): Hono<Env> & { decisions: DecisionService } {
  const app = new Hono<Env>();
  const metrics = new ApiMetrics({
    gate: options.gate,
    ...(options.directories ? { directories: options.directories } : {}),
  });
  const decisions = new DecisionService({
    gate: options.gate,
    metrics,
    log: options.log,
    ...(options.newDecisionId ? { newDecisionId: options.newDecisionId } : {}),
  });
  const metricsTokens = options.metricsTokens ?? options.tokens;

  app.use(async (c, next) => {
    await next();
    metrics.request(routeOf(c), c.res.status);
  });

  app.use(requestId({ limitLength: 64 }));

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  // The public contract, without a token: it describes the API and holds nothing secret.
  const openApi = JSON.stringify(openApiDocument());
  app.get("/openapi.json", (c) => c.body(openApi, 200, { "Content-Type": "application/json" }));

  app.get("/readyz", async (c) => {
    const readiness = await options.gate.readiness();
    return c.json(
      {
        status: readiness.ready ? "ready" : "not-ready",
        directories: readiness.directories,
        crlSources: readiness.crlSources,
      },
      readiness.ready ? 200 : 503,
    );
  });

  // Token required: the metrics name profiles, hosts and failure rates. A scraper can get a token of its own
  // (api.metricsTokens) that opens nothing else.
  app.get("/metrics", async (c) => {
    const refused = await unauthorized(c, metricsTokens);
    if (refused) return refused;
    return c.body(metrics.render(), 200, { "Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store" });
  });

  app.use("/v1/*", async (c, next) => {
    const refused = await unauthorized(c, options.tokens);
    if (refused) return refused;
    await next();
  });

  const tooLarge = (c: Context): Response =>
    problem(
      c,
      413,
      "body-too-large",
      "Request body too large",
      `the body is larger than ${options.maxBodyBytes} bytes`,
    );
  const streamedBodyLimit = bodyLimit({ maxSize: options.maxBodyBytes, onError: tooLarge });
  app.use("/v1/*", async (c, next) => {
    // Hono's bodyLimit looks at c.req.raw.body, which makes @hono/node-server build a full web Request around a
    // stream: about as much CPU as a cached decision. A Content-Length (what clients send with a JSON body) bounds
    // the body by itself, since Node's parser delivers no more than it says; only a chunked body is counted as it
    // is read (as is anything with an odd Content-Length), and a GET without either has no body.
    const length = c.req.header("Content-Length");
    const chunked = c.req.header("Transfer-Encoding") !== undefined;
    if (length !== undefined && !chunked && DIGITS.test(length))
      return Number(length) > options.maxBodyBytes ? tooLarge(c) : await next();
    if (!chunked && (c.req.method === "GET" || c.req.method === "HEAD")) return await next();
    return await streamedBodyLimit(c, next);
  });

  // The configuration is immutable for the life of the process, so each listener's document and ETag are
  // computed once.
  const listenerDocuments = new Map<string, Promise<{ body: string; etag: string }>>();
  app.get("/v1/listeners/:name", async (c) => {
    const name = c.req.param("name");
    const policy = options.gate.listenerPolicy(name);
    if (!policy) return problem(c, 404, "unknown-listener", "Unknown listener", `no listener named "${name}"`);
    let document = listenerDocuments.get(name);
    if (!document) {
      document = (async () => {
        const body = JSON.stringify(policy);
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
        return {
          body,
          etag: `"${[...digest.subarray(0, 16)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}"`,
        };
      })();
      listenerDocuments.set(name, document);
    }
    const { body, etag } = await document;
    c.header("ETag", etag);
    c.header("Cache-Control", "no-cache");
    // RFC 9110 §13.1.2: a list of tags, weak comparison, or "*".
    const ifNoneMatch = c.req.header("If-None-Match");
    if (
      ifNoneMatch &&
      (ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag))
    )
      return c.body(null, 304);
    return c.body(body, 200, { "Content-Type": "application/json" });
  });

  /** The HTTP stack's own cost: what the benchmark compares cached decisions with. */
  app.get("/v1/ping", (c) => c.json({ ok: true }));

  app.get("/v1/cache", (c) => c.json({ profiles: options.gate.cacheStats() }));

  app.post("/v1/cache/flush", async (c) => {
    const text = await c.req.text();
    let profile: string | undefined;
    if (text.trim() !== "") {
      const body = parseJson(c, text, cacheFlushRequestSchema);
      if (!body.ok) return body.response;
      profile = body.value.profile;
    }
    const flushed = options.gate.flushCache(profile);
    if (flushed === null) return malformed(c, [{ field: "profile", message: `no auth profile named "${profile}"` }]);
    options.log({
      level: "info",
      msg: "decision cache flushed",
      requestId: c.get("requestId"),
      profile: profile ?? null,
      flushed,
    });
    return c.json({ profile: profile ?? null, flushed });
  });

  addBruteForceRoutes(app, options.gate, options.log);

  app.post("/v1/decide/tls", async (c) => {
    const body = await parseBody(c, tlsRequestSchema);
    if (!body.ok) return body.response;
    return answer(c, await decisions.decideTls(body.value, { requestId: c.get("requestId") }));
  });

  app.post("/v1/decide/auth", async (c) => {
    const body = await parseBody(c, authRequestSchema);
    if (!body.ok) return body.response;
    return answer(c, await decisions.decideAuth(body.value, { requestId: c.get("requestId") }));
  });

  app.post("/v1/decide/certificate-facts", async (c) => {
    const body = await parseBody(c, certificateFactsRequestSchema);
    if (!body.ok) return body.response;
    return answer(c, await decisions.decideCertificateFacts(body.value, { requestId: c.get("requestId") }));
  });

  app.post("/v1/decide/identity", async (c) => {
    const body = await parseBody(c, identityRequestSchema);
    if (!body.ok) return body.response;
    return answer(c, await decisions.decideIdentity(body.value, { requestId: c.get("requestId") }));
  });

  // nginx sends the token as a fixed header (`auth_http_header Authorization "Bearer ..."`): the /v1/* check above.
  const upstreams = options.upstreams ?? {};
  const nginxAuth = createNginxAuth({
    decider: new InProcessDecider(decisions),
    upstreamOf: (listener) => (Object.hasOwn(upstreams, listener) ? upstreams[listener] : undefined),
    log: options.log,
  });
  app.get("/v1/nginx/auth/:listener", async (c) => {
    const headers = await nginxAuth.answer(c.req.param("listener"), (name) => c.req.header(name), {
      requestId: c.get("requestId"),
    });
    return c.body(null, 200, headers);
  });

  app.notFound((c) => problem(c, 404, "not-found", "Not Found", `no route for ${c.req.method} ${c.req.path}`));

  app.onError((error, c) => {
    options.log({
      level: "error",
      msg: "unhandled error",
      requestId: c.get("requestId"),
      path: c.req.path,
      error: error.message,
    });
    return problem(
      c,
      500,
      "internal-error",
      "Internal Server Error",
      "the request could not be processed; see the server log",
    );
  });

  return Object.assign(app, { decisions });
}

/** 401 with a WWW-Authenticate challenge unless the request carries a bearer token `tokens` accepts; else null. */
async function unauthorized(c: Context, tokens: TokenChecker): Promise<Response | null> {
  const token = bearerToken(c.req.header("Authorization"));
  if (token !== null && (await tokens.check(token))) return null;
  c.header("WWW-Authenticate", 'Bearer realm="smtpgate"');
  return problem(
    c,
    401,
    "unauthorized",
    "Unauthorized",
    token === null ? "missing bearer token" : "invalid bearer token",
  );
}

/** The pattern of the route that answered (bounded: a metrics label), or "(unmatched)". */
function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i -= 1) {
    const route = routes[i];
    // Middleware is registered for every method ("ALL"); a handler for one method names the route.
    if (route && route.method !== "ALL") return route.path;
  }
  return "(unmatched)";
}

/** A verdict (200), or the gate's complaint about the call (400). */
function answer(c: Context, decided: Decided): Response {
  return decided.ok ? c.json(decided.verdict) : malformed(c, [{ field: decided.field, message: decided.problem }]);
}
