/**
 * The relay's client for the decision API: one long-lived undici Pool per API origin, request() (not fetch()),
 * bodies always consumed, short timeouts, one retry on a connection error. Anything but a well-formed verdict is
 * an error, which the relay turns into 454 4.7.0: an unreachable, slow or confused API never lets mail through.
 */
import { Pool, errors as undiciErrors } from "undici";
import type { ListenerPolicy } from "../api/core/gate.ts";
import type { Verdict } from "../api/core/verdict.ts";
import { VERDICTS } from "../api/core/verdict.ts";

export interface ApiClientOptions {
  url: string;
  token: string;
  timeoutMs: number;
  connections: number;
}

export class ApiError extends Error {
  override name = "ApiError";
}

export type PolicyFetch =
  { status: "changed"; policy: ListenerPolicy; etag: string | null } | { status: "not-modified" };

export class ApiClient {
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

  async decideTls(body: unknown, requestId: string): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/tls", body, requestId));
  }

  async decideAuth(body: unknown, requestId: string): Promise<Verdict> {
    return parseVerdict(await this.#call("POST", "/v1/decide/auth", body, requestId));
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
      throw new ApiError(`GET /v1/listeners/${name}: HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
    const policy = JSON.parse(text) as ListenerPolicy;
    if (!Array.isArray(policy.hostAccessTable) || typeof policy.mailFlowPolicies !== "object")
      throw new ApiError(`GET /v1/listeners/${name}: not a listener policy`);
    const header = response.headers.etag;
    return { status: "changed", policy, etag: typeof header === "string" ? header : null };
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #call(method: string, path: string, body: unknown, requestId: string): Promise<unknown> {
    const response = await this.#send(method, path, JSON.stringify(body), {
      "content-type": "application/json",
      "x-request-id": requestId,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200)
      throw new ApiError(`${method} ${path}: HTTP ${response.statusCode}: ${text.slice(0, 300)}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(`${method} ${path}: the answer is not JSON`);
    }
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

function isConnectionError(error: unknown): boolean {
  if (error instanceof undiciErrors.SocketError || error instanceof undiciErrors.ConnectTimeoutError) return true;
  const code = (error as { code?: string }).code;
  return code === "ECONNRESET" || code === "ECONNREFUSED" || code === "EPIPE";
}

function parseVerdict(value: unknown): Verdict {
  const verdict = value as Partial<Verdict> | null;
  if (
    !verdict ||
    typeof verdict !== "object" ||
    !VERDICTS.includes(verdict.verdict as Verdict["verdict"]) ||
    typeof verdict.authenticated !== "boolean" ||
    typeof verdict.reason !== "string" ||
    (verdict.smtp !== null && (typeof verdict.smtp !== "object" || typeof verdict.smtp?.code !== "number")) ||
    (verdict.verdict === "allow" && (verdict.authenticated !== true || typeof verdict.identity !== "string"))
  ) {
    throw new ApiError("the API's answer is not a verdict");
  }
  return verdict as Verdict;
}
