/**
 * The decision API as a Hono app. Runtime-neutral: the Node and Workers entry points build the Gate (with their
 * directory adapters) and serve this app.
 *
 *   POST /v1/decide/tls    at STARTTLS: the client certificate chain (or null) in, verdict out
 *   POST /v1/decide/auth   SMTP AUTH credentials in, verdict out (always 200 when the call is well-formed)
 *   GET  /v1/listeners/:n  the listener's host access table and mail-flow policies, for relays (ETag)
 *   GET  /healthz          the process is up
 *   GET  /readyz           every directory answers and every CRL source holds a CRL
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import type { z } from "zod";
import { formatIssues } from "../config/load.ts";
import type { Gate, GateResult } from "../core/gate.ts";
import type { Decision, Verdict } from "../core/verdict.ts";
import { bearerToken, type TokenChecker } from "./api-tokens.ts";
import { problem, type FieldProblem } from "./problem.ts";
import { authRequestSchema, tlsRequestSchema, type AuthRequestBody, type TlsRequestBody } from "./requests.ts";

export type LogRecord = Record<string, unknown>;
export type Logger = (record: LogRecord) => void;

export interface AppOptions {
  gate: Gate;
  tokens: TokenChecker;
  maxBodyBytes: number;
  log: Logger;
  newDecisionId?: () => string;
}

type Env = { Variables: { requestId: string } };

/** Longest user name copied into a log line; the rest is cut (a 10 kB injection attempt needs no 10 kB log). */
const LOGGED_USERNAME_MAX = 128;

export function createApp(options: AppOptions): Hono<Env> {
  const app = new Hono<Env>();
  const newDecisionId = options.newDecisionId ?? (() => crypto.randomUUID());

  app.use(requestId({ limitLength: 64 }));

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    const readiness = await options.gate.readiness();
    return c.json({ status: readiness.ready ? "ready" : "not-ready", directories: readiness.directories, crlSources: readiness.crlSources }, readiness.ready ? 200 : 503);
  });

  app.use("/v1/*", async (c, next) => {
    const token = bearerToken(c.req.header("Authorization"));
    if (token === null || !(await options.tokens.check(token))) {
      c.header("WWW-Authenticate", 'Bearer realm="smtpgate"');
      return problem(c, 401, "unauthorized", "Unauthorized", token === null ? "missing bearer token" : "invalid bearer token");
    }
    await next();
  });

  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: options.maxBodyBytes,
      onError: (c) => problem(c, 413, "body-too-large", "Request body too large", `the body is larger than ${options.maxBodyBytes} bytes`),
    }),
  );

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
        return { body, etag: `"${[...digest.subarray(0, 16)].map((byte) => byte.toString(16).padStart(2, "0")).join("")}"` };
      })();
      listenerDocuments.set(name, document);
    }
    const { body, etag } = await document;
    c.header("ETag", etag);
    c.header("Cache-Control", "no-cache");
    if (c.req.header("If-None-Match") === etag) return c.body(null, 304);
    return c.body(body, 200, { "Content-Type": "application/json" });
  });

  app.post("/v1/decide/tls", async (c) => {
    const started = performance.now();
    const body = await parseBody(c, tlsRequestSchema);
    if (!body.ok) return body.response;
    const result = await options.gate.decideTls(body.value);
    return answer(c, result, (decision, verdict) => ({
      ...decisionLog(c, "tls", body.value, decision, verdict, started),
      certificates: body.value.certificate?.chain.length ?? 0,
    }));
  });

  app.post("/v1/decide/auth", async (c) => {
    const started = performance.now();
    const body = await parseBody(c, authRequestSchema);
    if (!body.ok) return body.response;
    const request = body.value;
    const result = await options.gate.decideAuth(request);
    return answer(c, result, (decision, verdict) => ({
      ...decisionLog(c, "auth", request, decision, verdict, started),
      mechanism: request.mechanism,
      user: request.username.length > LOGGED_USERNAME_MAX ? `${request.username.slice(0, LOGGED_USERNAME_MAX)}…(${request.username.length} chars)` : request.username,
    }));
  });

  /** A verdict (200) with its log line, or the gate's complaint about the call (400). */
  function answer(c: Context<Env>, result: GateResult, logLine: (decision: Decision, verdict: Verdict) => LogRecord): Response {
    if (!result.ok) return malformed(c, [{ field: result.field, message: result.problem }]);
    const verdict = toVerdict(result.decision, newDecisionId());
    options.log(logLine(result.decision, verdict));
    return c.json(verdict);
  }

  app.notFound((c) => problem(c, 404, "not-found", "Not Found", `no route for ${c.req.method} ${c.req.path}`));

  app.onError((error, c) => {
    options.log({ level: "error", msg: "unhandled error", requestId: c.get("requestId"), path: c.req.path, error: error.message });
    return problem(c, 500, "internal-error", "Internal Server Error", "the request could not be processed; see the server log");
  });

  return app;
}

type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

async function parseBody<S extends z.ZodType>(c: Context, schema: S): Promise<Parsed<z.output<S>>> {
  let json: unknown;
  try {
    json = JSON.parse(await c.req.text());
  } catch {
    return { ok: false, response: malformed(c, [{ field: "(body)", message: "not a JSON document" }]) };
  }
  const result = schema.safeParse(json, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  const errors = formatIssues(result.error.issues).map((line) => {
    const at = line.indexOf(": ");
    return { field: line.slice(0, at), message: line.slice(at + 2) };
  });
  return { ok: false, response: malformed(c, errors) };
}

function malformed(c: Context, errors: FieldProblem[]): Response {
  const detail = errors.map((error) => `${error.field}: ${error.message}`).join("; ");
  return problem(c, 400, "malformed-request", "Malformed request", detail, errors);
}

function toVerdict(decision: Decision, decisionId: string): Verdict {
  return {
    verdict: decision.verdict,
    authenticated: decision.authenticated,
    method: decision.method,
    identity: decision.identity,
    dn: decision.dn,
    temporary: decision.temporary,
    reason: decision.reason,
    smtp: decision.smtp,
    close: decision.close,
    profile: decision.profile,
    decisionId,
  };
}

/** One line per decision: what an operator needs to answer "why was alice refused?". Never the password. */
function decisionLog(c: Context<Env>, kind: "tls" | "auth", request: AuthRequestBody | TlsRequestBody, decision: Decision, verdict: Verdict, started: number): LogRecord {
  return {
    level: "info",
    msg: "decision",
    kind,
    requestId: c.get("requestId"),
    decisionId: verdict.decisionId,
    listener: request.listener,
    session: request.session,
    clientIp: request.client.ip,
    helo: request.client.helo,
    tls: request.tls ? `${request.tls.version} ${request.tls.cipher}` : null,
    profile: verdict.profile,
    method: verdict.method,
    verdict: verdict.verdict,
    reason: verdict.reason,
    identity: verdict.identity,
    temporary: verdict.temporary,
    smtp: verdict.smtp?.code ?? null,
    dn: verdict.dn,
    detail: decision.detail,
    durationMs: Math.round((performance.now() - started) * 10) / 10,
  };
}
