/**
 * The Node.js Directory adapter: an LDAP server profile over ldapts, with failover or load balancing across its
 * hosts and two pools per host:
 *
 * - service connections, bound once as the service identity (or anonymous), used only for searches;
 * - user-bind connections, used only for users' simple binds. A connection that carried a user's bind never
 *   serves the service identity afterwards (SPEC §2), so a search can never run with a user's rights.
 *
 * Referrals are not chased: continuation references in search results are ignored, and a referral result is an
 * error like any other.
 */
import { InvalidCredentialsError, ResultCodeError, BusyError, UnavailableError } from "ldapts";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "../core/directory.ts";
import { LdapConnection, parseLdapUrl, type ConnectionSecurity, type HostEndpoint } from "./connection.ts";
import { HostSelector } from "./host-selector.ts";
import { ConnectionPool } from "./pool.ts";

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
  readonly #timeLimitSeconds: number;

  constructor(options: LdapDirectoryOptions) {
    this.name = options.name;
    this.selector = new HostSelector(options.hosts.length, options);
    this.#timeLimitSeconds = Math.max(1, Math.ceil(options.security.operationTimeoutMs / 1000));
    const common = { max: options.maxConnections, operationTimeoutMs: options.security.operationTimeoutMs };
    this.#hosts = options.hosts.map((url) => {
      const endpoint = parseLdapUrl(url);
      return {
        endpoint,
        service: new ConnectionPool({
          ...common,
          open: async () => {
            const connection = await LdapConnection.open(endpoint, options.security);
            if (options.serviceBind) {
              try {
                await connection.client.bind(options.serviceBind.dn, options.serviceBind.password);
              } catch (error) {
                connection.destroy();
                throw error;
              }
            }
            return connection;
          },
        }),
        userBind: new ConnectionPool({ ...common, open: () => LdapConnection.open(endpoint, options.security) }),
      };
    });
  }

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    return await this.#onSomeHost("service", async (connection) => {
      const result = await connection.client.search(request.baseDn, {
        scope: "sub",
        filter: request.filter,
        derefAliases: "never",
        attributes: request.attributes.length === 0 ? ["1.1"] : [...request.attributes],
        explicitBufferAttributes: [...(request.binaryAttributes ?? [])],
        sizeLimit: request.sizeLimit,
        timeLimit: this.#timeLimitSeconds,
      });
      return result.searchEntries.slice(0, request.sizeLimit).map(toEntry);
    });
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    // RFC 4513 §5.1.2: a DN with an empty password is an "unauthenticated bind" that many servers accept.
    // The core refuses empty passwords first; this is the second lock on the same door.
    if (dn === "" || password === "") return { ok: true, value: { bound: false, resultCode: 49, message: "empty DN or password refused locally" } };
    return await this.#onSomeHost("userBind", async (connection) => {
      try {
        await connection.client.bind(dn, password);
        return { bound: true };
      } catch (error) {
        if (error instanceof InvalidCredentialsError || (error instanceof ResultCodeError && !isServerTrouble(error))) {
          return { bound: false, resultCode: error.code, message: error.message };
        }
        throw error;
      }
    });
  }

  async probe(): Promise<DirectoryResult<{ host: string }>> {
    return await this.#onSomeHost("service", async (connection) => {
      await connection.client.search("", { scope: "base", filter: "(objectClass=*)", attributes: ["1.1"], sizeLimit: 1 });
      return { host: connection.endpoint.url };
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.#hosts.flatMap((host) => [host.service.close(), host.userBind.close()]));
  }

  /** Runs the operation on the hosts in the selector's order until one answers. */
  async #onSomeHost<T>(pool: "service" | "userBind", operation: (connection: LdapConnection) => Promise<T>): Promise<DirectoryResult<T>> {
    const failures: string[] = [];
    for (const index of this.selector.order()) {
      const host = this.#hosts[index] as Host;
      try {
        const value = await host[pool].use(operation);
        this.selector.reportSuccess(index);
        return { ok: true, value };
      } catch (error) {
        this.selector.reportFailure(index);
        failures.push(`${host.endpoint.url}: ${describe(error)}`);
      }
    }
    return { ok: false, error: { kind: "unavailable", detail: `directory ${this.name}: ${failures.join("; ")}` } };
  }
}

/** LDAP results that say "this server cannot answer now" rather than "no". */
export function isServerTrouble(error: ResultCodeError): boolean {
  return error instanceof BusyError || error instanceof UnavailableError;
}

/** One line about a failure, for operators (no secrets: ldapts messages carry none). */
export function describe(error: unknown): string {
  if (error instanceof ResultCodeError) return `LDAP result ${error.code} (${error.message.split("\n")[0]})`;
  if (error instanceof Error) return `${error.name === "Error" ? "" : `${error.name}: `}${error.message.split("\n")[0]}`;
  return String(error);
}

export function toEntry(entry: Record<string, unknown> & { dn: string }): DirectoryEntry {
  const attributes: Record<string, (string | Buffer)[]> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key === "dn") continue;
    attributes[key] = (Array.isArray(value) ? value : [value]) as (string | Buffer)[];
  }
  return { dn: entry.dn, attributes };
}
