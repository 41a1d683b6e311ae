/**
 * The decision cache: recent decisions of one auth profile, kept in memory (per process on Node, per isolate on
 * Workers) so that a client that authenticates again with the same credentials does not cost a directory
 * round trip.
 *
 * What makes it safe:
 *
 * - Keys are SHA-256 digests keyed by a random secret made per process (`CacheKeys`), over a length-prefixed
 *   encoding of every input the decision depends on (profile, listener, user name, password, authzid; for a
 *   certificate: profile, CRL version and the whole chain). Neither the password nor an unkeyed hash of it is
 *   ever stored, and an entry can only answer for exactly the inputs it was decided for: a cached allow of alice
 *   never answers bob with alice's password, nor alice with another password.
 * - Only settled answers are kept: allows for `positiveTtlSeconds`, denies for `negativeTtlSeconds`. The caller
 *   never stores a tempfail, nor refusals that cost nothing (empty password, malformed user name).
 * - Never past a hard expiry the caller gives (a certificate's notAfter, a CRL's nextUpdate).
 * - Serve-stale (`serveStaleSeconds`, off by default): while the directory is unavailable, an allow younger than
 *   that may be given instead of the tempfail. Denies are never served stale, and a fresh deny for the same key drops the
 *   allow at once.
 * - Bounded: at most `maxEntries`, the least recently used goes first.
 *
 *   const cache = new DecisionCache<Decision>({ positiveTtlSeconds: 60, negativeTtlSeconds: 10, serveStaleSeconds: 0, maxEntries: 10_000 });
 *   const key = new CacheKeys().key("auth", profile, listener, username, password);
 *   let decision = cache.get(key);
 *   if (!decision) {
 *     decision = await decide();
 *     if (decision.verdict !== "tempfail") cache.set(key, decision, decision.verdict === "allow");
 *   }
 */
import { randomBytes } from "node:crypto";
import { sha256 } from "../../lib/sha256.ts";

export interface CachePolicy {
  positiveTtlSeconds: number;
  negativeTtlSeconds: number;
  serveStaleSeconds: number;
  maxEntries: number;
}

/** How a decision came about, for the log line and the metrics: reused, decided afresh, or reused stale. */
export type CacheOutcome = "hit" | "miss" | "stale";

export interface CacheStats {
  /** Entries held now (expired ones are dropped when next looked up, or evicted). */
  entries: number;
  hits: number;
  misses: number;
  /** Allows given from the cache, past their TTL, because the directory was unavailable. */
  staleServed: number;
  /** Least recently used entries dropped to stay within maxEntries. */
  evictions: number;
}

interface Entry<V> {
  value: V;
  positive: boolean;
  storedAt: number;
  /** Hard limit: never served at or after this instant, fresh or stale. */
  expiresAt: number;
}

/** Whether a policy keeps anything at all. */
export function cacheEnabled(policy: CachePolicy): boolean {
  return policy.positiveTtlSeconds > 0 || policy.negativeTtlSeconds > 0 || policy.serveStaleSeconds > 0;
}

export class DecisionCache<V> {
  readonly policy: Readonly<CachePolicy>;
  readonly #entries = new Map<string, Entry<V>>();
  readonly #now: () => number;
  readonly #positiveMs: number;
  readonly #negativeMs: number;
  readonly #staleMs: number;
  #hits = 0;
  #misses = 0;
  #staleServed = 0;
  #evictions = 0;

  constructor(policy: CachePolicy, now: () => number = Date.now) {
    this.policy = { ...policy };
    this.#now = now;
    this.#positiveMs = policy.positiveTtlSeconds * 1000;
    this.#negativeMs = policy.negativeTtlSeconds * 1000;
    this.#staleMs = policy.serveStaleSeconds * 1000;
  }

  /** The value stored for `key` if it is still fresh: an allow younger than the positive TTL, a deny younger than the negative one. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry) {
      const now = this.#now();
      const age = now - entry.storedAt;
      // A clock that went backwards (age < 0) makes the entry's age unknowable: treat it as expired.
      if (age >= 0 && age < (entry.positive ? this.#positiveMs : this.#negativeMs) && now < entry.expiresAt) {
        // Most recently used last: Map keeps insertion order, so the first key is the one to evict.
        this.#entries.delete(key);
        this.#entries.set(key, entry);
        this.#hits += 1;
        return entry.value;
      }
      if (age < 0 || age >= this.#retentionMs(entry.positive) || now >= entry.expiresAt) this.#entries.delete(key);
    }
    this.#misses += 1;
    return undefined;
  }

  /**
   * For when the directory cannot answer: the allow stored for `key` if it is younger than serveStaleSeconds and
   * not past its hard expiry. Counted as a stale serve; the caller gives it only in place of a tempfail.
   */
  getStale(key: string): { value: V; ageSeconds: number } | undefined {
    if (this.#staleMs === 0) return undefined;
    const entry = this.#entries.get(key);
    if (!entry?.positive) return undefined;
    const now = this.#now();
    const age = now - entry.storedAt;
    if (age < 0 || age >= this.#staleMs || now >= entry.expiresAt) return undefined;
    this.#staleServed += 1;
    return { value: entry.value, ageSeconds: Math.floor(age / 1000) };
  }

  /**
   * Stores a settled decision: `positive` for an allow, otherwise a deny. `expiresAt` (ms since the epoch) bounds
   * it whatever the TTL. A decision this policy does not keep still replaces what was stored under the key, so an
   * old allow can never be served stale after the directory said no.
   */
  set(key: string, value: V, positive: boolean, expiresAt = Number.POSITIVE_INFINITY): V {
    this.#entries.delete(key);
    const now = this.#now();
    if (this.#retentionMs(positive) === 0 || now >= expiresAt) return value;
    while (this.#entries.size >= this.policy.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
      this.#evictions += 1;
    }
    this.#entries.set(key, { value, positive, storedAt: now, expiresAt });
    return value;
  }

  /** Drops what is stored under `key`: the caller learnt something that contradicts it. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every entry; returns how many there were. */
  flush(): number {
    const count = this.#entries.size;
    this.#entries.clear();
    return count;
  }

  stats(): CacheStats {
    return {
      entries: this.#entries.size,
      hits: this.#hits,
      misses: this.#misses,
      staleServed: this.#staleServed,
      evictions: this.#evictions,
    };
  }

  /** How long an entry is worth keeping: an allow for its TTL or the stale window, whichever is longer. */
  #retentionMs(positive: boolean): number {
    return positive ? Math.max(this.#positiveMs, this.#staleMs) : this.#negativeMs;
  }
}

/** Bytes of the per-process key: 256 bits, as much as the digest. */
const KEY_BYTES = 32;

/**
 * Cache keys: SHA-256 over a key made at random when this object is (never configured, never logged, gone with
 * the process) followed by the parts, each prefixed with its length. Not HMAC: what HMAC adds over a secret
 * prefix is resistance to length extension, which needs a digest to extend, and these digests never leave the
 * process; one `crypto.hash` call costs a quarter of an HMAC here. The secret makes a key useless for guessing a
 * password offline from a heap dump; the length prefix keeps ("ab", "c") and ("a", "bc") apart; strings are
 * encoded as UTF-16 code units, which (unlike UTF-8, where every lone surrogate becomes U+FFFD) maps two
 * different strings to two different byte sequences.
 */
export class CacheKeys {
  readonly #secret: Uint8Array;

  constructor(secret: Uint8Array = randomBytes(KEY_BYTES)) {
    this.#secret = Uint8Array.from(secret);
  }

  key(...parts: readonly string[]): string {
    let size = this.#secret.length;
    for (const part of parts) size += 4 + part.length * 2;
    const bytes = Buffer.allocUnsafe(size);
    bytes.set(this.#secret);
    let offset = this.#secret.length;
    for (const part of parts) {
      offset = bytes.writeUInt32BE(part.length, offset);
      offset += bytes.write(part, offset, "utf16le");
    }
    return sha256(bytes, "base64");
  }
}
