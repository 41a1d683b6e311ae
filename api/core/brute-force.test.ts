// The limiter's bucket logic over the memory store and a clock moved by hand; the real slapd, HTTP and Redis run
// in test/api/brute-force.test.ts.
import { describe, expect, it } from "vitest";
import { bruteForcePolicySchema } from "../config/brute-force-schema.ts";
import { MemoryLimiterStore } from "../limiter/memory-store.ts";
import { addressPrefix, BruteForceLimiter, type Attempt, type BruteForcePolicy } from "./brute-force.ts";

const DEFAULTS = bruteForcePolicySchema.parse(undefined);

function setup(policy: Partial<BruteForcePolicy> = {}) {
  let now = 1_000_000;
  const limiter = new BruteForceLimiter({
    store: new MemoryLimiterStore(),
    policyOf: () => ({ ...DEFAULTS, ...policy }),
    onStoreFailure: "allow",
    storeFailed: () => {},
    now: () => now,
  });
  /** One attempt that ends as `outcome` unless blocked; the bucket that blocked it, or null. */
  const attempt = async (fields: Partial<Attempt>, outcome: "failure" | "success" = "failure") => {
    const consulted = await limiter.consult({
      listener: "submission",
      clientIp: "192.0.2.1",
      username: "alice",
      password: "wrong",
      ...fields,
    });
    if (consulted.block && consulted.enforced) return consulted.block;
    await consulted.settle(outcome);
    return consulted.block;
  };
  return { limiter, attempt, tick: (ms: number) => (now += ms) };
}

describe("address prefixes", () => {
  it("keeps IPv4 /32 and a shorter prefix, and IPv6 at /64", () => {
    expect(addressPrefix("192.0.2.77", 32, 64)).toBe("192.0.2.77/32");
    expect(addressPrefix("192.0.2.77", 24, 64)).toBe("192.0.2.0/24");
    expect(addressPrefix("2001:db8:1:2:aaaa::1", 32, 64)).toBe("2001:db8:1:2:0:0:0:0/64");
    expect(addressPrefix("2001:db8:1:2::ffff", 32, 64)).toBe(addressPrefix("2001:db8:1:2:ffff:1:2:3", 32, 64));
    expect(addressPrefix("2001:db8:1:3::1", 32, 64)).not.toBe(addressPrefix("2001:db8:1:2::1", 32, 64));
    expect(addressPrefix("::ffff:192.0.2.1", 32, 128)).toBe("0:0:0:0:0:ffff:c000:201/128");
  });
});

describe("the buckets", () => {
  it("blocks one address after address.limit distinct user and password failures, for the window's rest", async () => {
    const { attempt, tick } = setup({ address: { limit: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i += 1) expect(await attempt({ username: `user${i}`, password: `p${i}` })).toBeNull();
    tick(10_000);
    expect(await attempt({ username: "carol", password: "x" })).toEqual({ bucket: "address", retryAfterSeconds: 50 });
    // Another address is not affected; the window slides on, and the block ends with it.
    expect(await attempt({ clientIp: "192.0.2.2", username: "carol", password: "x" })).toBeNull();
    tick(50_000);
    expect(await attempt({ username: "carol", password: "x" })).toBeNull();
  });

  it("counts one stale password retried from one address once", async () => {
    const { attempt } = setup();
    for (let i = 0; i < 100; i += 1) expect(await attempt({ password: "last-years-password" })).toBeNull();
  });

  it("blocks a user guessed at from many addresses, by user.limit", async () => {
    const { attempt } = setup({ user: { limit: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i += 1) expect(await attempt({ clientIp: `198.51.100.${i}`, password: `p${i}` })).toBeNull();
    expect((await attempt({ clientIp: "198.51.100.99", password: "x" }))?.bucket).toBe("user");
    // Keyed on the name trimmed and lower-cased: " ALICE" is alice.
    expect((await attempt({ clientIp: "198.51.100.98", username: " ALICE", password: "y" }))?.bucket).toBe("user");
  });

  it("counts every address of one IPv6 /64 as one client", async () => {
    const { attempt } = setup({ address: { limit: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i += 1)
      expect(await attempt({ clientIp: `2001:db8:0:1::${i + 1}`, username: `u${i}`, password: "x" })).toBeNull();
    expect((await attempt({ clientIp: "2001:db8:0:1::ff", username: "v", password: "x" }))?.bucket).toBe("address");
  });

  it("lets the user in from the network of their last success after a spray against them", async () => {
    const { attempt } = setup({ user: { limit: 3, windowSeconds: 60 } });
    expect(await attempt({ clientIp: "192.0.2.10", password: "right" }, "success")).toBeNull();
    for (let i = 0; i < 3; i += 1) await attempt({ clientIp: `203.0.113.${i}`, password: `guess${i}` });
    expect((await attempt({ clientIp: "203.0.113.200", password: "right" }))?.bucket).toBe("user");
    expect(await attempt({ clientIp: "192.0.2.10", password: "right" }, "success")).toBeNull();
  });

  it("still holds a trusted network to the pair bucket", async () => {
    const { attempt } = setup({ pair: { limit: 3, windowSeconds: 60 } });
    await attempt({ password: "right" }, "success");
    for (let i = 0; i < 3; i += 1) await attempt({ password: `guess${i}` });
    expect((await attempt({ password: "guess-again" }))?.bucket).toBe("pair");
  });

  it("in observe mode reports the block and counts on", async () => {
    const { limiter } = setup({ mode: "observe", pair: { limit: 1, windowSeconds: 60 } });
    const first = await limiter.consult({ listener: "l", clientIp: "192.0.2.1", username: "a", password: "1" });
    await first.settle("failure");
    const second = await limiter.consult({ listener: "l", clientIp: "192.0.2.1", username: "a", password: "2" });
    expect(second).toMatchObject({ block: { bucket: "pair" }, enforced: false });
  });

  it("lifts a user's blocks with a flush, and changes their generation", async () => {
    const { limiter, attempt } = setup({ pair: { limit: 2, windowSeconds: 60 } });
    await attempt({ password: "1" });
    await attempt({ password: "2" });
    expect((await attempt({ password: "3" }))?.bucket).toBe("pair");
    expect(await limiter.flushUser(" Alice")).toBe(1);
    expect(await attempt({ password: "3" })).toBeNull();
    expect(await limiter.generations(["ALICE", "bob"])).toEqual([1, 0]);
  });
});

describe("reading under the user's generation", () => {
  class CountingStore extends MemoryLimiterStore {
    reads = 0;
    override read(...args: Parameters<MemoryLimiterStore["read"]>) {
      this.reads += 1;
      return super.read(...args);
    }
  }
  const limiterOver = (store: CountingStore) =>
    new BruteForceLimiter({
      store,
      policyOf: () => ({ ...DEFAULTS, pair: { limit: 2, windowSeconds: 60 } }),
      onStoreFailure: "allow",
      storeFailed: () => {},
    });
  const fail = async (limiter: BruteForceLimiter, password: string) => {
    const consulted = await limiter.consult({ listener: "s", clientIp: "192.0.2.1", username: "alice", password });
    if (!consulted.block) await consulted.settle("failure");
    return consulted.block;
  };

  it("reads the windows once, and again only when another replica's flush moved the generation", async () => {
    const store = new CountingStore();
    const [here, there] = [limiterOver(store), limiterOver(store)];
    await fail(here, "1");
    await fail(here, "2");
    expect((await fail(here, "3"))?.bucket).toBe("pair");
    expect(store.reads).toBe(3);
    await there.flushUser("alice");
    // The guess (0) is stale: the windows are read again under generation 1, where nothing is recorded yet.
    expect(await fail(here, "3")).toBeNull();
    expect(store.reads).toBe(5);
    await fail(here, "4");
    expect(store.reads).toBe(6);
    expect((await fail(here, "5"))?.bucket).toBe("pair");
  });
});

describe("writing trust", () => {
  class TrustCountingStore extends MemoryLimiterStore {
    trusts = 0;
    override trust(...args: Parameters<MemoryLimiterStore["trust"]>) {
      this.trusts += 1;
      return super.trust(...args);
    }
  }

  it("writes it once for successes close together, again after a failure or a tenth of trustSeconds", async () => {
    const store = new TrustCountingStore();
    let now = 1_000_000;
    const limiter = new BruteForceLimiter({
      store,
      policyOf: () => ({ ...DEFAULTS, trustSeconds: 1000 }),
      onStoreFailure: "allow",
      storeFailed: () => {},
      now: () => now,
    });
    const login = async (password: string, outcome: "success" | "failure") => {
      const consulted = await limiter.consult({ listener: "s", clientIp: "192.0.2.1", username: "alice", password });
      await consulted.settle(outcome);
    };
    await login("right", "success");
    await login("right", "success");
    await login("right", "success");
    expect(store.trusts).toBe(1);
    // A failure since fills the pair bucket: the next success must clear it.
    await login("wrong", "failure");
    await login("right", "success");
    expect(store.trusts).toBe(2);
    now += 99_000;
    await login("right", "success");
    expect(store.trusts).toBe(2);
    now += 1_000;
    await login("right", "success");
    expect(store.trusts).toBe(3);
    // A flush moves the generation, so the flag this process wrote is another key now.
    await limiter.flushUser("alice");
    await login("right", "success");
    expect(store.trusts).toBe(4);
  });
});

describe("when the store fails", () => {
  const broken = new MemoryLimiterStore();
  broken.read = async () => {
    throw new Error("ECONNREFUSED");
  };
  const attempt = { listener: "l", clientIp: "192.0.2.1", username: "a", password: "p" };

  it("goes ahead without the limiter (and without a generation) under allow, and counts the failure", async () => {
    const failures: string[] = [];
    const limiter = new BruteForceLimiter({
      store: broken,
      policyOf: () => DEFAULTS,
      onStoreFailure: "allow",
      storeFailed: (operation) => failures.push(operation),
    });
    expect(await limiter.consult(attempt)).toMatchObject({ block: null, generation: null });
    expect(failures).toEqual(["read"]);
    expect(limiter.storeFailures).toEqual({ read: 1 });
  });

  it("refuses under tempfail", async () => {
    const limiter = new BruteForceLimiter({
      store: broken,
      policyOf: () => DEFAULTS,
      onStoreFailure: "tempfail",
      storeFailed: () => {},
    });
    await expect(limiter.consult(attempt)).rejects.toThrow("ECONNREFUSED");
  });
});
