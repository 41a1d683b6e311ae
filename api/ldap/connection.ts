/**
 * One LDAP connection to one host, over ldapts, secured before anything secret crosses it.
 *
 * - `ldaps://`: TLS from the first byte; `ldap://`: StartTLS right after connect (unless the profile explicitly
 *   allows plaintext). The directory's certificate is checked against the profile's CA bundle (or the system
 *   store) and against the server name.
 * - ldapts transparently reconnects a closed client on its next operation, and for `ldap://` that new socket
 *   would be plaintext and unbound. We refuse: the transport below lets a connection open exactly once, so a
 *   dropped connection fails its next operation and the pool discards it.
 * - Operations have no ldapts timer each (its `timeout` option arms a setTimeout per message): the pool gives
 *   every operation its deadline from one timer (deadline-list.ts) and destroys a connection that missed one.
 * - Several operations share a service connection, so requests go out as they are made (no Nagle delay behind
 *   an unacknowledged one), and those made in one event-loop turn leave in one write: the socket is corked
 *   when an operation starts and uncorked once that turn's I/O callbacks are done (setImmediate).
 */
import net from "node:net";
import tls from "node:tls";
import { Client } from "ldapts";
import { withDeadline } from "../../lib/deadline.ts";
import { guardLdaptsDebugStrings } from "./ldapts-debug-guard.ts";

guardLdaptsDebugStrings();

export interface HostEndpoint {
  url: string;
  host: string;
  port: number;
  secure: boolean;
}

export interface ConnectionSecurity {
  startTls: boolean;
  /** PEM CA bundle; undefined = the system store. */
  ca?: string | undefined;
  /** Name the certificate must carry; default the URL's host. */
  serverName?: string | undefined;
  connectTimeoutMs: number;
  operationTimeoutMs: number;
}

export function parseLdapUrl(url: string): HostEndpoint {
  const parsed = new URL(url);
  const secure = parsed.protocol === "ldaps:";
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return { url, host, port: parsed.port ? Number(parsed.port) : secure ? 636 : 389, secure };
}

export class LdapConnection {
  readonly client: Client;
  readonly endpoint: HostEndpoint;
  readonly #sockets: net.Socket[] = [];
  #closed = false;
  #dropped = false;

  private constructor(endpoint: HostEndpoint, security: ConnectionSecurity) {
    this.endpoint = endpoint;
    const tlsOptions = tlsOptionsFor(endpoint, security);
    let opened = false;
    const openOnce = <S extends net.Socket>(open: () => S): S => {
      if (opened) throw new Error("connection to the directory was lost; not reconnecting transparently");
      opened = true;
      return this.#track(open());
    };
    this.client = new Client({
      url: `${endpoint.secure ? "ldaps" : "ldap"}://${net.isIPv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`,
      connectTimeout: security.connectTimeoutMs,
      timeout: 0,
      strictDN: true,
      createConnection: ((port: number, host: string) =>
        openOnce(() => net.connect({ port, host }))) as typeof net.connect,
      createSecureConnection: ((...args: unknown[]) => {
        // Called with (port, host, options) to open ldaps://, and with (options) to upgrade after StartTLS.
        if (typeof args[0] === "number")
          return openOnce(() => tls.connect({ ...tlsOptions, port: args[0] as number, host: args[1] as string }));
        return this.#track(tls.connect({ ...(args[0] as tls.ConnectionOptions), ...tlsOptions }));
      }) as typeof tls.connect,
    });
  }

  /**
   * Connects and secures the connection, then runs `prepare` (the service bind) on it within the operation
   * timeout, or throws (with the socket already destroyed).
   */
  static async open(
    endpoint: HostEndpoint,
    security: ConnectionSecurity,
    prepare?: (client: Client) => Promise<void>,
  ): Promise<LdapConnection> {
    const connection = new LdapConnection(endpoint, security);
    try {
      await withDeadline(
        connection.#secure(security),
        security.connectTimeoutMs + security.operationTimeoutMs,
        "connect",
      );
      if (prepare) await withDeadline(prepare(connection.client), security.operationTimeoutMs, "LDAP operation");
      return connection;
    } catch (error) {
      connection.destroy();
      throw error;
    }
  }

  async #secure(security: ConnectionSecurity): Promise<void> {
    // ldaps:// (and an explicitly allowed plaintext ldap://) connects on first use; a StartTLS connection must be
    // upgraded before anything else crosses it.
    if (!this.endpoint.secure && security.startTls) await this.client.startTLS({});
  }

  /** False once the connection was closed or dropped; a fresh, not yet connected one is usable. */
  get usable(): boolean {
    return !this.#closed && !this.#dropped && (this.#sockets.length === 0 || this.client.isConnected);
  }

  /** Holds this turn's requests back, to send them in one write when the turn's callbacks are done. */
  coalesceWrites(): void {
    const socket = this.#sockets[this.#sockets.length - 1];
    if (socket === undefined || corked.has(socket)) return;
    socket.cork();
    corked.add(socket);
    if (corked.size === 1) setImmediate(uncorkAll);
  }

  #track<S extends net.Socket>(socket: S): S {
    this.#sockets.push(socket);
    socket.setNoDelay(true);
    // After StartTLS, ldapts watches only the plain socket's "close" and compares it with its current (TLS)
    // socket, so it keeps reporting a dropped connection as connected. We watch every socket ourselves.
    socket.once("close", () => {
      this.#dropped = true;
    });
    return socket;
  }

  /** Closes the connection at once; safe to call more than once. */
  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#sockets) {
      socket.on("error", () => {});
      socket.destroy();
    }
  }

  /** Polite close: an LDAP unbind, then the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.client.isConnected) await withDeadline(this.client.unbind(), 1000, "unbind");
    } catch {
      // The socket is destroyed below either way.
    } finally {
      this.destroy();
    }
  }
}

/** Sockets corked this turn, across all connections: one setImmediate uncorks them all. */
const corked = new Set<net.Socket>();

function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  corked.clear();
}

function tlsOptionsFor(endpoint: HostEndpoint, security: ConnectionSecurity): tls.ConnectionOptions {
  const expectedName = security.serverName ?? endpoint.host;
  return {
    minVersion: "TLSv1.2",
    rejectUnauthorized: true,
    ...(security.ca === undefined ? {} : { ca: security.ca }),
    // SNI must be a host name, never an IP literal (RFC 6066 §3).
    ...(net.isIP(expectedName) ? {} : { servername: expectedName }),
    checkServerIdentity: (_host, certificate) => tls.checkServerIdentity(expectedName, certificate),
  };
}
