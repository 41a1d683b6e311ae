/**
 * A bounded pool of LDAP connections to one host, each checked out by one operation at a time.
 *
 * A connection whose operation failed in transport (socket error, timeout) is destroyed; one whose operation got
 * an LDAP answer (even an error result) goes back to the pool. Waiting for a free connection is bounded too.
 */
import { ResultCodeError } from "ldapts";
import { DeadlineExceeded, withDeadline, type LdapConnection } from "./connection.ts";

export interface PoolOptions {
  max: number;
  /** Opens and prepares (secures, binds) a new connection. */
  open: () => Promise<LdapConnection>;
  /** Deadline for one operation, including the wait for a connection. */
  operationTimeoutMs: number;
}

export class ConnectionPool {
  readonly #options: PoolOptions;
  readonly #idle: LdapConnection[] = [];
  readonly #waiters: ((connection: LdapConnection | null) => void)[] = [];
  #size = 0;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  /** Runs `operation` on a pooled connection under the operation deadline. */
  async use<T>(operation: (connection: LdapConnection) => Promise<T>): Promise<T> {
    const connection = await this.#acquire();
    let keep = false;
    try {
      const result = await withDeadline(operation(connection), this.#options.operationTimeoutMs, "LDAP operation");
      keep = true;
      return result;
    } catch (error) {
      // The server answered with an LDAP result: the connection itself is fine.
      keep = error instanceof ResultCodeError;
      throw error;
    } finally {
      this.#release(connection, keep);
    }
  }

  async #acquire(): Promise<LdapConnection> {
    if (this.#closed) throw new Error("pool closed");
    while (this.#idle.length > 0) {
      const connection = this.#idle.pop() as LdapConnection;
      if (connection.usable) return connection;
      this.#discard(connection);
    }
    if (this.#size < this.#options.max) {
      this.#size += 1;
      try {
        return await this.#options.open();
      } catch (error) {
        this.#size -= 1;
        this.#wakeOne();
        throw error;
      }
    }
    return await new Promise<LdapConnection>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(
          new DeadlineExceeded(
            `no free connection within ${this.#options.operationTimeoutMs} ms (maxConnections ${this.#options.max})`,
          ),
        );
      }, this.#options.operationTimeoutMs);
      const waiter = (connection: LdapConnection | null): void => {
        clearTimeout(timer);
        if (connection) resolve(connection);
        else this.#acquire().then(resolve, reject);
      };
      this.#waiters.push(waiter);
    });
  }

  #release(connection: LdapConnection, keep: boolean): void {
    if (!keep || !connection.usable || this.#closed) {
      this.#discard(connection);
      this.#wakeOne();
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter(connection);
    else this.#idle.push(connection);
  }

  #discard(connection: LdapConnection): void {
    this.#size -= 1;
    connection.destroy();
  }

  /** A slot became free: let one waiter open a new connection. */
  #wakeOne(): void {
    this.#waiters.shift()?.(null);
  }

  get stats(): { size: number; idle: number; waiting: number } {
    return { size: this.#size, idle: this.#idle.length, waiting: this.#waiters.length };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const idle = this.#idle.splice(0);
    this.#size -= idle.length;
    await Promise.all(idle.map((connection) => connection.close()));
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }
}
