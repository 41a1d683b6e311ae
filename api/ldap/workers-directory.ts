/**
 * The Cloudflare Workers Directory adapter: an LDAP server profile over ldapts on workerd's `node:net`/`node:tls`
 * (which sit on `cloudflare:sockets`).
 *
 * What workerd allows shapes it (docs/deployment.md#what-a-worker-can-and-cannot-do):
 *
 * - No socket may outlive or be shared across requests, so there is no pool. Within one request (see
 *   `runWithDirectoryScope`) a directory opens at most one service connection, reused for the user search and the
 *   allowance query, and a fresh connection for each user bind (a connection that carried a user's bind never
 *   serves the service identity). All of them are closed in `finally` when the request ends. Outside a scope
 *   every operation opens and closes its own connection.
 * - Only `ldaps://` with a publicly trusted certificate (or `ldap://` in plaintext, for tests on loopback):
 *   ldapts' StartTLS upgrade fails inside workerd, custom CAs and a different expected server name cannot be set,
 *   and a production Worker cannot reach private addresses. `workersDirectoryProblems` turns such a profile into a
 *   start-up error that says what to use instead.
 * - Host order (failover, loadbalance) is the Node adapter's HostSelector, kept per isolate: a hint that carries
 *   over between the requests one isolate serves, never a correctness requirement.
 *
 *   const corp = new WorkersLdapDirectory({ name: "corp", hosts: ["ldaps://ldap.example.com"], ... });
 *   await runWithDirectoryScope(() => gate.decideAuth(request));
 */
import { AsyncLocalStorage } from "node:async_hooks";
import net from "node:net";
import tls from "node:tls";
import { Client } from "ldapts";
import type { ConfigProblem } from "../../lib/config/config-error.ts";
import type { DirectoryConfig } from "../config/schema.ts";
import type { BindOutcome, Directory, DirectoryEntry, DirectoryResult, SearchRequest } from "../core/directory.ts";
import { withDeadline } from "../../lib/deadline.ts";
import { parseLdapUrl, type HostEndpoint } from "./connection.ts";
import { HostSelector } from "./host-selector.ts";
import { bindAsService, onSomeHost, readRootDse, refusedLocally, searchEntries, userBind } from "./operations.ts";

/** How long the polite LDAP unbind at the end of a request may take before the socket is simply closed. */
const UNBIND_TIMEOUT_MS = 1_000;

export interface WorkersLdapDirectoryOptions {
  name: string;
  hosts: readonly string[];
  mode: "failover" | "loadbalance";
  failbackAfterMs: number;
  hostDownForMs: number;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
  /** Service identity; undefined = anonymous searches. */
  serviceBind?: { dn: string; password: string } | undefined;
  now?: () => number;
}

/**
 * Why this LDAP server profile cannot work on Workers, one line per problem with its config path; empty when it
 * can. The Workers runtime refuses to start with any of these rather than fail at the first decision.
 */
export function workersDirectoryProblems(name: string, directory: DirectoryConfig): ConfigProblem[] {
  const at = `directories.${name}`;
  const problems: ConfigProblem[] = [];
  directory.hosts.forEach((host, index) => {
    if (host.startsWith("ldap:") && directory.startTls) {
      problems.push({
        path: `${at}.hosts[${index}]`,
        message:
          "StartTLS does not work inside workerd (ldapts' TLS upgrade of an open socket fails there); " +
          "use ldaps:// with a publicly trusted certificate, or run the Node build (which supports StartTLS) inside your network",
      });
    }
  });
  if (directory.tls.caFile !== undefined) {
    problems.push({
      path: `${at}.tls.caFile`,
      message:
        "custom CAs are not supported on Workers (workerd trusts only the public web PKI); " +
        "the directory needs a publicly trusted certificate, or run the Node build, which reads caFile",
    });
  }
  if (directory.tls.serverName !== undefined) {
    problems.push({
      path: `${at}.tls.serverName`,
      message:
        "Workers check the directory's certificate against the host name in the URL and cannot expect another name; " +
        "put the name the certificate carries in hosts instead",
    });
  }
  return problems;
}

/**
 * Addresses a production Worker cannot reach (loopback, private and link-local ranges): fine for `wrangler dev`
 * and tests, a warning for a deployment.
 */
export function unreachableFromCloudflare(host: string): boolean {
  const { host: name } = parseLdapUrl(host);
  if (name === "localhost" || name.endsWith(".localhost") || name.endsWith(".local") || name.endsWith(".internal"))
    return true;
  if (net.isIPv4(name)) {
    const [a = 0, b = 0] = name.split(".").map(Number);
    return (
      a === 10 ||
      a === 127 ||
      a === 0 ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 169 && b === 254) ||
      (a === 100 && b >= 64 && b <= 127)
    );
  }
  if (net.isIPv6(name)) return /^(::1?$|f[cd]|fe[89ab])/i.test(name);
  return false;
}

/** One LDAP connection, opened once: ldapts' transparent reconnect (plaintext, unbound) is refused. */
interface Connection {
  client: Client;
  endpoint: HostEndpoint;
  close(): Promise<void>;
}

function openConnection(endpoint: HostEndpoint, options: WorkersLdapDirectoryOptions): Connection {
  let socket: net.Socket | undefined;
  const once = <S extends net.Socket>(open: () => S): S => {
    if (socket) throw new Error("connection to the directory was lost; not reconnecting transparently");
    const opened = open();
    socket = opened;
    return opened;
  };
  const client = new Client({
    url: `${endpoint.secure ? "ldaps" : "ldap"}://${net.isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`,
    connectTimeout: options.connectTimeoutMs,
    timeout: options.operationTimeoutMs,
    strictDN: true,
    createConnection: ((port: number, host: string) => once(() => net.connect({ port, host }))) as typeof net.connect,
    // workerd verifies the certificate against the public web PKI and the host name; it takes no CA, client
    // certificate or rejectUnauthorized option, and SNI must be a host name, never an IP literal (RFC 6066 §3).
    createSecureConnection: ((port: number, host: string) =>
      once(() => tls.connect({ port, host, ...(net.isIP(host) ? {} : { servername: host }) }))) as typeof tls.connect,
  });
  let closed = false;
  return {
    client,
    endpoint,
    async close() {
      if (closed) return;
      closed = true;
      try {
        if (client.isConnected) await withDeadline(client.unbind(), UNBIND_TIMEOUT_MS, "unbind");
      } catch {
        // The socket is destroyed below either way.
      } finally {
        if (socket) {
          socket.on("error", () => {});
          socket.destroy();
        }
      }
    },
  };
}

/** The connections one request opened, by directory and host: service connections only, closed at the end. */
class DirectoryScope {
  readonly #service = new Map<string, Promise<Connection>>();
  readonly #all = new Set<Connection>();

  service(key: string, open: () => Promise<Connection>): Promise<Connection> {
    let connection = this.#service.get(key);
    if (!connection) {
      connection = open().then((opened) => {
        this.#all.add(opened);
        return opened;
      });
      // A failed open is forgotten at once, so the next operation tries again.
      connection.catch(() => this.#service.delete(key));
      this.#service.set(key, connection);
    }
    return connection;
  }

  forget(key: string, connection: Connection): void {
    this.#service.delete(key);
    this.#all.delete(connection);
  }

  async close(): Promise<void> {
    const connections = [...this.#all];
    this.#all.clear();
    this.#service.clear();
    await Promise.all(connections.map((connection) => connection.close()));
  }
}

const scopes = new AsyncLocalStorage<DirectoryScope>();

/**
 * Runs one request's work: the service connections it opens are shared by its directory operations and closed
 * when `work` settles (success or not).
 */
export async function runWithDirectoryScope<T>(work: () => Promise<T>): Promise<T> {
  const scope = new DirectoryScope();
  try {
    return await scopes.run(scope, work);
  } finally {
    await scope.close();
  }
}

let nextDirectoryId = 0;

export class WorkersLdapDirectory implements Directory {
  readonly name: string;
  readonly selector: HostSelector;
  readonly #options: WorkersLdapDirectoryOptions;
  readonly #endpoints: HostEndpoint[];
  readonly #timeLimitSeconds: number;
  /** Distinguishes two directories (or two builds of one) in a request scope. */
  readonly #id = `d${(nextDirectoryId += 1)}`;

  constructor(options: WorkersLdapDirectoryOptions) {
    this.name = options.name;
    this.#options = options;
    this.selector = new HostSelector(options.hosts.length, options);
    this.#endpoints = options.hosts.map(parseLdapUrl);
    this.#timeLimitSeconds = Math.max(1, Math.ceil(options.operationTimeoutMs / 1000));
  }

  async search(request: SearchRequest): Promise<DirectoryResult<DirectoryEntry[]>> {
    return await this.#asService((client) => searchEntries(client, request, this.#timeLimitSeconds));
  }

  async bindAsUser(dn: string, password: string): Promise<DirectoryResult<BindOutcome>> {
    const refused = refusedLocally(dn, password);
    if (refused) return { ok: true, value: refused };
    return await this.#onSomeHost(async (endpoint) => {
      const connection = openConnection(endpoint, this.#options);
      try {
        return await withDeadline(userBind(connection.client, dn, password), this.#deadlineMs, "LDAP bind");
      } finally {
        await connection.close();
      }
    });
  }

  async probe(): Promise<DirectoryResult<{ host: string }>> {
    return await this.#asService(async (client, endpoint) => {
      await readRootDse(client);
      return { host: endpoint.url };
    });
  }

  /** Nothing to close: connections live only as long as the request that opened them. */
  async close(): Promise<void> {}

  /** Connect plus one operation: the most a request waits for one host. */
  get #deadlineMs(): number {
    return this.#options.connectTimeoutMs + this.#options.operationTimeoutMs;
  }

  /** Runs `operation` on a service connection (bound as the service identity, or anonymous). */
  async #asService<T>(operation: (client: Client, endpoint: HostEndpoint) => Promise<T>): Promise<DirectoryResult<T>> {
    const scope = scopes.getStore();
    return await this.#onSomeHost(async (endpoint, index) => {
      if (!scope) {
        const connection = openConnection(endpoint, this.#options);
        try {
          return await withDeadline(
            this.#serviceBind(connection).then(() => operation(connection.client, endpoint)),
            this.#deadlineMs,
            "LDAP operation",
          );
        } finally {
          await connection.close();
        }
      }
      const key = `${this.#id}#${index}`;
      const connection = await withDeadline(
        scope.service(key, async () => {
          const opened = openConnection(endpoint, this.#options);
          try {
            await this.#serviceBind(opened);
            return opened;
          } catch (error) {
            await opened.close();
            throw error;
          }
        }),
        this.#deadlineMs,
        "connect",
      );
      try {
        return await withDeadline(
          operation(connection.client, endpoint),
          this.#options.operationTimeoutMs,
          "LDAP operation",
        );
      } catch (error) {
        // A transport failure or timeout leaves the connection in an unknown state: never reuse it.
        scope.forget(key, connection);
        await connection.close();
        throw error;
      }
    });
  }

  async #serviceBind(connection: Connection): Promise<void> {
    // ldaps:// and plaintext ldap:// connect on the first operation; bind as the service identity if there is one.
    await bindAsService(connection.client, this.#options.serviceBind);
  }

  /** Runs the operation on the hosts in the selector's order until one answers. */
  async #onSomeHost<T>(operation: (endpoint: HostEndpoint, index: number) => Promise<T>): Promise<DirectoryResult<T>> {
    return await onSomeHost(this.name, this.selector, this.#options.hosts, (index) =>
      operation(this.#endpoints[index] as HostEndpoint, index),
    );
  }
}
