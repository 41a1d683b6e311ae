/**
 * A bounded pool of LDAP connections to one host, each carrying up to `operationsPerConnection` operations at
 * once (ldapts matches answers to requests by message ID): searches share a service connection, while a bind,
 * which changes who the connection is, has its connection to itself (operationsPerConnection 1).
 *
 * A new connection is opened only when every open (or opening) one is full. A connection whose operation failed
 * in transport (socket error, timeout) is destroyed, with every other operation it carried (they fail like that
 * one and go to the next host); one whose operation got an LDAP answer (even an error result) stays. Each
 * operation, including its wait for a connection, has one deadline on the pool's DeadlineList: one timer per
 * pool, not one per operation.
 *
 * Why a timed-out operation drops its shared connection rather than abandoning just itself: an operation that
 * got no answer within operationTimeoutMs most often means the host or the path to it hangs, and then the
 * others on that connection would time out too; dropping it fails them at once, so they go to the next host
 * now instead of each waiting for its own deadline. LDAP's Abandon has no answer, so there would be no telling
 * whether the server let go of the request, and ldapts offers no way to forget one request and keep the rest.
 */
import { ResultCodeError } from "ldapts";
import { DeadlineExceeded } from "../../lib/deadline.ts";
import type { LdapConnection } from "./connection.ts";
import { DeadlineList, type Deadline } from "./deadline-list.ts";

export interface PoolOptions {
  max: number;
  /** How many operations one connection carries at once. */
  operationsPerConnection: number;
  /** Opens and prepares (secures, binds) a new connection. */
  open: () => Promise<LdapConnection>;
  /** Deadline for one operation, including the wait for a connection. */
  operationTimeoutMs: number;
}

/** One connection of the pool, from the moment it starts opening. */
interface Member {
  ready: Promise<LdapConnection>;
  /** Set once open. */
  connection: LdapConnection | null;
  /** Operations given this member, including those waiting for it to open. */
  running: number;
  /** In the pool's list of members with room. */
  listed: boolean;
  /** Discarded: takes no more operations. */
  gone: boolean;
}

type Waiter = (member: Member | null) => void;

export class ConnectionPool {
  readonly #options: PoolOptions;
  readonly #deadlines: DeadlineList;
  /** Members with room for another operation, the most recently listed last (it is used first). */
  readonly #withRoom: Member[] = [];
  readonly #members = new Set<Member>();
  readonly #waiters: Waiter[] = [];
  /** Requests that share a connection and are made in one event-loop turn leave in one write. */
  readonly #coalesce: boolean;
  #closed = false;

  constructor(options: PoolOptions) {
    this.#options = options;
    this.#coalesce = options.operationsPerConnection > 1;
    this.#deadlines = new DeadlineList(options.operationTimeoutMs);
  }

  /** Runs `operation` on a pooled connection under the operation deadline. */
  use<T>(operation: (connection: LdapConnection) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("pool closed"));
    return new Promise<T>((resolve, reject) => {
      let member: Member | null = null;
      let deadline: Deadline | null = null;
      const finish = (keep: boolean): boolean => {
        if (!this.#deadlines.cancel(deadline as Deadline)) return false;
        this.#release(member as Member, keep);
        return true;
      };
      const run = (connection: LdapConnection): Promise<T> => {
        // The deadline passed while the connection was opening: the caller has had its answer, and its spot on
        // the connection went to another operation (#timedOut), so this one must not run beside it.
        if (!(deadline as Deadline).pending) return Promise.reject(this.#timeoutError(false));
        if (this.#coalesce) connection.coalesceWrites();
        return operation(connection);
      };
      const start = (claimed: Member): void => {
        member = claimed;
        claimed.ready.then(run).then(
          (value) => finish(true) && resolve(value),
          // The server answered with an LDAP result: the connection itself is fine.
          (error: unknown) => finish(error instanceof ResultCodeError) && reject(error),
        );
      };
      const waiter: Waiter = (claimed) => {
        if (claimed) start(claimed);
        else if (this.#deadlines.cancel(deadline as Deadline)) reject(new Error("pool closed"));
      };
      deadline = this.#deadlines.add(() => {
        if (member === null) this.#forgetWaiter(waiter);
        else this.#timedOut(member);
        reject(this.#timeoutError(member === null));
      });
      const free = this.#claim();
      if (free) start(free);
      else this.#waiters.push(waiter);
    });
  }

  /** A member with room (taken), a new one if the pool may grow, or null: wait. */
  #claim(): Member | null {
    while (this.#withRoom.length > 0) {
      const member = this.#withRoom[this.#withRoom.length - 1] as Member;
      if (member.connection !== null && !member.connection.usable) {
        this.#discard(member);
        continue;
      }
      this.#take(member);
      return member;
    }
    return this.#members.size < this.#options.max ? this.#openMember() : null;
  }

  #take(member: Member): void {
    member.running += 1;
    if (member.running >= this.#options.operationsPerConnection && member.listed) {
      // A full member is always the last listed: #claim takes from the end, #release appends.
      this.#withRoom.pop();
      member.listed = false;
    }
  }

  #openMember(): Member {
    const member: Member = { ready: this.#options.open(), connection: null, running: 0, listed: false, gone: false };
    this.#members.add(member);
    this.#list(member);
    this.#take(member);
    member.ready.then(
      (connection) => {
        member.connection = connection;
        // The pool closed meanwhile: nobody will use it. (One whose operations all timed out while it opened stays
        // listed, for the next operation: #timedOut.)
        if (this.#closed) this.#discard(member);
      },
      () => {
        this.#discard(member);
        this.#serveWaiters();
      },
    );
    return member;
  }

  #list(member: Member): void {
    if (member.listed || member.gone) return;
    member.listed = true;
    this.#withRoom.push(member);
  }

  #release(member: Member, keep: boolean): void {
    member.running -= 1;
    if (member.gone) return;
    if (!keep || !(member.connection as LdapConnection).usable || this.#closed) this.#discard(member);
    else this.#list(member);
    this.#serveWaiters();
  }

  /** The operation's deadline passed: it no longer holds its member; an open connection is dropped (see above). */
  #timedOut(member: Member): void {
    member.running -= 1;
    if (member.gone) return;
    // Still opening (bounded by its own deadline), the next operation may use it; open, it is dropped.
    if (member.connection === null) this.#list(member);
    else this.#discard(member);
    this.#serveWaiters();
  }

  /** Room appeared (a spot on a connection, or a slot for a new one): the waiters take it in turn. */
  #serveWaiters(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      const member = this.#claim();
      if (member === null) return;
      (this.#waiters.shift() as Waiter)(member);
    }
  }

  #timeoutError(waiting: boolean): DeadlineExceeded {
    const { operationTimeoutMs, max } = this.#options;
    return new DeadlineExceeded(
      waiting
        ? `no free connection within ${operationTimeoutMs} ms (maxConnections ${max})`
        : `LDAP operation timed out after ${operationTimeoutMs} ms`,
    );
  }

  #forgetWaiter(waiter: Waiter): void {
    const index = this.#waiters.indexOf(waiter);
    if (index >= 0) this.#waiters.splice(index, 1);
  }

  #discard(member: Member): void {
    if (member.gone) return;
    member.gone = true;
    this.#members.delete(member);
    if (member.listed) {
      member.listed = false;
      const at = this.#withRoom.indexOf(member);
      if (at >= 0) this.#withRoom.splice(at, 1);
    }
    // Its operations fail with the socket; a connection still opening is destroyed when (if) it opens.
    if (member.connection) member.connection.destroy();
    else
      member.ready.then(
        (connection) => connection.destroy(),
        () => {},
      );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const idle = [...this.#members].filter((member) => member.running === 0 && member.connection !== null);
    for (const member of idle) {
      member.gone = true;
      this.#members.delete(member);
    }
    this.#withRoom.length = 0;
    await Promise.all(idle.map((member) => (member.connection as LdapConnection).close()));
    for (const waiter of this.#waiters.splice(0)) waiter(null);
  }
}
