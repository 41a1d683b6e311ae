/**
 * The brute-force limiter's store in Redis, shared by every API replica: each bucket is a sorted set (member →
 * when it was last recorded, in ms), trimmed to its window and its limit and given its expiry in the same Lua
 * script, so two replicas recording at once cannot lose an update or leave a key without an expiry. Flags are
 * keys with a PX expiry; generations are counters (INCR), never expiring.
 *
 * Every command has a deadline (`commandTimeoutMs`) and no offline queue: while Redis is unreachable a call fails
 * at once and the limiter applies `onStoreFailure`, instead of decisions waiting on a queue.
 *
 *   const store = new RedisLimiterStore({ url: "redis://127.0.0.1:6379", keyPrefix: "smtpgate:bf:", commandTimeoutMs: 250 });
 */
import { createHash, randomBytes } from "node:crypto";
import { createClient } from "redis";
import type { LimiterStore, WindowRef, WindowState } from "../core/brute-force.ts";
import { withDeadline } from "../../lib/deadline.ts";

interface LuaScript {
  text: string;
  /** What EVALSHA names it by. */
  sha: string;
}

function script(text: string): LuaScript {
  return { text, sha: createHash("sha1").update(text).digest("hex") };
}

/** KEYS: the windows then the flag; ARGV: now, then each window's length in ms. */
const READ = script(`
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS - 1 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - tonumber(ARGV[i + 1]))
  local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  out[#out + 1] = redis.call('ZCARD', KEYS[i])
  out[#out + 1] = oldest[2] or ''
end
out[#out + 1] = redis.call('EXISTS', KEYS[#KEYS])
return out`);

/** KEYS: the windows; ARGV: now, then for each window its member, length in ms and how many members to keep. */
const RECORD = script(`
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local member, window, keep = ARGV[i * 3 - 1], tonumber(ARGV[i * 3]), tonumber(ARGV[i * 3 + 1])
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(keep + 1))
  redis.call('PEXPIRE', KEYS[i], window)
end
return 0`);

export interface RedisLimiterStoreOptions {
  url: string;
  password?: string | undefined;
  keyPrefix: string;
  commandTimeoutMs: number;
  /** Told when the connection fails (node-redis reconnects on its own). */
  onConnectionError?: (error: Error) => void;
}

export class RedisLimiterStore implements LimiterStore {
  readonly #client;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #connected: Promise<unknown>;
  /** Until the first connection attempt has ended, a call waits for it (within its deadline) instead of failing. */
  #firstAttemptDone = false;

  constructor(options: RedisLimiterStoreOptions) {
    this.#prefix = options.keyPrefix;
    this.#timeoutMs = options.commandTimeoutMs;
    this.#client = createClient({
      url: options.url,
      ...(options.password === undefined ? {} : { password: options.password }),
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(1000, options.commandTimeoutMs),
        // Keep trying, at most every 2 s: the limiter answers onStoreFailure meanwhile.
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000),
      },
    });
    this.#client.on("error", (error: Error) => options.onConnectionError?.(error));
    this.#connected = this.#client
      .connect()
      .catch(() => {})
      .finally(() => (this.#firstAttemptDone = true));
  }

  async memberKey(): Promise<Uint8Array> {
    const key = this.#prefix + "member-key";
    // The first replica to start sets it; every other one reads the same.
    await this.#call(() => this.#client.set(key, randomBytes(32).toString("base64"), { NX: true }));
    const value = await this.#call(() => this.#client.get(key));
    if (typeof value !== "string") throw new Error("brute-force member key missing from Redis");
    return new Uint8Array(Buffer.from(value, "base64"));
  }

  async generations(names: readonly string[]): Promise<number[]> {
    if (names.length === 0) return [];
    const values = await this.#call(() => this.#client.mGet(names.map((name) => this.#generationKey(name))));
    return values.map((value) => (value === null ? 0 : Number(value)));
  }

  async bumpGeneration(name: string): Promise<number> {
    return Number(await this.#call(() => this.#client.incr(this.#generationKey(name))));
  }

  async read(windows: readonly WindowRef[], flag: string, now: number) {
    const reply = (await this.#call(() =>
      this.#script(READ, {
        keys: [...windows.map((window) => this.#prefix + window.key), this.#prefix + flag],
        arguments: [String(now), ...windows.map((window) => String(window.windowMs))],
      }),
    )) as (number | string)[];
    return {
      windows: windows.map((_, i): WindowState => ({
        count: Number(reply[i * 2]),
        oldestMs: reply[i * 2 + 1] === "" ? null : Number(reply[i * 2 + 1]),
      })),
      flag: Number(reply[windows.length * 2]) === 1,
    };
  }

  async record(entries: readonly (WindowRef & { member: string; keep: number })[], now: number): Promise<void> {
    await this.#call(() =>
      this.#script(RECORD, {
        keys: entries.map((entry) => this.#prefix + entry.key),
        arguments: [
          String(now),
          ...entries.flatMap((entry) => [entry.member, String(entry.windowMs), String(entry.keep)]),
        ],
      }),
    );
  }

  async trust(flag: string, ttlMs: number, clear: readonly string[]): Promise<void> {
    await this.#call(() =>
      this.#client
        .multi()
        .set(this.#prefix + flag, "1", { PX: Math.max(1, ttlMs) })
        .del(clear.map((key) => this.#prefix + key))
        .exec(),
    );
  }

  async scan(prefix: string): Promise<{ key: string; times: number[] }[]> {
    const found: { key: string; times: number[] }[] = [];
    const pattern = `${globEscaped(this.#prefix + prefix)}*`;
    for await (const keys of this.#client.scanIterator({ MATCH: pattern, COUNT: 1000, TYPE: "zset" })) {
      for (const key of keys) {
        const members = await this.#call(() => this.#client.zRangeWithScores(key, 0, -1));
        found.push({ key: key.slice(this.#prefix.length), times: members.map((member) => Number(member.score)) });
      }
    }
    return found;
  }

  async clear(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#call(() => this.#client.del(keys.map((key) => this.#prefix + key)));
  }

  /** Lets go at once, connected or still trying: replies still due are not waited for. */
  async close(): Promise<void> {
    if (this.#client.isOpen) this.#client.destroy();
    await this.#connected;
  }

  #generationKey(name: string): string {
    return `${this.#prefix}generation:${name}`;
  }

  /**
   * A script by its SHA-1 (EVALSHA), so its text goes out only when this Redis has not seen it yet (NOSCRIPT: after
   * a restart or SCRIPT FLUSH), then by EVAL, which also puts it in the server's script cache for the next call.
   */
  async #script({ text, sha }: LuaScript, options: { keys: string[]; arguments: string[] }): Promise<unknown> {
    try {
      return await this.#client.evalSha(sha, options);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith("NOSCRIPT")) throw error;
      return await this.#client.eval(text, options);
    }
  }

  /** The command, or a rejection once `commandTimeoutMs` has passed. */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    // A decision right after start would otherwise meet "the client is offline" while the socket is still
    // connecting (there is no offline queue) and get onStoreFailure for no outage at all.
    const sent = this.#firstAttemptDone ? command() : this.#connected.then(command);
    return await withDeadline(sent, this.#timeoutMs, "Redis");
  }
}

/** A literal for a SCAN MATCH pattern. */
function globEscaped(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}
