/**
 * The Decider over HTTP, and the listener-policy fetch: the client of the decision API that the relay and every
 * front at the edge use: one long-lived undici Pool per API origin, request() (not fetch()),
 * bodies always consumed, short timeouts, one retry on a connection error. Anything but a well-formed verdict is
 * an error, which the relay turns into 454 4.7.0: an unreachable, slow or confused API never lets mail through.
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
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
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
    const response = await this.#send(
      "GET",
      `/v1/listeners/${encodeURIComponent(name)}`,
      undefined,
      etag ? { "if-none-match": etag } : {},
    );
    if (response.statusCode === 304) {
      await response.body.dump();
      return { status: "not-modified" };
    }
    const text = await response.body.text();
    if (response.statusCode !== 200)
      throw new ApiError(
        `GET /v1/listeners/${name}: HTTP ${response.statusCode}: ${text.slice(0, 200)}`,
        response.statusCode,
      );
    const parsed = listenerPolicySchema.safeParse(parseJson(text, `GET /v1/listeners/${name}`));
    if (!parsed.success) throw new ApiError(`GET /v1/listeners/${name}: not a listener policy`, response.statusCode);
    const policy: ListenerPolicy = parsed.data;
    const header = response.headers.etag;
    return { status: "changed", policy, etag: typeof header === "string" ? header : null };
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #call(method: string, path: string, body: unknown, requestId: string | undefined): Promise<unknown> {
    const response = await this.#send(method, path, JSON.stringify(body), {
      "content-type": "application/json",
      ...(requestId === undefined ? {} : { "x-request-id": requestId }),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200)
      throw new ApiError(`${method} ${path}: HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
    return parseJson(text, `${method} ${path}`);
  }

  async #send(method: string, path: string, body: string | undefined, headers: Record<string, string>) {
    const request = {
      method: method as "GET" | "POST",
      path: `${this.#base}${path}`,
      headers: { authorization: `Bearer ${this.#options.token}`, ...headers },
      ...(body === undefined ? {} : { body }),
      headersTimeout: this.#options.timeoutMs,
      bodyTimeout: this.#options.timeoutMs,
    };
    try {
      return await this.#pool.request(request);
    } catch (error) {
      // One retry, and only where the request cannot have reached the API (a stale keep-alive socket).
      if (isConnectionError(error)) return await this.#pool.request(request);
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
