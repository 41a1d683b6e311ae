/**
 * The Decider over HTTP, and the listener-policy fetch: the client of the decision API that the relay and every
 * front at the edge use: one long-lived undici Pool per API origin, request() (not fetch()), bodies always
 * consumed, one retry on a connection error. Each call has one deadline, timeoutMs, that covers all of it: the
 * wait for a pooled connection, the retry, the headers and the body (one timer per call, where undici would arm
 * a header and a body timer per attempt and a retry would start them again). Anything but a well-formed verdict
 * is an error, which the relay turns into 454 4.7.0: an unreachable, slow or confused API never lets mail through.
 */
import { Pool, errors as undiciErrors } from "undici";
import type {
  AuthRequest,
  CertificateFactsRequest,
  Decider,
  MtaFactsDecider,
  DecisionContext,
  IdentityRequest,
  TlsRequest,
} from "./decider.ts";
import { listenerPolicySchema, type ListenerPolicy } from "./listener-policy.ts";
import { verdictSchema, type Verdict } from "./verdict.ts";

export interface ApiClientOptions {
  url: string;
  token: string;
  /** The deadline of a whole call, its retry included. */
  timeoutMs: number;
  connections: number;
}

export class ApiError extends Error {
  override name = "ApiError";
  /** The API's HTTP status, when it answered with one (a 200 whose body is unusable included); null otherwise. */
  readonly status: number | null;

  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

export type PolicyFetch =
  { status: "changed"; policy: ListenerPolicy; etag: string | null } | { status: "not-modified" };

export class ApiClient implements Decider, MtaFactsDecider {
  readonly #pool: Pool;
  readonly #options: ApiClientOptions;
  readonly #base: string;

  constructor(options: ApiClientOptions) {
    const url = new URL(options.url);
    this.#options = options;
    this.#base = url.pathname.replace(/\/$/, "");
    this.#pool = new Pool(url.origin, {
      connections: options.connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connectTimeout: options.timeoutMs,
      // The call's deadline bounds the headers and the body: no timers of undici's own for them.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  async decideTls(request: TlsRequest, context: DecisionContext = {}): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/tls", request, context.requestId));
  }

  async decideAuth(request: AuthRequest, context: DecisionContext = {}): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/auth", request, context.requestId));
  }

  async decideCertificateFacts(request: CertificateFactsRequest, context: DecisionContext = {}): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/certificate-facts", request, context.requestId));
  }

  async decideIdentity(request: IdentityRequest, context: DecisionContext = {}): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/identity", request, context.requestId));
  }

  async listenerPolicy(name: string, etag: string | null): Promise<PolicyFetch> {
    const call = `GET /v1/listeners/${name}`;
    return this.#withDeadline(call, async (signal) => {
      const headers: Record<string, string> = etag ? { "if-none-match": etag } : {};
      const response = await this.#send("GET", `/v1/listeners/${encodeURIComponent(name)}`, undefined, headers, signal);
      if (response.statusCode === 304) {
        await response.body.dump();
        return { status: "not-modified" };
      }
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new ApiError(`${call}: HTTP ${response.statusCode}: ${text.slice(0, 200)}`, response.statusCode);
      const parsed = listenerPolicySchema.safeParse(parseJson(text, call));
      if (!parsed.success) throw new ApiError(`${call}: not a listener policy`, response.statusCode);
      const policy: ListenerPolicy = parsed.data;
      const header = response.headers.etag;
      return { status: "changed", policy, etag: typeof header === "string" ? header : null };
    });
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  #call(method: string, path: string, body: unknown, requestId: string | undefined): Promise<unknown> {
    const call = `${method} ${path}`;
    return this.#withDeadline(call, async (signal) => {
      const headers = {
        "content-type": "application/json",
        ...(requestId === undefined ? {} : { "x-request-id": requestId }),
      };
      const response = await this.#send(method, path, JSON.stringify(body), headers, signal);
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new ApiError(`${call}: HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
      return parseJson(text, call);
    });
  }

  /** Runs a whole call under one deadline of timeoutMs: past it, the request is aborted and the call fails. */
  async #withDeadline<T>(call: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { timeoutMs } = this.#options;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await run(controller.signal);
    } catch (error) {
      if (controller.signal.aborted) throw new ApiError(`${call}: no answer within ${timeoutMs} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #send(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal,
  ) {
    const request = {
      method: method as "GET" | "POST",
      path: `${this.#base}${path}`,
      headers: { authorization: `Bearer ${this.#options.token}`, ...headers },
      ...(body === undefined ? {} : { body }),
      signal,
    };
    try {
      return await this.#pool.request(request);
    } catch (error) {
      // One retry, and only where the request cannot have reached the API (a stale keep-alive socket), within
      // what is left of the call's deadline.
      if (isConnectionError(error) && !signal.aborted) return await this.#pool.request(request);
      throw error;
    }
  }
}

function parseJson(text: string, call: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(`${call}: the answer is not JSON`);
  }
}

function isConnectionError(error: unknown): boolean {
  if (error instanceof undiciErrors.SocketError || error instanceof undiciErrors.ConnectTimeoutError) return true;
  const code = (error as { code?: string }).code;
  return code === "ECONNRESET" || code === "ECONNREFUSED" || code === "EPIPE";
}

/** The contract's verdict, or an error: anything else from the API is no answer (and the relay tempfails). */
function parseVerdict(value: unknown): Verdict {
  const parsed = verdictSchema.safeParse(value);
  if (!parsed.success)
    throw new ApiError(`the API's answer is not a verdict: ${parsed.error.issues[0]?.message ?? ""}`);
  const verdict = parsed.data;
  if (verdict.verdict === "allow" && (!verdict.authenticated || verdict.identity === null))
    throw new ApiError("the API's answer is not a verdict: an allow without an identity");
  return verdict;
}
