// The Redis brute-force store with a real redis-server: two API processes sharing one server stop a spray split
// across both at the shared threshold, a flush on one reaches the other, and an unreachable Redis is what
// bruteForceStore.onStoreFailure says (logged and counted).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "redis";
import { startTestApi, type TestApi } from "../../dev/api.ts";
import { startRedis, type RedisInstance } from "../../dev/redis.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { RedisLimiterStore } from "../../api/limiter/redis-store.ts";
import { attempt, bruteForceConfig } from "./brute-force-fixture.ts";

const { alice } = SEED.users;
const METRICS_TOKEN = "metrics-token-0123456789";
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("two API processes sharing one redis-server", () => {
  let slapd: SlapdInstance;
  let redis: RedisInstance;
  let apis: TestApi[];

  beforeAll(async () => {
    [slapd, redis] = await Promise.all([startSlapd(), startRedis()]);
    const config = bruteForceConfig(slapd, {
      bruteForceStore: { type: "redis", url: redis.url, onStoreFailure: "tempfail", commandTimeoutMs: 500 },
    });
    const env = { BIND_PW: SEED.servicePassword, METRICS_TOKEN };
    apis = await Promise.all([startTestApi(config, env), startTestApi(config, env)]);
  });

  afterAll(async () => {
    await Promise.all((apis ?? []).map((api) => api.close()));
    await redis?.stop();
    await slapd?.close();
  });

  it("stops a spray against one user split across both at the shared user threshold (20)", async () => {
    const reasons: unknown[] = [];
    for (const i of range(60)) {
      const api = apis[i % 2] as TestApi;
      reasons.push((await attempt(api, { ip: `198.51.100.${i + 1}`, username: "bob", password: `g-${i}` })).reason);
    }
    expect(reasons.indexOf("rate-limited")).toBe(20);
    expect(reasons.slice(20).every((reason) => reason === "rate-limited")).toBe(true);
  });

  it("counts one stale password retried on both replicas once", async () => {
    for (const i of range(30)) {
      const verdict = await attempt(apis[i % 2] as TestApi, { ip: "192.0.2.5", username: "alice", password: "stale" });
      expect(verdict.reason).toBe("invalid-credentials");
    }
  });

  it("lifts the block on both replicas with a flush on one, and drops the cached allow on the other", async () => {
    const [one, two] = apis as [TestApi, TestApi];
    const ip = "192.0.2.77";
    await attempt(two, { ip, username: "alice", password: alice.password, listener: "cached" });
    await attempt(two, { ip, username: "alice", password: alice.password, listener: "cached" });
    expect(two.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: "hit" });
    expect(await attempt(one, { ip: "203.0.113.1", username: "bob", password: "x" })).toMatchObject({
      reason: "rate-limited",
    });
    expect((await one.post("/v1/users/flush", { user: "alice" })).status).toBe(200);
    await one.post("/v1/users/flush", { user: "bob" });
    await attempt(two, { ip, username: "alice", password: alice.password, listener: "cached" });
    expect(two.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: "miss" });
    expect(await attempt(two, { ip: "203.0.113.1", username: "bob", password: SEED.users.bob.password })).toMatchObject(
      { verdict: "allow" },
    );
  });

  it("answers 454 when Redis is gone and onStoreFailure is tempfail, logged and counted", async () => {
    await redis.stop();
    const api = apis[0] as TestApi;
    const verdict = await attempt(api, { ip: "192.0.2.200", username: "alice", password: alice.password });
    expect(verdict).toMatchObject({ verdict: "tempfail", reason: "rate-limited", smtp: { code: 454 } });
    expect(api.logs.findLast((record) => record.msg === "brute-force store failed")).toMatchObject({
      level: "error",
      store: "redis",
      operation: "read",
      onStoreFailure: "tempfail",
    });
    const metrics = await fetch(`${api.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(await metrics.text()).toMatch(/smtpgate_bruteforce_store_failures_total\{operation="read"\} [1-9]/);
  });
});

describe("an unreachable Redis under onStoreFailure allow", () => {
  let slapd: SlapdInstance;
  let api: TestApi;

  beforeAll(async () => {
    slapd = await startSlapd();
    // A port nothing listens on.
    const redis = await startRedis();
    await redis.stop();
    api = await startTestApi(
      bruteForceConfig(slapd, { bruteForceStore: { type: "redis", url: redis.url, onStoreFailure: "allow" } }),
      { BIND_PW: SEED.servicePassword, METRICS_TOKEN },
    );
  });

  afterAll(async () => {
    await api?.close();
    await slapd?.close();
  });

  it("decides without the limiter and without the cache: the directory still checks every password", async () => {
    const ip = "192.0.2.9";
    expect(await attempt(api, { ip, username: "alice", password: alice.password, listener: "cached" })).toMatchObject({
      verdict: "allow",
    });
    expect(await attempt(api, { ip, username: "alice", password: alice.password, listener: "cached" })).toMatchObject({
      verdict: "allow",
    });
    expect(api.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: undefined });
    expect(await attempt(api, { ip, username: "alice", password: "wrong" })).toMatchObject({
      reason: "invalid-credentials",
    });
  });
});

describe("the Redis store's scripts", () => {
  it("runs them by SHA-1 and sends their text again when Redis has forgotten them (SCRIPT FLUSH, a restart)", async () => {
    const redis = await startRedis();
    const store = new RedisLimiterStore({ url: redis.url, keyPrefix: "t:", commandTimeoutMs: 2000 });
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      const window = { key: "address:192.0.2.1/32", windowMs: 60_000 };
      await store.record([{ ...window, member: "m1", keep: 10 }], 1000);
      await store.record([{ ...window, member: "m2", keep: 10 }], 1001);
      await admin.scriptFlush();
      expect((await store.read([window], "flag", 1002)).windows[0]).toMatchObject({ count: 2, oldestMs: 1000 });
      await store.record([{ ...window, member: "m3", keep: 10 }], 1003);
      expect((await store.read([window], "flag", 1004)).windows[0]).toMatchObject({ count: 3 });
      const calls = (await admin.sendCommand(["INFO", "commandstats"])) as string;
      // Every call goes by hash (EVALSHA); the text (EVAL) only after NOSCRIPT: RECORD on its first call and after
      // the flush, READ on its first call (after the flush). The second RECORD and the second READ went by hash alone.
      expect(calls).toMatch(/cmdstat_evalsha:calls=5,.*failed_calls=3/);
      expect(calls).toMatch(/cmdstat_eval:calls=3,/);
    } finally {
      await admin.quit();
      await store.close();
      await redis.stop();
    }
  });
});
