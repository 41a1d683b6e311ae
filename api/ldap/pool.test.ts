// The pool's bookkeeping with connections that open when the test says (the LDAP traffic itself runs against a
// real slapd in test/api/ldap-connection-sharing.test.ts).
import { describe, expect, it } from "vitest";
import type { LdapConnection } from "./connection.ts";
import { ConnectionPool } from "./pool.ts";

/** A connection that opens after `openMs`; it only needs what the pool asks of one. */
function slowOpen(openMs: number): () => Promise<LdapConnection> {
  const connection = { usable: true, coalesceWrites() {}, destroy() {}, close: async () => {} };
  return () => new Promise((resolve) => setTimeout(() => resolve(connection as unknown as LdapConnection), openMs));
}

describe("ConnectionPool", () => {
  it("does not run an operation whose deadline passed while its connection was opening", async () => {
    const pool = new ConnectionPool({ max: 1, operationsPerConnection: 1, open: slowOpen(80), operationTimeoutMs: 30 });
    let running = 0;
    let peak = 0;
    const ran: string[] = [];
    const operation = (name: string) => async () => {
      ran.push(name);
      peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running -= 1;
      return name;
    };
    const first = pool.use(operation("first"));
    await expect(first).rejects.toThrow("LDAP operation timed out after 30 ms");
    // The spot the first one left goes to the second, on the same connection still opening; it times out too.
    const second = pool.use(operation("second"));
    await expect(second).rejects.toThrow("LDAP operation timed out after 30 ms");
    // The connection opens: neither runs on it now (their callers have had their answers).
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(ran).toEqual([]);
    // A third, in time, runs alone.
    expect(await pool.use(operation("third"))).toBe("third");
    expect(ran).toEqual(["third"]);
    expect(peak).toBe(1);
    await pool.close();
  });
});
