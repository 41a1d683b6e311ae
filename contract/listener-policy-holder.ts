/**
 * The listener's policy as a front at the edge holds it (the relay, the Postfix policy server): fetched from the
 * API at start (no policy, no start), refreshed on a timer with If-None-Match, and kept as it was when a refresh
 * fails. The host access table is compiled once per policy version (host-access-table.ts).
 */
import type { ApiClient } from "./api-client.ts";
import {
  compileHostAccessTable,
  UnusablePolicyError,
  type HostAccessTable,
  type SenderGroupMatch,
} from "./host-access-table.ts";
import type { ListenerPolicy } from "./listener-policy.ts";

interface Compiled {
  policy: ListenerPolicy;
  hostAccessTable: HostAccessTable;
  groups: number;
  acceptedDomains: ReadonlySet<string>;
}

export interface ListenerPolicyHooks {
  /** A refresh failed: fetching it (API unreachable, HTTP error, not a policy) or installing it (bad table). */
  onRefreshFailure?(stage: "fetch" | "install", error: Error): void;
}

export { UnusablePolicyError };

export class ListenerPolicyHolder implements HostAccessTable {
  #api: ApiClient;
  readonly #listener: string;
  readonly #log: (record: Record<string, unknown>) => void;
  readonly #hooks: ListenerPolicyHooks;
  #compiled: Compiled | null = null;
  #etag: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** Why the last refresh failed; null once one succeeds (a 304 is a success). */
  lastError: string | null = null;

  constructor(
    api: ApiClient,
    listener: string,
    log: (record: Record<string, unknown>) => void,
    hooks: ListenerPolicyHooks = {},
  ) {
    this.#api = api;
    this.#listener = listener;
    this.#log = log;
    this.#hooks = hooks;
  }

  /** Loads the policy; throws if it cannot (the relay must not start without one). */
  async load(): Promise<void> {
    const fetched = await this.#api.listenerPolicy(this.#listener, null);
    if (fetched.status !== "changed") throw new Error("the API answered 304 to an unconditional request");
    this.#install(fetched.policy, fetched.etag);
    if (this.#compiled?.groups === 0)
      throw new UnusablePolicyError(
        `listener ${this.#listener} has an empty host access table: every connection would be refused`,
      );
  }

  /** From now on, fetch from this API client (a reload changed the API's address or token), unconditionally first. */
  useApi(api: ApiClient): void {
    this.#api = api;
    // Another API's ETags need not name the same documents.
    this.#etag = null;
  }

  startRefreshing(everySeconds: number): void {
    this.stopRefreshing();
    this.#timer = setInterval(() => void this.refresh(), everySeconds * 1000).unref();
  }

  stopRefreshing(): void {
    clearInterval(this.#timer);
  }

  /** One conditional GET (If-None-Match): 304 keeps the policy, 200 replaces it, a failure keeps it too. */
  async refresh(): Promise<void> {
    let stage: "fetch" | "install" = "fetch";
    try {
      const fetched = await this.#api.listenerPolicy(this.#listener, this.#etag);
      if (fetched.status === "changed") {
        stage = "install";
        this.#install(fetched.policy, fetched.etag);
        this.#log({ level: "info", msg: "listener policy updated", listener: this.#listener, etag: fetched.etag });
      }
      this.lastError = null;
    } catch (error) {
      this.lastError = (error as Error).message;
      this.#log({
        level: "warn",
        msg: "listener policy refresh failed; keeping the last good copy",
        listener: this.#listener,
        stage,
        error: this.lastError,
      });
      this.#hooks.onRefreshFailure?.(stage, error as Error);
    }
  }

  get policy(): ListenerPolicy {
    if (!this.#compiled) throw new Error("listener policy not loaded");
    return this.#compiled.policy;
  }

  /** The sender group of a client address: first match wins; null = no group (refuse). */
  match(address: string): SenderGroupMatch | null {
    return this.#compiled?.hostAccessTable.match(address) ?? null;
  }

  /** The listener's accepted domains, lower-cased. */
  get acceptedDomains(): ReadonlySet<string> {
    return this.#compiled?.acceptedDomains ?? new Set();
  }

  /** The largest message any policy allows (smtp-server's own SIZE limit; each policy's is checked per session). */
  get largestMessageBytes(): number {
    return Math.max(
      1024,
      ...Object.values(this.#compiled?.policy.mailFlowPolicies ?? {}).map((policy) => policy.maxMessageBytes),
    );
  }

  #install(policy: ListenerPolicy, etag: string | null): void {
    this.#compiled = {
      policy,
      hostAccessTable: compileHostAccessTable(policy),
      groups: policy.hostAccessTable.length,
      acceptedDomains: new Set(policy.acceptedDomains.map((domain) => domain.toLowerCase())),
    };
    this.#etag = etag;
  }
}
