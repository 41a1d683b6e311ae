// The brute-force store on Workers (bruteForceStore.type: durable-object) inside workerd, against the test slapd.
// The pool runs every Worker build in one isolate, so "two isolates" are two Worker builds here: the Worker keeps one
// runtime per distinct set of bindings (./startup.test.ts), and an INSTANCE binding that differs gives each call
// site its own limiter, as two isolates have. What one instance records, the other sees only through the Durable
// Object; with the memory store it does not (each test's control case), so these tests cannot pass without the DO.
import {
  createExecutionContext,
  env,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { describe, expect, inject, it } from "vitest";
import worker from "../../api/runtime/workers/index.ts";
import { bruteForceObjectName, type BruteForceObjectCalls } from "../../api/limiter/durable-object-store.ts";
import { TEST_TOKEN, workerTestConfig } from "./fixture.ts";

const fixture = inject("workers");
const BASE = "https://smtpgate.test";
type StoreType = "durable-object" | "memory";
type StoreOptions = { onStoreFailure?: "allow" | "tempfail"; shards?: number };

/**
 * Small thresholds, so a block takes a few attempts: pair 3, user 4. A long deadline: on a loaded test machine a call
 * can take longer than the default 250 ms, and a failure not recorded would make a test flaky.
 */
function config(store: StoreType, options: StoreOptions): Record<string, unknown> {
  const full = workerTestConfig(fixture);
  const bruteForce = { pair: { limit: 3, windowSeconds: 600 }, user: { limit: 4, windowSeconds: 600 } };
  return {
    directories: { corp: full.directories.corp },
    smtpAuthQueries: { corp: { directory: "corp" } },
    authProfiles: {
      corp: { type: "ldap", query: "corp" },
      cached: { type: "ldap", query: "corp", cache: { positiveTtlSeconds: 300, negativeTtlSeconds: 0 } },
    },
    listeners: {
      submission: { authProfile: "corp", bruteForce },
      cached: { authProfile: "cached", bruteForce },
    },
    bruteForceStore:
      store === "memory"
        ? { type: "memory" }
        : { type: "durable-object", binding: "BRUTE_FORCE", commandTimeoutMs: 5_000, ...options },
    api: full.api,
  };
}

/** One Worker instance (its own runtime and limiter) over the store. */
function instance(name: string, store: StoreType, options: StoreOptions = {}) {
  const bindings = { ...env, SMTPGATE_CONFIG: config(store, options), INSTANCE: name };
  const call = async (path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const request = new Request(`${BASE}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const response = await worker.fetch(request, bindings, createExecutionContext());
    const answer = (await response.json()) as Record<string, unknown>;
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${JSON.stringify(answer)}`);
    return answer;
  };
  return {
    call,
    auth: (ip: string, username: string, password: string, listener = "submission") =>
      call("/v1/decide/auth", { listener, client: { ip }, tls: null, mechanism: "PLAIN", username, password }),
    cacheHits: async () =>
      ((await call("/v1/cache")) as { profiles: Record<string, { hits: number }> }).profiles.cached?.hits ?? 0,
  };
}

/** Shard `index` of `shards` (the tests' default: the one object every instance talks to). */
function brute(index = 0, shards = 1) {
  const namespace = env.BRUTE_FORCE as {
    idFromName(name: string): unknown;
    get(id: unknown): BruteForceObjectCalls;
  };
  return namespace.get(namespace.idFromName(bruteForceObjectName(index, shards)));
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("the Durable Object store shares the thresholds between Worker instances", () => {
  it.each([
    ["durable-object", "rate-limited"],
    ["memory", "ok"],
  ] as const)("blocks a pair filled through one instance on another (%s store: %s)", async (store, reason) => {
    const [one, two] = [instance(`pair-1-${store}`, store), instance(`pair-2-${store}`, store)];
    const ip = store === "memory" ? "192.0.2.101" : "192.0.2.102";
    for (const i of range(3))
      expect(await one.auth(ip, "alice", `guess-${i}`)).toMatchObject({ reason: "invalid-credentials" });
    // The failures are in the object's storage, not in its memory: they outlive the object's instance.
    if (store === "durable-object") await evictDurableObject(brute());
    expect(await two.auth(ip, "alice", "alice-password")).toMatchObject({ reason });
  });

  it.each([
    ["durable-object", "ok"],
    ["memory", "rate-limited"],
  ] as const)(
    "lets a network trusted through one instance past a full user bucket on another (%s store: %s)",
    async (store, reason) => {
      const [one, two] = [instance(`trust-1-${store}`, store), instance(`trust-2-${store}`, store)];
      expect(await one.auth("198.51.100.1", "bob", "bob-password")).toMatchObject({ verdict: "allow" });
      for (const i of range(4)) await two.auth(`203.0.113.${i + 1}`, "bob", `spray-${i}`);
      expect(await two.auth("203.0.113.99", "bob", "bob-password")).toMatchObject({
        verdict: "tempfail",
        reason: "rate-limited",
        smtp: { code: 454, enhanced: "4.7.0" },
      });
      expect(await two.auth("198.51.100.1", "bob", "bob-password")).toMatchObject({ reason });
      await one.call("/v1/users/flush", { user: "bob" });
    },
  );

  it.each([
    ["durable-object", 1],
    ["memory", 2],
  ] as const)(
    "drops a cached allow when another instance flushes the user (%s store: %d hits)",
    async (store, hits) => {
      const [one, two] = [instance(`flush-1-${store}`, store), instance(`flush-2-${store}`, store)];
      const ip = store === "memory" ? "192.0.2.111" : "192.0.2.112";
      await one.auth(ip, "alice", "alice-password", "cached");
      await one.auth(ip, "alice", "alice-password", "cached");
      expect(await one.cacheHits()).toBe(1);
      expect(await two.call("/v1/users/flush", { user: "alice" })).toMatchObject({ user: "alice" });
      expect(await one.auth(ip, "alice", "alice-password", "cached")).toMatchObject({ verdict: "allow" });
      expect(await one.cacheHits()).toBe(hits);
    },
  );

  it("lifts a pair block with a flush through another instance", async () => {
    const [one, two] = [instance("lift-1", "durable-object"), instance("lift-2", "durable-object")];
    for (const i of range(3)) await one.auth("192.0.2.121", "alice", `guess-${i}`);
    expect(await one.auth("192.0.2.121", "alice", "alice-password")).toMatchObject({ reason: "rate-limited" });
    await two.call("/v1/users/flush", { user: "alice" });
    expect(await one.auth("192.0.2.121", "alice", "alice-password")).toMatchObject({ reason: "ok" });
  });

  it("lists the blocks in the object and clears an address through another instance", async () => {
    const [one, two] = [instance("list-1", "durable-object"), instance("list-2", "durable-object")];
    for (const i of range(3)) await one.auth("2001:db8:7::1", "mallory", `guess-${i}`);
    const { blocks } = (await two.call("/v1/blocks")) as { blocks: Record<string, unknown>[] };
    expect(blocks).toContainEqual({
      bucket: "pair",
      address: "2001:db8:7:0:0:0:0:0/64",
      user: "mallory",
      listeners: expect.arrayContaining([
        { listener: "submission", failures: 3, retryAfterSeconds: expect.any(Number) },
      ]),
    });
    expect(await two.call("/v1/addresses/clear", { address: "2001:db8:7::1" })).toEqual({
      address: "2001:db8:7::1",
      cleared: ["2001:db8:7:0:0:0:0:0/64"],
    });
  });
});

describe("the buckets spread over shards", () => {
  it("keeps each user's and each network's buckets in one shard: shared thresholds, flushes and listings", async () => {
    const shards = 4;
    const [one, two] = [
      instance("shards-1", "durable-object", { shards }),
      instance("shards-2", "durable-object", { shards }),
    ];
    // Ten users sprayed from one network: their pair buckets land in several shards, the address bucket in one.
    for (const user of range(10)) for (const i of range(3)) await one.auth("203.0.113.200", `sharded${user}`, `g-${i}`);
    for (const user of range(10))
      expect(await two.auth("203.0.113.200", `sharded${user}`, "whatever")).toMatchObject({ reason: "rate-limited" });
    const held = await Promise.all(range(shards).map((index) => brute(index, shards).scan("pair:", Date.now())));
    expect(held.filter((windows) => windows.length > 0).length).toBeGreaterThan(1);
    expect(held.flat()).toHaveLength(10);
    const { blocks } = (await two.call("/v1/blocks")) as { blocks: { bucket: string; user: string | null }[] };
    expect(blocks.filter((block) => block.bucket === "pair" && block.user?.startsWith("sharded"))).toHaveLength(10);
    // The generation lives with the user's buckets: a flush through one instance lifts the block on the other.
    await one.call("/v1/users/flush", { user: "sharded3" });
    expect(await two.auth("203.0.113.200", "sharded3", "x")).toMatchObject({ reason: "no-such-user" });
  });
});

describe("the object itself, through its stub", () => {
  it("counts distinct members, keeps the newest `keep`, trims to the window and expires trust", async () => {
    const object = brute();
    const window = { key: "address:stub-test/32", windowMs: 1_000 };
    await object.record([{ ...window, member: "a", keep: 2 }], 10_000);
    await object.record([{ ...window, member: "a", keep: 2 }], 10_100);
    await object.record([{ ...window, member: "b", keep: 2 }], 10_200);
    await object.record([{ ...window, member: "c", keep: 2 }], 10_300);
    expect(await object.read([window], "trust:stub", 10_400)).toEqual({
      windows: [{ count: 2, oldestMs: 10_200 }],
      flag: false,
    });
    expect((await object.read([window], "trust:stub", 11_250)).windows).toEqual([{ count: 1, oldestMs: 10_300 }]);
    await object.trust("trust:stub", 500, [window.key], 12_000);
    expect(await object.read([window], "trust:stub", 12_100)).toEqual({
      windows: [{ count: 0, oldestMs: null }],
      flag: true,
    });
    expect((await object.read([], "trust:stub", 12_600)).flag).toBe(false);
    expect(await object.bumpGeneration("stub-user")).toBe(1);
    expect(await object.bumpGeneration("stub-user")).toBe(2);
    expect(await object.generations(["stub-user", "never-flushed"])).toEqual([2, 0]);
    expect(new Uint8Array(await object.memberKey())).toEqual(new Uint8Array(await object.memberKey()));
  });

  it("deletes expired members and flags in its alarm, and keeps the live ones", async () => {
    const object = brute();
    const now = Date.now();
    await object.record([{ key: "pair:0:sweep:192.0.2.1/32", windowMs: 1_000, member: "old", keep: 10 }], now - 5_000);
    await object.record([{ key: "pair:0:sweep:192.0.2.2/32", windowMs: 60_000, member: "live", keep: 10 }], now);
    await object.trust("trust:0:sweep:192.0.2.1/32", 1_000, [], now - 5_000);
    const rows = () =>
      runInDurableObject(brute(), (_, state) => {
        const { sql } = (state as { storage: { sql: { exec(q: string): { toArray(): unknown[] } } } }).storage;
        return [
          sql.exec("SELECT key FROM members WHERE key LIKE 'pair:0:sweep:%'").toArray().length,
          sql.exec("SELECT key FROM flags WHERE key LIKE 'trust:0:sweep:%'").toArray().length,
        ];
      });
    expect(await rows()).toEqual([2, 1]);
    expect(await runDurableObjectAlarm(brute())).toBe(true);
    expect(await rows()).toEqual([1, 0]);
  });

  it("records concurrent failures without losing one (the object runs one call at a time)", async () => {
    const object = brute();
    const window = { key: "user:0:concurrent", windowMs: 60_000 };
    const now = Date.now();
    await Promise.all(range(40).map((i) => object.record([{ ...window, member: `m${i}`, keep: 100 }], now + i)));
    expect((await object.read([window], "none", now + 100)).windows[0]).toMatchObject({ count: 40 });
  });
});

describe("a failing object follows onStoreFailure", () => {
  /** Runs SQL inside the object. */
  const sql = (query: string) =>
    runInDurableObject(brute(), (_, state) => {
      (state as { storage: { sql: { exec(query: string): unknown } } }).storage.sql.exec(query);
    });

  /** Every call of the object fails for `body` (its buckets table is gone), a real failure; then it is put back. */
  async function withBrokenObject(body: () => Promise<void>): Promise<void> {
    await sql("ALTER TABLE members RENAME TO members_away");
    try {
      await body();
    } finally {
      await sql("ALTER TABLE members_away RENAME TO members");
    }
  }

  it("answers 454 under tempfail and decides without the limiter under allow", async () => {
    const strict = instance("broken-tempfail", "durable-object", { onStoreFailure: "tempfail" });
    const lenient = instance("broken-allow", "durable-object", { onStoreFailure: "allow" });
    await withBrokenObject(async () => {
      expect(await strict.auth("192.0.2.131", "alice", "alice-password")).toMatchObject({
        verdict: "tempfail",
        reason: "rate-limited",
        smtp: { code: 454 },
      });
      expect(await lenient.auth("192.0.2.131", "alice", "alice-password")).toMatchObject({ verdict: "allow" });
      expect(await lenient.auth("192.0.2.131", "alice", "wrong")).toMatchObject({ reason: "invalid-credentials" });
    });
    expect(await strict.auth("192.0.2.131", "alice", "alice-password")).toMatchObject({ verdict: "allow" });
  });
});
