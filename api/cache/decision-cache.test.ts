import { describe, expect, it } from "vitest";
import { CacheKeys, cacheEnabled, DecisionCache, type CachePolicy } from "./decision-cache.ts";

const OFF: CachePolicy = { positiveTtlSeconds: 0, negativeTtlSeconds: 0, serveStaleSeconds: 0, maxEntries: 100 };

/** A cache on a clock the test moves by hand. */
function cacheWith(policy: Partial<CachePolicy>) {
  const clock = { now: 1_000_000 };
  const cache = new DecisionCache<string>({ ...OFF, ...policy }, () => clock.now);
  const advance = (seconds: number): void => {
    clock.now += seconds * 1000;
  };
  return { cache, clock, advance };
}

describe("CacheKeys", () => {
  const keys = new CacheKeys();

  it("gives the same key for the same inputs, and never holds the password itself", () => {
    const key = keys.key("auth", "corp", "submission", "alice", "alice-password");
    expect(keys.key("auth", "corp", "submission", "alice", "alice-password")).toBe(key);
    expect(key).not.toContain("alice");
    // A SHA-256 digest in base64, whatever the input's length.
    expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(keys.key("auth", "corp", "submission", "alice", "x".repeat(10_000))).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

  it("tells apart every input: user, password, profile, listener", () => {
    const base = ["auth", "corp", "submission", "alice", "same-password"] as const;
    const variants = [
      ["auth", "corp", "submission", "bob", "same-password"],
      ["auth", "corp", "submission", "alice", "other-password"],
      ["auth", "other", "submission", "alice", "same-password"],
      ["auth", "corp", "lenient", "alice", "same-password"],
      ["certificate", "corp", "submission", "alice", "same-password"],
      ["auth", "corp", "submission", "Alice", "same-password"],
    ];
    const seen = new Set([keys.key(...base), ...variants.map((parts) => keys.key(...parts))]);
    expect(seen.size).toBe(variants.length + 1);
  });

  it("cannot be fooled by moving characters between parts (length prefixes)", () => {
    expect(keys.key("alice", "bpassword")).not.toBe(keys.key("aliceb", "password"));
    expect(keys.key("a", "")).not.toBe(keys.key("", "a"));
    expect(keys.key("a")).not.toBe(keys.key("a", ""));
  });

  it("keeps strings apart that UTF-8 would merge (lone surrogates)", () => {
    expect(keys.key("alice", "\ud800")).not.toBe(keys.key("alice", "\ud801"));
    expect(keys.key("alice", "\ud800")).not.toBe(keys.key("alice", "\ufffd"));
  });

  it("uses a random key per instance: another process computes other keys", () => {
    expect(new CacheKeys().key("alice", "alice-password")).not.toBe(keys.key("alice", "alice-password"));
    const secret = new Uint8Array(32).fill(7);
    expect(new CacheKeys(secret).key("alice", "alice-password")).toBe(
      new CacheKeys(secret).key("alice", "alice-password"),
    );
  });
});

describe("DecisionCache", () => {
  it("is off unless some TTL or the stale window is set", () => {
    expect(cacheEnabled(OFF)).toBe(false);
    expect(cacheEnabled({ ...OFF, positiveTtlSeconds: 1 })).toBe(true);
    expect(cacheEnabled({ ...OFF, negativeTtlSeconds: 1 })).toBe(true);
    expect(cacheEnabled({ ...OFF, serveStaleSeconds: 1 })).toBe(true);
  });

  it("serves an allow for positiveTtlSeconds and not a moment longer", () => {
    const { cache, advance } = cacheWith({ positiveTtlSeconds: 60 });
    cache.set("k", "allow", true);
    advance(59.999);
    expect(cache.get("k")).toBe("allow");
    advance(0.001);
    expect(cache.get("k")).toBeUndefined();
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, entries: 0 });
  });

  it("serves a deny for negativeTtlSeconds, which is separate from the positive TTL", () => {
    const { cache, advance } = cacheWith({ positiveTtlSeconds: 300, negativeTtlSeconds: 10 });
    cache.set("allowed", "allow", true);
    cache.set("denied", "deny", false);
    advance(9);
    expect(cache.get("denied")).toBe("deny");
    advance(1);
    expect(cache.get("denied")).toBeUndefined();
    expect(cache.get("allowed")).toBe("allow");
  });

  it("keeps no denies when negativeTtlSeconds is 0, and no allows when positiveTtlSeconds is 0", () => {
    const denies = cacheWith({ positiveTtlSeconds: 60 }).cache;
    denies.set("k", "deny", false);
    expect(denies.get("k")).toBeUndefined();
    const allows = cacheWith({ negativeTtlSeconds: 60 }).cache;
    allows.set("k", "allow", true);
    expect(allows.get("k")).toBeUndefined();
    expect(allows.stats().entries).toBe(0);
  });

  it("never serves an entry at or past its hard expiry (a certificate's notAfter), whatever the TTL", () => {
    const { cache, clock, advance } = cacheWith({ positiveTtlSeconds: 3600, serveStaleSeconds: 7200 });
    cache.set("k", "allow", true, clock.now + 5_000);
    advance(4);
    expect(cache.get("k")).toBe("allow");
    advance(1);
    expect(cache.get("k")).toBeUndefined();
    expect(cache.getStale("k")).toBeUndefined();
    // Already expired: not even stored.
    cache.set("late", "allow", true, clock.now);
    expect(cache.stats().entries).toBe(0);
  });

  it("treats an entry as expired when the clock went backwards", () => {
    const { cache, advance } = cacheWith({ positiveTtlSeconds: 60 });
    cache.set("k", "allow", true);
    advance(-1);
    expect(cache.get("k")).toBeUndefined();
  });

  it("holds at most maxEntries, dropping the least recently used", () => {
    const { cache } = cacheWith({ positiveTtlSeconds: 60, maxEntries: 2 });
    cache.set("a", "A", true);
    cache.set("b", "B", true);
    expect(cache.get("a")).toBe("A"); // a is now the most recently used
    cache.set("c", "C", true);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("A");
    expect(cache.get("c")).toBe("C");
    expect(cache.stats()).toMatchObject({ entries: 2, evictions: 1 });
    // Replacing a key does not evict another.
    cache.set("c", "C2", true);
    expect(cache.stats()).toMatchObject({ entries: 2, evictions: 1 });
  });

  describe("serve-stale", () => {
    it("gives an allow past its TTL while it is younger than serveStaleSeconds, and counts it", () => {
      const { cache, advance } = cacheWith({ positiveTtlSeconds: 60, serveStaleSeconds: 3600 });
      cache.set("k", "allow", true);
      advance(120);
      expect(cache.get("k")).toBeUndefined(); // no longer fresh...
      expect(cache.getStale("k")).toEqual({ value: "allow", ageSeconds: 120 }); // ...but still there for a directory outage
      advance(3600 - 120 - 0.001);
      expect(cache.getStale("k")).toEqual({ value: "allow", ageSeconds: 3599 });
      advance(0.001);
      expect(cache.getStale("k")).toBeUndefined();
      expect(cache.get("k")).toBeUndefined();
      expect(cache.stats().staleServed).toBe(2);
    });

    it("is off by default", () => {
      const { cache, advance } = cacheWith({ positiveTtlSeconds: 60 });
      cache.set("k", "allow", true);
      advance(1);
      expect(cache.getStale("k")).toBeUndefined();
    });

    it("never serves a deny stale", () => {
      const { cache } = cacheWith({ negativeTtlSeconds: 60, serveStaleSeconds: 3600 });
      cache.set("k", "deny", false);
      expect(cache.getStale("k")).toBeUndefined();
    });

    it("forgets an allow as soon as the directory says no for the same key, even when denies are not kept", () => {
      const { cache } = cacheWith({ positiveTtlSeconds: 60, serveStaleSeconds: 3600 });
      cache.set("k", "allow", true);
      cache.set("k", "deny", false);
      expect(cache.get("k")).toBeUndefined();
      expect(cache.getStale("k")).toBeUndefined();
    });

    it("keeps allows for the stale window even with no positive TTL (only outages are answered from the cache)", () => {
      const { cache, advance } = cacheWith({ serveStaleSeconds: 600 });
      cache.set("k", "allow", true);
      expect(cache.get("k")).toBeUndefined();
      advance(300);
      expect(cache.getStale("k")).toMatchObject({ value: "allow" });
    });
  });

  it("flushes everything and says how much", () => {
    const { cache } = cacheWith({ positiveTtlSeconds: 60, negativeTtlSeconds: 60 });
    cache.set("a", "A", true);
    cache.set("b", "B", false);
    expect(cache.flush()).toBe(2);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.stats().entries).toBe(0);
  });
});
