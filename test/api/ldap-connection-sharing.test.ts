// Searches share service connections (up to SEARCHES_PER_CONNECTION in flight on one), binds do not; a search
// that gets no answer fails alone, by its deadline, and a shared connection that drops sends every search it
// carried to the next host. Counted at the directory's side, through proxies in front of a real slapd.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../../api/config/schema.ts";
import { LdapDirectory, SEARCHES_PER_CONNECTION } from "../../api/ldap/ldap-directory.ts";
import { API_TOKENS_CONFIG, startTestApi } from "../../dev/api.ts";
import { startCountingProxy, startHoldingProxy, type CountingProxy, type HoldingProxy } from "../../dev/network.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { waitFor } from "../../dev/wait.ts";

const { alice } = SEED.users;
/** A user name whose search the holding proxy never lets the directory answer. */
const SLOW = "slowpoke";

let slapd: SlapdInstance;
let counting: CountingProxy;
let holding: HoldingProxy;
const opened: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  slapd = await startSlapd();
  counting = await startCountingProxy({ host: "127.0.0.1", port: slapd.ports.ldap });
  opened.push(slapd, counting);
});

afterAll(async () => {
  for (const thing of opened.reverse()) await thing.close();
});

async function freshHoldingProxy(): Promise<HoldingProxy> {
  holding = await startHoldingProxy({ host: "127.0.0.1", port: slapd.ports.ldap }, SLOW);
  opened.push(holding);
  return holding;
}

function directory(
  hosts: string[],
  options: { startTls?: boolean; operationTimeoutMs?: number; maxConnections?: number } = {},
) {
  const created = new LdapDirectory({
    name: "corp",
    hosts,
    mode: "failover",
    failbackAfterMs: 60_000,
    hostDownForMs: 60_000,
    security: {
      startTls: options.startTls ?? true,
      ca: slapd.pki.caPem,
      serverName: "localhost",
      connectTimeoutMs: 1000,
      operationTimeoutMs: options.operationTimeoutMs ?? 1000,
    },
    serviceBind: { dn: SEED.serviceDn, password: SEED.servicePassword },
    maxConnections: options.maxConnections ?? 64,
  });
  opened.push(created);
  return created;
}

const searchFor = (uid: string) => ({
  baseDn: SEED.peopleDn,
  filter: `(uid=${uid})`,
  attributes: ["uid"],
  sizeLimit: 2,
});

describe("service connections", () => {
  it(`carry up to ${SEARCHES_PER_CONNECTION} searches at once; binds keep a connection each`, async () => {
    const ldap = directory([counting.url()]);
    counting.reset();
    const searches = 20;
    const results = await Promise.all(Array.from({ length: searches }, () => ldap.search(searchFor("alice"))));
    for (const result of results) expect(result).toMatchObject({ ok: true, value: [{ dn: alice.dn }] });
    expect(counting.connections).toBe(Math.ceil(searches / SEARCHES_PER_CONNECTION));

    // The same again: the connections stay and carry the next round.
    await Promise.all(Array.from({ length: searches }, () => ldap.search(searchFor("alice"))));
    expect(counting.connections).toBe(Math.ceil(searches / SEARCHES_PER_CONNECTION));

    counting.reset();
    const binds = await Promise.all([1, 2, 3].map(() => ldap.bindAsUser(alice.dn, alice.password)));
    for (const bind of binds) expect(bind).toEqual({ ok: true, value: { bound: true } });
    expect(counting.connections).toBe(3);
  });

  it("make a search wait for room once maxConnections connections carry all they can", async () => {
    const ldap = directory([counting.url()], { maxConnections: 1 });
    counting.reset();
    const searches = 3 * SEARCHES_PER_CONNECTION + 1;
    const results = await Promise.all(Array.from({ length: searches }, () => ldap.search(searchFor("alice"))));
    for (const result of results) expect(result).toMatchObject({ ok: true, value: [{ dn: alice.dn }] });
    expect(counting.connections).toBe(1);
  });

  it("let a search that gets no answer time out alone, while the others on its connection are answered", async () => {
    const proxy = await freshHoldingProxy();
    const ldap = directory([proxy.url], { startTls: false, operationTimeoutMs: 600 });
    const began = performance.now();
    const slow = ldap.search(searchFor(SLOW));
    await waitFor(() => proxy.held === 1, { timeoutMs: 2000 });

    const others = await Promise.all(Array.from({ length: 5 }, () => ldap.search(searchFor("alice"))));
    for (const result of others) expect(result).toMatchObject({ ok: true, value: [{ dn: alice.dn }] });
    // On the slow search's own connection, and not held up by it.
    expect(proxy.connections).toBe(1);
    expect(performance.now() - began).toBeLessThan(500);

    const timedOut = await slow;
    expect(timedOut).toMatchObject({ ok: false, error: { kind: "unavailable" } });
    expect(timedOut.ok || timedOut.error.detail).toMatch(/timed out after 600 ms/);
    expect(performance.now() - began).toBeGreaterThanOrEqual(590);

    // The timed-out connection was dropped (see pool.ts); the next search gets a new one and an answer.
    expect(await ldap.search(searchFor("alice"))).toMatchObject({ ok: true, value: [{ dn: alice.dn }] });
    expect(proxy.connections).toBe(2);
  });

  it("send every search of a dropped shared connection to the next host at once", async () => {
    const proxy = await freshHoldingProxy();
    const ldap = directory([proxy.url, slapd.ldapUrl], { startTls: false, operationTimeoutMs: 5000 });
    const began = performance.now();
    const searches = Array.from({ length: 4 }, () => ldap.search(searchFor(SLOW)));
    await waitFor(() => proxy.held === 4, { timeoutMs: 2000 });
    expect(proxy.connections).toBe(1);

    proxy.dropConnections();
    for (const result of await Promise.all(searches)) expect(result).toEqual({ ok: true, value: [] });
    expect(ldap.selector.active).toBe(1);
    // Well before their deadline: the drop failed them, not the timer.
    expect(performance.now() - began).toBeLessThan(2000);
  });

  it("drop a connection whose search timed out, sending the searches still on it to the next host at once", async () => {
    const proxy = await freshHoldingProxy();
    const ldap = directory([proxy.url, slapd.ldapUrl], { startTls: false, operationTimeoutMs: 800 });
    const began = performance.now();
    const first = ldap.search(searchFor(SLOW));
    await waitFor(() => proxy.held === 1, { timeoutMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const second = ldap.search(searchFor(SLOW)).then((result) => ({ result, ms: performance.now() - began }));
    await waitFor(() => proxy.held === 2, { timeoutMs: 2000 });
    expect(proxy.connections).toBe(1);

    expect(await first).toEqual({ ok: true, value: [] });
    const { result, ms } = await second;
    expect(result).toEqual({ ok: true, value: [] });
    // Failed over when the first one's deadline dropped the connection, not at its own (about 1200 ms).
    expect(ms).toBeLessThan(1100);
  });
});

describe("a decision whose search gets no answer", () => {
  it("is a tempfail, and decisions beside it on the same connection are answered", async () => {
    const proxy = await freshHoldingProxy();
    const config: ConfigInput = {
      directories: {
        corp: {
          hosts: [proxy.url],
          startTls: false,
          allowPlaintext: true,
          bind: { dn: SEED.serviceDn, password: { env: "BIND_PW" } },
          baseDn: SEED.baseDn,
          operationTimeoutMs: 600,
        } as never,
      },
      smtpAuthQueries: { q: { directory: "corp" } },
      authProfiles: { corp: { type: "ldap", query: "q" } },
      listeners: { submission: { authProfile: "corp" } },
      api: API_TOKENS_CONFIG,
    };
    const api = await startTestApi(config, { BIND_PW: SEED.servicePassword });
    opened.push(api);
    const slow = api.decideAuth({ username: SLOW, password: "whatever" });
    await waitFor(() => proxy.held === 1, { timeoutMs: 2000 });

    const began = performance.now();
    const others = await Promise.all(
      Array.from({ length: 4 }, () => api.decideAuth({ username: "alice", password: alice.password })),
    );
    for (const decision of others) expect(decision).toMatchObject({ verdict: "allow" });
    expect(performance.now() - began).toBeLessThan(500);

    expect(await slow).toMatchObject({
      verdict: "tempfail",
      reason: "directory-unavailable",
      smtp: { code: 454 },
    });
  });
});
