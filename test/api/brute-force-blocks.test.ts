// Listing and lifting brute-force blocks: GET /v1/blocks, POST /v1/addresses/clear and `smtpgate blocks`, against
// a real API over a real slapd, with the memory store and with a real redis-server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseWindowKey } from "../../api/core/brute-force-blocks.ts";
import { startTestApi, TEST_TOKEN, type TestApi } from "../../dev/api.ts";
import { startRedis, type RedisInstance } from "../../dev/redis.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { expectUsageError, smtpgate } from "../cli/run.ts";
import { attempt, bruteForceConfig } from "./brute-force-fixture.ts";

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const env = { BIND_PW: SEED.servicePassword, METRICS_TOKEN: "metrics-token-0123456789" };

async function blocksOf(api: TestApi): Promise<Record<string, unknown>[]> {
  const response = await fetch(`${api.url}/v1/blocks`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { blocks: Record<string, unknown>[] }).blocks;
}

/** Fills mallory's pair bucket from `ip` (10 distinct wrong passwords) and the address bucket of `sprayer` (50 users). */
async function fillBuckets(api: TestApi, ip: string, sprayer: string): Promise<void> {
  for (const i of range(10)) await attempt(api, { ip, username: "mallory", password: `guess-${i}` });
  for (const i of range(50)) await attempt(api, { ip: sprayer, username: `user${i}`, password: "Summer2026" });
}

describe.each(["memory", "redis"] as const)("blocks with the %s store", (storeType) => {
  let slapd: SlapdInstance;
  let redis: RedisInstance | undefined;
  let api: TestApi;
  const cli = (...args: string[]) =>
    smtpgate(["blocks", "--api", api.url, ...args], { env: { SMTPGATE_API_TOKEN: TEST_TOKEN } });

  beforeAll(async () => {
    slapd = await startSlapd();
    if (storeType === "redis") redis = await startRedis();
    const config = bruteForceConfig(slapd, redis ? { bruteForceStore: { type: "redis", url: redis.url } } : {});
    api = await startTestApi(config, env);
    await fillBuckets(api, "2001:db8:1:2::7", "203.0.113.50");
  });

  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    await slapd?.close();
  });

  it("lists the full pair and address buckets with each listener's failures and wait", async () => {
    const blocks = await blocksOf(api);
    expect(blocks).toContainEqual({
      bucket: "pair",
      address: "2001:db8:1:2:0:0:0:0/64",
      user: "mallory",
      listeners: expect.arrayContaining([
        { listener: "submission", failures: 10, retryAfterSeconds: expect.any(Number) },
        { listener: "observed", failures: 10, retryAfterSeconds: expect.any(Number) },
      ]),
    });
    expect(blocks).toContainEqual(
      expect.objectContaining({ bucket: "address", address: "203.0.113.50/32", user: null }),
    );
    // Not full: the user buckets (10 and 1 failures of 20) and the sprayer's pairs (1 each).
    expect(blocks.filter((block) => block.bucket === "user")).toEqual([]);
    expect(blocks).toHaveLength(2);
  });

  it("prints them as a table with smtpgate blocks", async () => {
    const run = await cli();
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^bucket\taddress\tuser\tlistener\tfailures\tretry after\n/);
    expect(run.stdout).toMatch(/^pair\t2001:db8:1:2:0:0:0:0\/64\tmallory\tsubmission\t10\t\d+ s$/m);
    expect(run.stdout).toMatch(/^address\t203\.0\.113\.50\/32\t-\tsubmission\t50\t\d+ s$/m);
  });

  it("empties the address's bucket with blocks clear --address, so the address is let through again", async () => {
    expect(await attempt(api, { ip: "203.0.113.50", username: "alice", password: "x" })).toMatchObject({
      reason: "rate-limited",
    });
    const run = await cli("clear", "--address", "203.0.113.50");
    expect(run).toMatchObject({ code: 0, stdout: "cleared 203.0.113.50/32 (203.0.113.50)\n" });
    expect(await attempt(api, { ip: "203.0.113.50", username: "alice", password: "x" })).toMatchObject({
      reason: "invalid-credentials",
    });
    expect((await blocksOf(api)).some((block) => block.bucket === "address")).toBe(false);
    expect(api.logs).toContainEqual(expect.objectContaining({ msg: "address cleared", cleared: ["203.0.113.50/32"] }));
  });

  it("lifts the user's blocks with blocks clear --user", async () => {
    const run = await cli("clear", "--user", "Mallory");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^lifted Mallory's blocks \(generation \d+\)\n$/);
    expect(await blocksOf(api)).toEqual([]);
    expect((await cli()).stdout).toBe("no brute-force blocks\n");
  });
});

describe("smtpgate blocks: what it refuses", () => {
  it("needs exactly one of --address or --user to clear, and knows no other action", async () => {
    const withToken = { env: { SMTPGATE_API_TOKEN: TEST_TOKEN } };
    expectUsageError(await smtpgate(["blocks", "clear"], withToken), "blocks", "clear needs one of");
    expectUsageError(
      await smtpgate(["blocks", "clear", "--address", "192.0.2.1", "--user", "a"], withToken),
      "blocks",
      "clear needs one of",
    );
    expectUsageError(await smtpgate(["blocks", "drop"], withToken), "blocks", "unexpected drop");
    expectUsageError(
      await smtpgate(["blocks", "--user", "a"], withToken),
      "blocks",
      "--address and --user go with clear",
    );
  });

  it("says which API did not answer (exit 3), and an address the API refuses", async () => {
    const down = await smtpgate(["blocks", "--api", "http://127.0.0.1:9"], { env: { SMTPGATE_API_TOKEN: TEST_TOKEN } });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("http://127.0.0.1:9");
  });
});

describe("window keys", () => {
  it("finds the user and the network of a pair key, whatever the user name holds", () => {
    expect(parseWindowKey("pair:3:a:b@x:192.0.2.0/24")).toEqual({
      bucket: "pair",
      generation: 3,
      user: "a:b@x",
      address: "192.0.2.0/24",
    });
    expect(parseWindowKey("pair:0:dave:2001:db8:0:0:0:0:0:0/64")).toMatchObject({
      user: "dave",
      address: "2001:db8:0:0:0:0:0:0/64",
    });
    expect(parseWindowKey("user:1:x:y")).toMatchObject({ bucket: "user", user: "x:y" });
    expect(parseWindowKey("trust:0:a:192.0.2.0/24")).toBeNull();
    expect(parseWindowKey("pair:x:a:192.0.2.0/24")).toBeNull();
  });
});
