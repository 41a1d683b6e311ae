/**
 * The Durable Object behind `bruteForceStore.type: durable-object` (api/limiter/durable-object-store.ts): every
 * bucket, trust flag and generation in the object's SQLite storage. A Durable Object handles one call at a time and
 * each method below runs its SQL without awaiting in between, so a call is atomic: two isolates recording at once
 * cannot lose a failure, and a window is trimmed to its limit in the same step it grows.
 *
 * Expiry: reads count only members inside the caller's window (no write on the decision path); a record trims its
 * own window; everything else past its expiry goes in an hourly alarm, which stops once the tables are empty.
 * Generations never expire (like Redis's counters): a flushed user's old keys must never come back.
 *
 * Bound in wrangler.toml ([[durable_objects.bindings]], class_name = "BruteForceObject", a new_sqlite_classes
 * migration) and exported from the Worker's entry (./index.ts).
 */
import { DurableObject, type DurableObjectState, type SqlValue } from "cloudflare:workers";
import type { WindowRef, WindowState } from "../../core/brute-force.ts";
import type { BruteForceObjectCalls } from "../../limiter/durable-object-store.ts";

/** How often expired rows are swept while there are any. */
const SWEEP_EVERY_MS = 60 * 60 * 1000;

const SCHEMA = [
  // expires: when the member leaves every window (the recording window's length after it was recorded).
  `CREATE TABLE IF NOT EXISTS members (key TEXT NOT NULL, member TEXT NOT NULL, at INTEGER NOT NULL,
     expires INTEGER NOT NULL, PRIMARY KEY (key, member)) WITHOUT ROWID`,
  "CREATE INDEX IF NOT EXISTS members_by_expiry ON members (expires)",
  "CREATE TABLE IF NOT EXISTS flags (key TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS generations (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
  "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
];

export class BruteForceObject extends DurableObject implements BruteForceObjectCalls {
  /** Whether this instance knows an alarm is pending (an instance starts not knowing). */
  #sweepScheduled = false;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    for (const statement of SCHEMA) this.#sql(statement);
  }

  async memberKey(): Promise<Uint8Array> {
    // The first call makes it; every isolate after reads the same, so they agree on "the same password".
    const stored = this.#sql<{ value: ArrayBuffer }>("SELECT value FROM settings WHERE name = 'member-key'");
    if (stored[0]) return new Uint8Array(stored[0].value);
    const key = crypto.getRandomValues(new Uint8Array(32));
    this.#sql("INSERT INTO settings (name, value) VALUES ('member-key', ?)", key.buffer);
    return key;
  }

  async generations(names: readonly string[]): Promise<number[]> {
    return names.map(
      (name) => this.#sql<{ value: number }>("SELECT value FROM generations WHERE name = ?", name)[0]?.value ?? 0,
    );
  }

  async bumpGeneration(name: string): Promise<number> {
    const [row] = this.#sql<{ value: number }>(
      `INSERT INTO generations (name, value) VALUES (?, 1)
       ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
      name,
    );
    return row?.value as number;
  }

  async read(windows: readonly WindowRef[], flag: string, now: number) {
    const states = windows.map((window): WindowState => {
      const [row] = this.#sql<{ count: number; oldest: number | null }>(
        "SELECT count(*) AS count, min(at) AS oldest FROM members WHERE key = ? AND at > ?",
        window.key,
        now - window.windowMs,
      );
      return { count: row?.count ?? 0, oldestMs: row?.oldest ?? null };
    });
    const flagged = this.#sql("SELECT 1 FROM flags WHERE key = ? AND expires > ?", flag, now).length > 0;
    return { windows: states, flag: flagged };
  }

  async record(entries: readonly (WindowRef & { member: string; keep: number })[], now: number): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const { key, member, windowMs, keep } of entries) {
        this.#sql(
          `INSERT INTO members (key, member, at, expires) VALUES (?, ?, ?, ?)
           ON CONFLICT (key, member) DO UPDATE SET at = excluded.at, expires = excluded.expires`,
          key,
          member,
          now,
          now + windowMs,
        );
        this.#sql("DELETE FROM members WHERE key = ? AND at <= ?", key, now - windowMs);
        this.#sql(
          `DELETE FROM members WHERE key = ? AND member NOT IN
             (SELECT member FROM members WHERE key = ? ORDER BY at DESC LIMIT ?)`,
          key,
          key,
          keep,
        );
      }
    });
    await this.#scheduleSweep();
  }

  async trust(flag: string, ttlMs: number, clear: readonly string[], now: number): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      this.#sql("INSERT OR REPLACE INTO flags (key, expires) VALUES (?, ?)", flag, now + Math.max(1, ttlMs));
      for (const key of clear) this.#sql("DELETE FROM members WHERE key = ?", key);
    });
    await this.#scheduleSweep();
  }

  async scan(prefix: string, now: number): Promise<{ key: string; times: number[] }[]> {
    const rows = this.#sql<{ key: string; at: number }>(
      "SELECT key, at FROM members WHERE substr(key, 1, length(?)) = ? AND expires > ? ORDER BY key",
      prefix,
      prefix,
      now,
    );
    const byKey = new Map<string, number[]>();
    for (const { key, at } of rows) {
      const times = byKey.get(key);
      if (times) times.push(at);
      else byKey.set(key, [at]);
    }
    return [...byKey].map(([key, times]) => ({ key, times }));
  }

  async clear(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#sql("DELETE FROM members WHERE key = ?", key);
  }

  /** Drops what has expired; comes back while anything is left. */
  async alarm(): Promise<void> {
    const now = Date.now();
    this.#sql("DELETE FROM members WHERE expires <= ?", now);
    this.#sql("DELETE FROM flags WHERE expires <= ?", now);
    const [left] = this.#sql<{ n: number }>(
      "SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM flags) AS n",
    );
    this.#sweepScheduled = (left?.n ?? 0) > 0;
    if (this.#sweepScheduled) await this.ctx.storage.setAlarm(now + SWEEP_EVERY_MS);
  }

  async #scheduleSweep(): Promise<void> {
    if (this.#sweepScheduled) return;
    this.#sweepScheduled = true;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + SWEEP_EVERY_MS);
  }

  #sql<T = Record<string, SqlValue>>(query: string, ...bindings: SqlValue[]): T[] {
    return this.ctx.storage.sql.exec<T>(query, ...bindings).toArray();
  }
}
