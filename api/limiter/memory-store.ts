/**
 * The brute-force limiter's store in this process's memory: the default, right for one API process (the demo, a
 * single host). Replicas each count on their own; give them the Redis store (./redis-store.ts) to share.
 *
 * Bounded: each window keeps at most its bucket's limit of newest members, and at most `maxKeys` keys are held
 * (the least recently touched go first; a flag or window past its expiry is dropped when next looked at).
 */
import { randomBytes } from "node:crypto";
import type { LimiterStore, WindowRef, WindowState } from "../core/brute-force.ts";

const DEFAULT_MAX_KEYS = 100_000;

interface Window {
  /** member → when it was last recorded; Map order is insertion order, so the oldest comes first. */
  members: Map<string, number>;
  expiresAt: number;
}

export class MemoryLimiterStore implements LimiterStore {
  readonly #key = new Uint8Array(randomBytes(32));
  readonly #windows = new Map<string, Window>();
  readonly #flags = new Map<string, number>();
  readonly #generations = new Map<string, number>();
  readonly #maxKeys: number;

  constructor(options: { maxKeys?: number } = {}) {
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
  }

  async memberKey(): Promise<Uint8Array> {
    return this.#key;
  }

  async generations(names: readonly string[]): Promise<number[]> {
    return names.map((name) => this.#generations.get(name) ?? 0);
  }

  async bumpGeneration(name: string): Promise<number> {
    const next = (this.#generations.get(name) ?? 0) + 1;
    this.#generations.set(name, next);
    return next;
  }

  async read(windows: readonly WindowRef[], flag: string, now: number) {
    const flagUntil = this.#flags.get(flag);
    if (flagUntil !== undefined && flagUntil <= now) this.#flags.delete(flag);
    return {
      windows: windows.map((ref): WindowState => {
        const window = this.#trimmed(ref, now);
        const oldest = window?.members.values().next();
        return { count: window?.members.size ?? 0, oldestMs: oldest && !oldest.done ? oldest.value : null };
      }),
      flag: flagUntil !== undefined && flagUntil > now,
    };
  }

  async record(entries: readonly (WindowRef & { member: string; keep: number })[], now: number): Promise<void> {
    for (const entry of entries) {
      const window = this.#trimmed(entry, now) ?? { members: new Map<string, number>(), expiresAt: 0 };
      window.members.delete(entry.member);
      window.members.set(entry.member, now);
      for (const member of window.members.keys()) {
        if (window.members.size <= entry.keep) break;
        window.members.delete(member);
      }
      window.expiresAt = now + entry.windowMs;
      this.#windows.delete(entry.key);
      this.#windows.set(entry.key, window);
    }
    this.#evict(this.#windows);
  }

  async trust(flag: string, ttlMs: number, clear: readonly string[], now: number): Promise<void> {
    for (const key of clear) this.#windows.delete(key);
    this.#flags.delete(flag);
    this.#flags.set(flag, now + ttlMs);
    this.#evict(this.#flags);
  }

  async scan(prefix: string, now: number): Promise<{ key: string; times: number[] }[]> {
    const found: { key: string; times: number[] }[] = [];
    for (const [key, window] of this.#windows) {
      if (key.startsWith(prefix) && window.expiresAt > now) found.push({ key, times: [...window.members.values()] });
    }
    return found;
  }

  async clear(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#windows.delete(key);
  }

  /** The window with members older than its length dropped; undefined when nothing is left. */
  #trimmed(ref: WindowRef, now: number): Window | undefined {
    const window = this.#windows.get(ref.key);
    if (!window) return undefined;
    for (const [member, at] of window.members) {
      if (at > now - ref.windowMs) break;
      window.members.delete(member);
    }
    if (window.members.size === 0) {
      this.#windows.delete(ref.key);
      return undefined;
    }
    return window;
  }

  #evict(map: Map<string, unknown>): void {
    for (const key of map.keys()) {
      if (map.size <= this.#maxKeys) break;
      map.delete(key);
    }
  }
}
