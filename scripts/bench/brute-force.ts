/**
 * The brute-force limiter in `npm run bench` (issue 15, docs/brute-force.md), part `bruteforce`:
 *
 * - what the limiter costs an uncached decision: the same listener's profile with `bruteForce.mode: off`, with the
 *   memory store (the default), and through a second API process whose store is a private redis-server, measured
 *   one after the other at each concurrency (goal: each ≥ 0.95 of off);
 * - a password spray: 50,000 attempts (10,000 with --quick), each a new wrong password for one of the 200 bench
 *   users from one of 1,000 addresses, through the Redis API, with the binds slapd completed counted from
 *   cn=Monitor: they must stay at the user buckets' threshold (200 users × 20), however many attempts come.
 *
 * The spray runs against the Redis API's own store, so the buckets it fills never block the other figures.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Pool } from "undici";
import { startRedis, type RedisInstance } from "../../dev/redis.ts";
import { completedBinds } from "../../dev/slapd/monitor.ts";
import type { SlapdInstance } from "../../dev/slapd/index.ts";
import { benchUser, USERS } from "./config.ts";
import type { MeasureFigure, Processes, RunResult } from "./measure.ts";

/** The default user bucket (docs/brute-force.md): distinct failures per user per 15 minutes. */
const USER_LIMIT = 20;
const SPRAY_ADDRESSES = 1000;

export interface SprayResult {
  attempts: number;
  addresses: number;
  users: number;
  blocked: number;
  /** Attempts that reached the directory (not rate-limited). */
  passed: number;
  /** Binds slapd completed during the spray (cn=Monitor). */
  binds: number;
  /** users × the user bucket's limit: what the limiter may let through in one window. */
  threshold: number;
  attemptsPerSecond: number;
}

export interface BruteForceBenchContext {
  slapd: SlapdInstance;
  temp: string;
  concurrency: number[];
  quick: boolean;
  /** The main API's pool and pid (memory store). */
  api: { pool: Pool; pid: number };
  /** The API configuration (benchApiConfig) to start the Redis API from, and a port for it. */
  apiConfig: Record<string, unknown>;
  port: number;
  startApi: (name: string, configFile: string) => Promise<{ pid: number; pool: Pool }>;
  measure: MeasureFigure;
  record: (name: string, c: number, result: RunResult) => void;
  post: (path: string, body: string, check: (text: string) => boolean, through: Pool) => Promise<void>;
  log: (text: string) => void;
  /** The API token and content type of every request. */
  headers: Record<string, string>;
}

const authAs = (listener: string, ip: string, user: string, password: string): string =>
  JSON.stringify({ listener, client: { ip }, mechanism: "PLAIN", username: user, password });

export async function benchBruteForce(context: BruteForceBenchContext): Promise<SprayResult> {
  const { measure, record, post, log, slapd } = context;
  const redis: RedisInstance = await startRedis();
  try {
    const file = join(context.temp, "api-redis.json");
    const api = context.apiConfig as { api: { listen: { port: number } } };
    await writeFile(
      file,
      JSON.stringify({
        ...api,
        api: { ...api.api, listen: { ...api.api.listen, port: context.port } },
        bruteForceStore: { type: "redis", url: redis.url },
      }),
    );
    const redisApi = await context.startApi("api-redis", file);
    const allowed = (text: string) => text.includes('"verdict":"allow"');
    let user = 0;
    const decide = (listener: string, through: Pool) => () => {
      const uid = benchUser(user++ % USERS);
      return post("/v1/decide/auth", authAs(listener, "192.0.2.1", uid, `${uid}-password`), allowed, through);
    };
    log("brute-force limiter: cost per uncached decision (off, memory, redis)");
    for (const c of context.concurrency) {
      const pids = (pid: number): Processes => ({ api: pid, slapd: slapd.pid });
      record(
        "API auth, uncached, limiter off",
        c,
        await measure("limiter off", c, decide("nolimit", context.api.pool), pids(context.api.pid)),
      );
      record(
        "API auth, uncached, limiter memory",
        c,
        await measure("limiter memory", c, decide("uncached", context.api.pool), pids(context.api.pid)),
      );
      record(
        "API auth, uncached, limiter off (redis API)",
        c,
        await measure("limiter off, redis API", c, decide("nolimit", redisApi.pool), pids(redisApi.pid)),
      );
      record(
        "API auth, uncached, limiter redis",
        c,
        await measure("limiter redis", c, decide("uncached", redisApi.pool), pids(redisApi.pid)),
      );
    }
    return await spray(context, redisApi.pool);
  } finally {
    await redis.stop();
  }
}

async function spray(context: BruteForceBenchContext, pool: Pool): Promise<SprayResult> {
  const attempts = context.quick ? 10_000 : 50_000;
  context.log(
    `brute-force limiter: a spray of ${attempts} wrong passwords from ${SPRAY_ADDRESSES} addresses at ${USERS} users`,
  );
  const before = await completedBinds(context.slapd);
  let next = 0;
  let blocked = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < attempts; i = next++) {
      // 198.18.0.0/15 is the benchmarking range (RFC 2544).
      const ip = `198.18.${Math.floor((i % SPRAY_ADDRESSES) / 250)}.${((i % SPRAY_ADDRESSES) % 250) + 1}`;
      const body = authAs("uncached", ip, benchUser(i % USERS), `spray-${i}`);
      const response = await pool.request({ method: "POST", path: "/v1/decide/auth", headers: context.headers, body });
      const text = await response.body.text();
      if (response.statusCode !== 200 || text.includes('"verdict":"allow"'))
        throw new Error(`spray ${i}: ${response.statusCode} ${text.slice(0, 200)}`);
      if (text.includes('"reason":"rate-limited"')) blocked += 1;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const seconds = (performance.now() - started) / 1000;
  const binds = (await completedBinds(context.slapd)) - before;
  const result: SprayResult = {
    attempts,
    addresses: SPRAY_ADDRESSES,
    users: USERS,
    blocked,
    passed: attempts - blocked,
    binds,
    threshold: USERS * USER_LIMIT,
    attemptsPerSecond: attempts / seconds,
  };
  context.log(
    `  ${result.attempts} attempts in ${seconds.toFixed(1)} s (${result.attemptsPerSecond.toFixed(0)}/s): ${result.blocked} blocked, ${result.passed} reached the directory, slapd completed ${result.binds} binds (threshold ${result.threshold})`,
  );
  return result;
}
