/**
 * The brute-force limiter's store on Cloudflare Workers: the buckets live in Durable Objects
 * (api/runtime/workers/brute-force-object.ts), `shards` of them (1 by default). A Durable Object runs one call at a
 * time, so each call is atomic, and every isolate of the Worker, in every location, sends a given bucket to the
 * same object: the threshold is the same shared number it is with Redis, whatever the number of shards.
 *
 * A key goes to the shard of its user (user and pair windows, trust flags, generations) or of its network (address
 * windows), so a decision talks to at most two objects: its user's and its address's. One object per bucket would
 * be up to five calls per decision; one object for everything caps the Worker at one object's throughput
 * (docs/brute-force.md). Listing blocks asks every shard.
 *
 * Every call has a deadline (`commandTimeoutMs`); a call that fails or is late rejects, and the limiter applies
 * `onStoreFailure`.
 *
 *   const store = new DurableObjectLimiterStore({ namespace: env.BRUTE_FORCE, shards: 1, commandTimeoutMs: 250 });
 */
import { parseWindowKey } from "../core/brute-force-blocks.ts";
import type { LimiterStore, WindowRef, WindowState } from "../core/brute-force.ts";
import { withDeadline } from "../../lib/deadline.ts";

/** What the object answers over RPC: the store's operations, each run whole before the next starts. */
export type BruteForceObjectCalls = Omit<Required<LimiterStore>, "close">;

/** The part of a Durable Object namespace binding the store uses. */
export interface BruteForceNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): BruteForceObjectCalls;
}

/** The name of shard `index` (from 0) of `shards`: changing the count starts on new, empty objects. */
export function bruteForceObjectName(index: number, shards: number): string {
  return `brute-force/${index + 1}-of-${shards}`;
}

export interface DurableObjectLimiterStoreOptions {
  namespace: BruteForceNamespace;
  shards: number;
  commandTimeoutMs: number;
}

/** What `read` asks a shard that does not hold the trust flag (no flag key is empty). */
const NO_FLAG = "";

type Entry = WindowRef & { member: string; keep: number };

export class DurableObjectLimiterStore implements LimiterStore {
  readonly #namespace: BruteForceNamespace;
  readonly #ids: unknown[];
  readonly #timeoutMs: number;

  constructor(options: DurableObjectLimiterStoreOptions) {
    this.#namespace = options.namespace;
    this.#ids = Array.from({ length: options.shards }, (_, index) =>
      options.namespace.idFromName(bruteForceObjectName(index, options.shards)),
    );
    this.#timeoutMs = options.commandTimeoutMs;
  }

  async memberKey(): Promise<Uint8Array> {
    return new Uint8Array(await this.#call(0, (object) => object.memberKey()));
  }

  async generations(names: readonly string[]): Promise<number[]> {
    const found: number[] = [];
    await this.#perShard(
      names,
      (name) => this.#shardOf(name),
      async (object, part, indexes) => {
        const values = await object.generations(part);
        indexes.forEach((at, i) => (found[at] = values[i] as number));
      },
    );
    return found;
  }

  async bumpGeneration(name: string): Promise<number> {
    return await this.#call(this.#shardOf(name), (object) => object.bumpGeneration(name));
  }

  async read(windows: readonly WindowRef[], flag: string, now: number) {
    const states: WindowState[] = [];
    const flagShard = this.#shardOfKey(flag);
    let flagged = false;
    const ask = async (shard: number, part: WindowRef[], indexes: number[]): Promise<void> => {
      const answer = await this.#call(shard, (object) => object.read(part, shard === flagShard ? flag : NO_FLAG, now));
      indexes.forEach((at, i) => (states[at] = answer.windows[i] as WindowState));
      if (shard === flagShard) flagged = answer.flag;
    };
    const groups = this.#groups(windows, (window) => this.#shardOfKey(window.key));
    await Promise.all([
      ...[...groups].map(([shard, group]) => ask(shard, group.items, group.indexes)),
      ...(groups.has(flagShard) ? [] : [ask(flagShard, [], [])]),
    ]);
    return { windows: states, flag: flagged };
  }

  async record(entries: readonly Entry[], now: number): Promise<void> {
    await this.#perShard(
      entries,
      (entry) => this.#shardOfKey(entry.key),
      (object, part) => object.record(part, now),
    );
  }

  async trust(flag: string, ttlMs: number, clear: readonly string[], now: number): Promise<void> {
    const flagShard = this.#shardOfKey(flag);
    const groups = this.#groups(clear, (key) => this.#shardOfKey(key));
    await Promise.all([
      this.#call(flagShard, (object) => object.trust(flag, ttlMs, groups.get(flagShard)?.items ?? [], now)),
      ...[...groups]
        .filter(([shard]) => shard !== flagShard)
        .map(([shard, group]) => this.#call(shard, (object) => object.clear(group.items))),
    ]);
  }

  async scan(prefix: string, now: number): Promise<{ key: string; times: number[] }[]> {
    const all = await Promise.all(this.#ids.map((_, shard) => this.#call(shard, (object) => object.scan(prefix, now))));
    return all.flat();
  }

  async clear(keys: readonly string[]): Promise<void> {
    await this.#perShard(
      keys,
      (key) => this.#shardOfKey(key),
      (object, part) => object.clear(part),
    );
  }

  /** The shard of a user name (its generation) or of what routeOf says a key belongs to. */
  #shardOf(name: string): number {
    return this.#ids.length === 1 ? 0 : fnv1a(name) % this.#ids.length;
  }

  /** A key's shard; with one object, without parsing the key. */
  #shardOfKey(key: string): number {
    return this.#ids.length === 1 ? 0 : this.#shardOf(routeOf(key));
  }

  /** The items by shard, each with its positions in `items`. */
  #groups<T>(items: readonly T[], shardOf: (item: T) => number): Map<number, { items: T[]; indexes: number[] }> {
    const groups = new Map<number, { items: T[]; indexes: number[] }>();
    items.forEach((item, index) => {
      const shard = shardOf(item);
      const group = groups.get(shard) ?? { items: [], indexes: [] };
      group.items.push(item);
      group.indexes.push(index);
      groups.set(shard, group);
    });
    return groups;
  }

  /** One call per shard that holds any of `items`, all at once. */
  async #perShard<T>(
    items: readonly T[],
    shardOf: (item: T) => number,
    call: (object: BruteForceObjectCalls, part: T[], indexes: number[]) => Promise<unknown>,
  ): Promise<void> {
    const groups = this.#groups(items, shardOf);
    await Promise.all(
      [...groups].map(([shard, group]) => this.#call(shard, (o) => call(o, group.items, group.indexes))),
    );
  }

  /**
   * A fresh stub for each call: a stub whose call threw may be broken for good, and a stub is cheap (the ids are
   * derived once).
   */
  async #call<T>(shard: number, call: (object: BruteForceObjectCalls) => Promise<T>): Promise<T> {
    return await withDeadline(
      call(this.#namespace.get(this.#ids[shard])),
      this.#timeoutMs,
      "the brute-force Durable Object",
    );
  }
}

/**
 * What a key is sharded by: the user of a user or pair window or a trust flag, the network of an address window.
 * A generation is stored under the bare user name, so it lands with the user's buckets.
 */
function routeOf(key: string): string {
  if (key.startsWith("address:")) return key;
  const parsed = parseWindowKey(key.startsWith("trust:") ? `pair:${key.slice("trust:".length)}` : key);
  return parsed?.user ?? key;
}

/** FNV-1a over the UTF-16 code units: stable across isolates and deployments, which is all a shard needs. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
