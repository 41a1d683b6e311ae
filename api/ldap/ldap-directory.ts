/**
 * The Node.js Directory adapter: an LDAP server profile over ldapts, with failover or load balancing across its
 * hosts and two pools per host:
 *
 * - service connections, bound once as the service identity (or anonymous), used only for searches;
 * - user-bind connections, used only for users' simple binds. A connection that carried a user's bind never
 *   serves the service identity afterwards (docs/security.md), so a search can never run with a user's rights.
 *
 * Referrals are not chased: continuation references in search results are ignored, and a referral result is an
 * error like any other.
 */
import type { Client } from "ldapts";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "../core/directory.ts";
import { LdapConnection, parseLdapUrl, type ConnectionSecurity, type HostEndpoint } from "./connection.ts";
import { HostSelector } from "./host-selector.ts";
import { bindAsService, onSomeHost, readRootDse, refusedLocally, searchEntries, userBind } from "./operations.ts";
import { ConnectionPool } from "./pool.ts";

/**
 * How many searches one service connection carries at once (ldapts matches answers by message ID): fewer
 * connections, and requests made together leave in one write. Beyond a handful, a connection's searches wait
 * behind each other in the server's per-connection queue more than a new connection would cost.
 */
export const SEARCHES_PER_CONNECTION = 8;

export interface LdapDirectoryOptions {
  name: string;
  hosts: readonly string[];
  mode: "failover" | "loadbalance";
  failbackAfterMs: number;
  hostDownForMs: number;
  security: ConnectionSecurity;
  /** Service identity; undefined = anonymous searches. */
  serviceBind?: { dn: string; password: string } | undefined;
  maxConnections: number;
  now?: () => number;
  /** Told of every try on a host, with its time and, when it failed, the error as thrown (smtpgate test-auth). */
  onHostAttempt?: (attempt: HostAttempt) => void;
}

/** One operation's try on one host. */
export interface HostAttempt {
  host: string;
  pool: "service" | "userBind";
  ms: number;
  /** Absent when the host answered. */
  error?: unknown;
}

/** One host's answer to the start-up probe: `error` is what failed (null: it answered). */
export interface HostProbe {
  index: number;
  endpoint: HostEndpoint;
  error: unknown;
}

interface Host {
  endpoint: HostEndpoint;
  service: ConnectionPool;
  userBind: ConnectionPool;
}

export class LdapDirectory implements Directory {
  readonly name: string;
  readonly selector: HostSelector;
  readonly #hosts: Host[];
  readonly #urls: readonly string[];
  readonly #timeLimitSeconds: number;
  readonly #options: LdapDirectoryOptions;

  constructor(options: LdapDirectoryOptions) {
    this.#options = options;
    this.name = options.name;
    this.selector = new HostSelector(options.hosts.length, options);
    this.#urls = options.hosts;
    this.#timeLimitSeconds = Math.max(1, Math.ceil(options.security.operationTimeoutMs / 1000));
    const common = { max: options.maxConnections, operationTimeoutMs: options.security.operationTimeoutMs };
    const bindAsServiceIdentity = (client: Client) => bindAsService(client, options.serviceBind);
    this.#hosts = options.hosts.map((url) => {
      const endpoint = parseLdapUrl(url);
      return {
        endpoint,
        service: new ConnectionPool({
          ...common,
          operationsPerConnection: SEARCHES_PER_CONNECTION,
          open: () => LdapConnection.open(endpoint, options.security, bindAsServiceIdentity),
        }),
        // A bind changes who the connection is: one at a time, and nothing else beside it.
        userBind: new ConnectionPool({
          ...common,
          operationsPerConnection: 1,
          open: () => LdapConnection.open(endpoint, options.security),
        }),
      };
    });
  }

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    return await this.#onSomeHost("service", (connection) =>
      searchEntries(connection.client, request, this.#timeLimitSeconds),
    );
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    const refused = refusedLocally(dn, password);
    if (refused) return { ok: true, value: refused };
    return await this.#onSomeHost("userBind", (connection) => userBind(connection.client, dn, password));
  }

  async probe(): Promise<DirectoryResult<{ host: string }>> {
    return await this.#onSomeHost("service", async (connection) => {
      await readRootDse(connection.client);
      return { host: connection.endpoint.url };
    });
  }

  /** The same profile once per host, each with that host alone: to check every host, not just the first that answers. */
  perHost(): LdapDirectory[] {
    return this.#options.hosts.map((host) => new LdapDirectory({ ...this.#options, hosts: [host], maxConnections: 1 }));
  }

  /**
   * Asks every host once, each on its own (a healthy second host must not hide a broken first one), for the
   * start-up probe. Bounded by the connect and operation timeouts; the host selector is left alone.
   */
  async probeEachHost(): Promise<HostProbe[]> {
    return await Promise.all(
      this.#hosts.map(async (host, index): Promise<HostProbe> => {
        try {
          await host.service.use((connection) => readRootDse(connection.client));
          return { index, endpoint: host.endpoint, error: null };
        } catch (error) {
          return { index, endpoint: host.endpoint, error };
        }
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.#hosts.flatMap((host) => [host.service.close(), host.userBind.close()]));
  }

  /** Runs the operation on a connection of `pool`, on the hosts in the selector's order until one answers. */
  async #onSomeHost<T>(
    pool: "service" | "userBind",
    operation: (connection: LdapConnection) => Promise<T>,
  ): Promise<DirectoryResult<T>> {
    return await onSomeHost(this.name, this.selector, this.#urls, async (index) => {
      const host = this.#hosts[index] as Host;
      const started = performance.now();
      const attempted = (error?: unknown): void =>
        this.#options.onHostAttempt?.({
          host: host.endpoint.url,
          pool,
          ms: performance.now() - started,
          ...(error === undefined ? {} : { error }),
        });
      try {
        const value = await host[pool].use(operation);
        attempted();
        return value;
      } catch (error) {
        attempted(error);
        throw error;
      }
    });
  }
}
