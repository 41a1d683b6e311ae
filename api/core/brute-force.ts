/**
 * Brute-force control (docs/brute-force.md): consulted before any LDAP traffic, told the outcome after. Pure logic over an
 * abstract `LimiterStore` (api/limiter/: memory for one process, Redis for replicas) and a clock.
 *
 * Three buckets, each a sliding window of distinct failures (a log of members with their time, trimmed to the
 * window; the count is the number of distinct members in it):
 *
 *   address  the client's address at `ipv4PrefixLength` / `ipv6PrefixLength` (/32 and /64 by default: one IPv6
 *            client owns a /64); a member is a (user, password) pair, so 200 wrong passwords count 200 and one
 *            stale password retried 100 times counts 1;
 *   user     the name as given, trimmed and lower-cased (the canonical identity is known only after the search,
 *            which is LDAP traffic); a member is an (address prefix, password) pair;
 *   pair     (user, address prefix); a member is a password.
 *
 * Members are HMACs under the store's key, never the password. A success makes the pair trusted for
 * `trustSeconds`: a trusted pair skips the address and user buckets (a spray against the user from elsewhere, or
 * guessing by others behind the same NAT, does not lock the user out of their own network), never the pair bucket.
 * Every key carries the user's generation: a flush (`flushUser`) bumps it, which drops the user's blocks and trust
 * at once on every replica sharing the store, and lets the decision cache tell a flushed entry from a live one.
 */
import { createHmac } from "node:crypto";
import { clearAddress, listBlocks, type ListedBlock } from "./brute-force-blocks.ts";

export type BucketKind = "address" | "user" | "pair";
export const BUCKET_KINDS: readonly BucketKind[] = ["address", "user", "pair"];

export interface BucketPolicy {
  /** Distinct failures in the window at which the bucket blocks. */
  limit: number;
  windowSeconds: number;
}

export interface BruteForcePolicy {
  mode: "enforce" | "observe" | "off";
  ipv4PrefixLength: number;
  ipv6PrefixLength: number;
  address: BucketPolicy;
  user: BucketPolicy;
  pair: BucketPolicy;
  trustSeconds: number;
}

/** One bucket's window, as the store reads it. */
export interface WindowState {
  /** Distinct members in the window. */
  count: number;
  /** When the oldest member still counted was recorded (ms since the epoch); null when empty. */
  oldestMs: number | null;
}

export interface WindowRef {
  key: string;
  windowMs: number;
}

/**
 * Where the buckets live. Each call is one round trip to a shared store; every update is atomic with its expiry.
 * A failure rejects (the limiter turns it into `onStoreFailure`).
 */
export interface LimiterStore {
  /** The key members are hashed under: shared by every replica of one store, so they agree on "the same password". */
  memberKey(): Promise<Uint8Array>;
  /** Each name's generation (0 when never flushed). */
  generations(names: readonly string[]): Promise<number[]>;
  /** Bumps a name's generation; the new value. */
  bumpGeneration(name: string): Promise<number>;
  /** The windows' states and whether `flag` is set, trimmed to `now`. */
  read(windows: readonly WindowRef[], flag: string, now: number): Promise<{ windows: WindowState[]; flag: boolean }>;
  /** Adds (or refreshes) each member at `now`, keeping at most `keep` of the newest per window. */
  record(entries: readonly (WindowRef & { member: string; keep: number })[], now: number): Promise<void>;
  /** Every window whose key starts with `prefix`, with its members' times (operator listings; not on the decision path). */
  scan?(prefix: string, now: number): Promise<{ key: string; times: number[] }[]>;
  /** Deletes windows (an operator lifting a block). */
  clear?(keys: readonly string[]): Promise<void>;
  /** Lets go of connections (the memory store has none). */
  close?(): Promise<void>;
  /** Sets `flag` for `ttlMs` from `now` and deletes `clear`. */
  trust(flag: string, ttlMs: number, clear: readonly string[], now: number): Promise<void>;
}

export interface Attempt {
  listener: string;
  clientIp: string;
  username: string;
  password: string;
}

/** What a blocked attempt is told: which bucket, and when to try again. */
export interface Block {
  bucket: BucketKind;
  retryAfterSeconds: number;
}

/** The verdict of the limiter before the decision, and what to tell it after. */
export interface Consulted {
  /** Null: go ahead. With `observe`, a block is reported here but `enforced` is false. */
  block: Block | null;
  enforced: boolean;
  /** The user's generation read on the way (for the decision cache); null when the store failed. */
  generation: number | null;
  /** Tells the limiter how the attempt ended: a guess (counted), a success (trusted), or neither. */
  settle(outcome: "failure" | "success" | "neutral"): Promise<void>;
}

const NOTHING: Omit<Consulted, "enforced"> = { block: null, generation: null, settle: async () => {} };

/** The name a bucket is keyed on: what a user types, trimmed and lower-cased. */
export function userKeyOf(username: string): string {
  return username.trim().toLowerCase();
}

/** The address's network at the prefix lengths: `192.0.2.0/24`, `2001:db8:1:2::/64`. */
export function addressPrefix(ip: string, ipv4PrefixLength: number, ipv6PrefixLength: number): string {
  if (ip.includes(":")) {
    const groups = expandIpv6(ip);
    const bits = groups.map((group) => group.toString(2).padStart(16, "0")).join("");
    const kept = bits.slice(0, ipv6PrefixLength).padEnd(128, "0");
    const masked = Array.from({ length: 8 }, (_, i) => parseInt(kept.slice(i * 16, i * 16 + 16), 2).toString(16));
    return `${masked.join(":")}/${ipv6PrefixLength}`;
  }
  const value = ip.split(".").reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const size = 2 ** (32 - ipv4PrefixLength);
  const network = Math.floor(value / size) * size;
  const octets = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256);
  return `${octets.join(".")}/${ipv4PrefixLength}`;
}

function expandIpv6(ip: string): number[] {
  let text = ip.toLowerCase();
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes its two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...right].map((g) => parseInt(g, 16));
}

export interface BruteForceLimiterOptions {
  store: LimiterStore;
  policyOf: (listener: string) => BruteForcePolicy;
  onStoreFailure: "allow" | "tempfail";
  /** Told each store failure (logged and counted by the shell). */
  storeFailed: (operation: string, error: unknown) => void;
  now?: () => number;
}

/** The store's answer could not be had: what `onStoreFailure` says an attempt gets. */
export class LimiterUnavailable extends Error {}

export class BruteForceLimiter {
  readonly #options: BruteForceLimiterOptions;
  readonly #now: () => number;
  #memberKey: Promise<Uint8Array> | undefined;
  /** Failed store operations by name, for the metrics. */
  readonly storeFailures: Record<string, number> = {};
  /** Users whose generation is not 0 (flushed at least once), as last read: the guess `consult` reads under. */
  readonly #generationSeen = new Map<string, number>();
  /** When this process last wrote each trust flag: a success soon after needs no second write. */
  readonly #trustWritten = new Map<string, number>();

  constructor(options: BruteForceLimiterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  #rememberGeneration(user: string, generation: number): void {
    // 0 is the guess for a user not in the map (a store that lost its data reads 0 again: the guess follows it).
    if (generation === 0) this.#generationSeen.delete(user);
    else remember(this.#generationSeen, user, generation);
  }

  /**
   * Whether a success must write the pair's trust: not when the flag is set, the pair bucket is empty (nothing to
   * clear) and this process wrote the flag less than a tenth of `trustSeconds` ago. The user's next success from
   * their usual network then costs no store write; trust lasts at least nine tenths of `trustSeconds` after it.
   */
  #trustIsFresh(flag: string, trusted: boolean, pairCount: number, trustMs: number, now: number): boolean {
    const written = this.#trustWritten.get(flag);
    return trusted && pairCount === 0 && written !== undefined && now - written < trustMs / 10;
  }

  /**
   * Before the decision. Throws LimiterUnavailable when the store failed and `onStoreFailure` is `tempfail`;
   * with `allow`, the attempt goes ahead unlimited (and uncached: see `generation`).
   */
  async consult(attempt: Attempt): Promise<Consulted> {
    const policy = this.#options.policyOf(attempt.listener);
    if (policy.mode === "off")
      return { ...NOTHING, enforced: false, generation: await this.#generationOrNull(attempt) };
    const { store } = this.#options;
    const now = this.#now();
    const user = userKeyOf(attempt.username);
    const prefix = addressPrefix(attempt.clientIp, policy.ipv4PrefixLength, policy.ipv6PrefixLength);
    let generation: number;
    let state: Awaited<ReturnType<LimiterStore["read"]>>;
    let memberKey: Uint8Array;
    const windows = (g: number): Record<BucketKind, WindowRef> => ({
      address: { key: `address:${prefix}`, windowMs: policy.address.windowSeconds * 1000 },
      user: { key: `user:${g}:${user}`, windowMs: policy.user.windowSeconds * 1000 },
      pair: { key: `pair:${g}:${user}:${prefix}`, windowMs: policy.pair.windowSeconds * 1000 },
    });
    const trustFlag = (g: number): string => `trust:${g}:${user}:${prefix}`;
    const readAt = (g: number) => {
      const refs = windows(g);
      return store.read(
        BUCKET_KINDS.map((kind) => refs[kind]),
        trustFlag(g),
        now,
      );
    };
    try {
      // The windows are read under the generation this process last saw for the user (0 for almost everyone), in
      // the same round trip as the generation itself; read again only when a flush has moved it since.
      const guess = this.#generationSeen.get(user) ?? 0;
      let guessed: typeof state;
      [[generation = 0], guessed, memberKey] = await Promise.all([
        store.generations([user]),
        readAt(guess),
        this.#key(),
      ]);
      state = generation === guess ? guessed : await readAt(generation);
      this.#rememberGeneration(user, generation);
    } catch (error) {
      this.#unavailable("read", error);
      return { ...NOTHING, enforced: false };
    }
    const refs = windows(generation);
    const trusted = state.flag;
    let block: Block | null = null;
    for (const [index, kind] of BUCKET_KINDS.entries()) {
      if (trusted && kind !== "pair") continue;
      const window = state.windows[index] as WindowState;
      if (window.count < policy[kind].limit) continue;
      const retryAfterMs = (window.oldestMs ?? now) + refs[kind].windowMs - now;
      const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      if (!block || retryAfterSeconds > block.retryAfterSeconds) block = { bucket: kind, retryAfterSeconds };
    }
    const enforced = block !== null && policy.mode === "enforce";
    const hmac = (...parts: string[]): string =>
      createHmac("sha256", memberKey)
        .update(parts.map((part) => `${part.length}:${part}`).join(""))
        .digest("base64url")
        .slice(0, 22);
    const settle = async (outcome: "failure" | "success" | "neutral"): Promise<void> => {
      if (enforced || outcome === "neutral") return;
      try {
        if (outcome === "success") {
          const flag = trustFlag(generation);
          const trustMs = policy.trustSeconds * 1000;
          const pairCount = (state.windows[BUCKET_KINDS.indexOf("pair")] as WindowState).count;
          if (this.#trustIsFresh(flag, trusted, pairCount, trustMs, now)) return;
          await store.trust(flag, trustMs, [refs.pair.key], this.#now());
          remember(this.#trustWritten, flag, now);
          return;
        }
        await store.record(
          [
            { ...refs.address, member: hmac(user, attempt.password), keep: policy.address.limit },
            { ...refs.user, member: hmac(prefix, attempt.password), keep: policy.user.limit },
            { ...refs.pair, member: hmac(attempt.password), keep: policy.pair.limit },
          ],
          this.#now(),
        );
      } catch (error) {
        // Too late to change this decision; the next one meets the failure at `read`.
        this.#failed("record", error);
      }
    };
    return { block, enforced, generation, settle };
  }

  /** Drops one user's blocks and trust, and (through the generation) their cached decisions; the new generation. */
  async flushUser(username: string): Promise<number> {
    return await this.#options.store.bumpGeneration(userKeyOf(username));
  }

  /** Every full bucket under the listeners' policies (api/core/brute-force-blocks.ts). */
  async blocks(listeners: readonly string[]): Promise<ListedBlock[]> {
    return await listBlocks(this.#options.store, this.#policies(listeners), this.#now());
  }

  /** Empties the address buckets of `ip` at each listener's prefix length; the networks emptied. */
  async clearAddress(ip: string, listeners: readonly string[]): Promise<string[]> {
    return await clearAddress(this.#options.store, ip, this.#policies(listeners));
  }

  #policies(listeners: readonly string[]): [string, BruteForcePolicy][] {
    return listeners.map((listener) => [listener, this.#options.policyOf(listener)]);
  }

  async close(): Promise<void> {
    await this.#options.store.close?.();
  }

  /** The generations of names (the decision cache checks an entry's identity too); null when the store failed. */
  async generations(names: readonly string[]): Promise<number[] | null> {
    try {
      return await this.#options.store.generations(names.map(userKeyOf));
    } catch (error) {
      this.#failed("generation", error);
      return null;
    }
  }

  async #generationOrNull(attempt: Attempt): Promise<number | null> {
    try {
      const [generation = 0] = await this.#options.store.generations([userKeyOf(attempt.username)]);
      return generation;
    } catch (error) {
      this.#unavailable("generation", error);
      return null;
    }
  }

  #failed(operation: string, error: unknown): void {
    this.storeFailures[operation] = (this.storeFailures[operation] ?? 0) + 1;
    this.#options.storeFailed(operation, error);
  }

  #unavailable(operation: string, error: unknown): void {
    this.#failed(operation, error);
    if (this.#options.onStoreFailure === "tempfail") throw new LimiterUnavailable(String(error));
  }

  #key(): Promise<Uint8Array> {
    this.#memberKey ??= this.#options.store.memberKey();
    this.#memberKey.catch(() => (this.#memberKey = undefined));
    return this.#memberKey;
  }
}

/** Sets a process-local guess, bounded: a guess that is gone only costs a store call. */
function remember<V>(guesses: Map<string, V>, key: string, value: V): void {
  if (guesses.size >= 10_000) guesses.clear();
  guesses.set(key, value);
}
