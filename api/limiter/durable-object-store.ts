/**
 * The brute-force limiter's store on Cloudflare Workers: every call goes to one Durable Object
 * (api/runtime/workers/brute-force-object.ts), which holds all the buckets in its SQLite storage. A Durable Object
 * runs one call at a time, so each call is atomic, and every isolate of the Worker, in every location, counts in
 * the same place: the threshold is the same shared number it is with Redis.
 *
 * One object for the whole key space, not one per bucket: a decision reads three buckets, the trust flag and the
 * user's generation, which one object answers in one call (per bucket it would be up to five), and listing or
 * lifting blocks is a query over one table. The price is one object's throughput (docs/brute-force.md).
 *
 * Every call has a deadline (`commandTimeoutMs`); a call that fails or is late rejects, and the limiter applies
 * `onStoreFailure`.
 *
 *   const store = new DurableObjectLimiterStore({ namespace: env.BRUTE_FORCE, commandTimeoutMs: 250 });
 */
import type { LimiterStore } from "../core/brute-force.ts";
import { withDeadline } from "./deadline.ts";

/** What the object answers over RPC: the store's operations, each run whole before the next starts. */
export type BruteForceObjectCalls = Omit<Required<LimiterStore>, "close">;

/** The part of a Durable Object namespace binding the store uses. */
export interface BruteForceNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): BruteForceObjectCalls;
}

/** The one object every isolate shares. */
export const BRUTE_FORCE_OBJECT_NAME = "brute-force";

export interface DurableObjectLimiterStoreOptions {
  namespace: BruteForceNamespace;
  commandTimeoutMs: number;
}

export class DurableObjectLimiterStore implements LimiterStore {
  readonly #namespace: BruteForceNamespace;
  readonly #id: unknown;
  readonly #timeoutMs: number;

  constructor(options: DurableObjectLimiterStoreOptions) {
    this.#namespace = options.namespace;
    this.#id = options.namespace.idFromName(BRUTE_FORCE_OBJECT_NAME);
    this.#timeoutMs = options.commandTimeoutMs;
  }

  async memberKey(): Promise<Uint8Array> {
    return new Uint8Array(await this.#call((object) => object.memberKey()));
  }

  generations: LimiterStore["generations"] = (names) => this.#call((object) => object.generations(names));
  bumpGeneration: LimiterStore["bumpGeneration"] = (name) => this.#call((object) => object.bumpGeneration(name));
  read: LimiterStore["read"] = (windows, flag, now) => this.#call((object) => object.read(windows, flag, now));
  record: LimiterStore["record"] = (entries, now) => this.#call((object) => object.record(entries, now));
  trust: LimiterStore["trust"] = (flag, ttlMs, clear, now) =>
    this.#call((object) => object.trust(flag, ttlMs, clear, now));
  scan: Required<LimiterStore>["scan"] = (prefix, now) => this.#call((object) => object.scan(prefix, now));
  clear: Required<LimiterStore>["clear"] = (keys) => this.#call((object) => object.clear(keys));

  /**
   * A fresh stub for each call: a stub whose call threw may be broken for good, and a stub is cheap (the id is
   * derived once).
   */
  async #call<T>(call: (object: BruteForceObjectCalls) => Promise<T>): Promise<T> {
    return await withDeadline(
      () => call(this.#namespace.get(this.#id)),
      this.#timeoutMs,
      "the brute-force Durable Object",
    );
  }
}
