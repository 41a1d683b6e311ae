// A fake of the decision API's GET /v1/listeners/{name} (node:http on 127.0.0.1), for relay tests that need a
// listener policy the real API cannot give them: one that changes while the relay runs (the real API's
// configuration is immutable per process), or an unusual table. It logs every request it answered. A test that
// needs the decision calls to misbehave (hang, drop the connection) sets `onDecide`.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenerPolicy, MailFlowPolicy } from "../../contract/listener-policy.ts";

export const LISTENER = "edge";

/** A mail-flow policy with every field, as the API serves it (defaults applied). */
export const rules = (overrides: Partial<MailFlowPolicy>): MailFlowPolicy => ({
  behaviour: "relay",
  tls: "preferred",
  verifyClientCertificate: false,
  smtpAuth: "off",
  requireTlsToOfferAuth: true,
  senderLogin: "off",
  maxMessageBytes: 1024 * 1024,
  maxRecipients: 10,
  maxConnectionsPerClient: 10,
  ...overrides,
});

/** The listener's document: loopback clients go to TRUSTED (relay) or BLOCKED (reject). */
export function listenerPolicy(policy: "TRUSTED" | "BLOCKED"): ListenerPolicy {
  return {
    listener: LISTENER,
    authProfile: { name: "corp", type: "ldap", allowAuthFallback: true },
    hostAccessTable: [{ name: "LOCAL", match: ["127.0.0.0/8", "::1"], policy }],
    mailFlowPolicies: { TRUSTED: rules({ behaviour: "relay" }), BLOCKED: rules({ behaviour: "reject" }) },
    acceptedDomains: ["example.com"],
  };
}

export interface Served {
  method: string;
  url: string;
  ifNoneMatch: string | null;
  authorization: string | null;
  status: number;
}

/** The fake API: serves `document` with `etag`, 304 to a matching If-None-Match, or `failWith` when set. */
export class FakeListenerApi {
  document: unknown = listenerPolicy("TRUSTED");
  etag = '"v1"';
  failWith: number | null = null;
  /** Handles every POST (a decision call) instead of the 404 the fake answers otherwise. */
  onDecide: ((request: IncomingMessage, response: ServerResponse) => void) | null = null;
  readonly served: Served[] = [];
  readonly #server: Server;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeListenerApi> {
    const server = createServer();
    const api = new FakeListenerApi(server);
    server.on("request", (request: IncomingMessage, response: ServerResponse) => api.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The statuses answered since the n-th request. */
  statusesSince(n: number): number[] {
    return this.served.slice(n).map((entry) => entry.status);
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const ifNoneMatch = typeof request.headers["if-none-match"] === "string" ? request.headers["if-none-match"] : null;
    const answer = (status: number, body?: string, headers: Record<string, string> = {}) => {
      this.served.push({
        method: request.method ?? "",
        url: request.url ?? "",
        ifNoneMatch,
        authorization: request.headers.authorization ?? null,
        status,
      });
      response.writeHead(status, headers);
      response.end(body);
    };
    if (request.method === "POST" && this.onDecide) return this.onDecide(request, response);
    if (request.method !== "GET" || request.url !== `/v1/listeners/${LISTENER}`)
      return answer(404, "{}", { "content-type": "application/json" });
    if (this.failWith !== null)
      return answer(this.failWith, '{"title":"boom"}', { "content-type": "application/problem+json" });
    if (ifNoneMatch === this.etag) return answer(304, undefined, { etag: this.etag });
    answer(200, JSON.stringify(this.document), {
      "content-type": "application/json",
      etag: this.etag,
      "cache-control": "no-cache",
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
