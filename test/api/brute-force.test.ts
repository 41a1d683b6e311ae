// Brute-force control end to end with the default thresholds: a real slapd (whose binds we count through
// cn=Monitor), real HTTP, the memory store. Sprays from one address, against one user from many, from one IPv6 /64;
// a stale password retried; the user's own network after a spray; observe mode; flushing a user.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../dev/api.ts";
import { SEED, startSlapd, type SlapdInstance } from "../../dev/slapd/index.ts";
import { completedBinds } from "../../dev/slapd/monitor.ts";
import { attempt, bruteForceConfig } from "./brute-force-fixture.ts";
import { smtpgate } from "../cli/run.ts";
import { API_TOKENS_CONFIG, TEST_TOKEN } from "../../dev/api.ts";
import type { ConfigInput } from "../../api/config/schema.ts";

const { alice, bob } = SEED.users;
const METRICS_TOKEN = "metrics-token-0123456789";

/** Runs the attempts in order; the index of the first rate-limited one (-1: none was). */
async function firstLimited(api: TestApi, attempts: Parameters<typeof attempt>[1][]): Promise<number> {
  let first = -1;
  for (const [index, fields] of attempts.entries()) {
    const verdict = await attempt(api, fields);
    if (first === -1 && verdict.reason === "rate-limited") first = index;
  }
  return first;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("with the default thresholds", () => {
  let slapd: SlapdInstance;
  let api: TestApi;

  beforeAll(async () => {
    slapd = await startSlapd({ monitor: true });
    api = await startTestApi(bruteForceConfig(slapd), { BIND_PW: SEED.servicePassword, METRICS_TOKEN });
  });

  afterAll(async () => {
    await api?.close();
    await slapd?.close();
  });

  it("limits 200 different wrong passwords from one address, and the blocked ones cost slapd no bind", async () => {
    const binds = await completedBinds(slapd);
    const first = await firstLimited(
      api,
      range(200).map((i) => ({ ip: "192.0.2.1", username: i % 2 ? "alice" : `nobody${i}`, password: `guess-${i}` })),
    );
    // alice's own pair bucket (10) is full first: 20 attempts in, half of them at alice.
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(60);
    // Only the guesses at alice that were let through bound as alice (unknown users stop at the search).
    const userBinds = (await completedBinds(slapd)) - binds;
    expect(userBinds).toBeLessThanOrEqual(10 + 2);
  });

  it("answers a blocked attempt 454 with retryAfter, the same whether the password was right or not", async () => {
    const right = await attempt(api, { ip: "192.0.2.1", username: "alice", password: alice.password });
    const wrong = await attempt(api, { ip: "192.0.2.1", username: "alice", password: "still-wrong" });
    for (const verdict of [right, wrong]) {
      expect(verdict).toMatchObject({
        verdict: "tempfail",
        reason: "rate-limited",
        authenticated: false,
        identity: null,
        dn: null,
        smtp: { code: 454, enhanced: "4.7.0" },
      });
      expect(verdict.retryAfter).toBeGreaterThan(800);
    }
    const { decisionId: _a, retryAfter: _r, ...rightRest } = right;
    const { decisionId: _b, retryAfter: _s, ...wrongRest } = wrong;
    expect(rightRest).toEqual(wrongRest);
  });

  it("writes one log line per block for fail2ban, and counts blocks by bucket", async () => {
    const blocks = api.logs.filter((record) => record.msg === "brute-force block");
    expect(blocks.length).toBeGreaterThan(100);
    expect(Object.keys(blocks[0] as object)).toEqual([
      "level",
      "msg",
      "listener",
      "bucket",
      "mode",
      "retryAfter",
      "clientIp",
      "user",
    ]);
    expect(blocks[0]).toMatchObject({ level: "warn", mode: "enforce", clientIp: "192.0.2.1" });
    const metrics = await fetch(`${api.url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    const text = await metrics.text();
    expect(text).toMatch(
      /smtpgate_bruteforce_blocked_total\{listener="submission",bucket="(pair|address)",mode="enforce"\} \d+/,
    );
  });

  it("limits 200 guesses at one user from 200 addresses", async () => {
    const binds = await completedBinds(slapd);
    const first = await firstLimited(
      api,
      range(200).map((i) => ({ ip: `198.51.100.${i + 1}`, username: "bob", password: `guess-${i}` })),
    );
    expect(first).toBe(20);
    // bob's 20 binds, and the service bind of a pooled connection the pool may have opened meanwhile.
    const seen = (await completedBinds(slapd)) - binds;
    expect(seen).toBeGreaterThanOrEqual(20);
    expect(seen).toBeLessThanOrEqual(22);
  });

  it("limits 200 guesses from 200 addresses of one IPv6 /64", async () => {
    const first = await firstLimited(
      api,
      range(200).map((i) => ({ ip: `2001:db8:7:7::${(i + 1).toString(16)}`, username: `nobody${i}`, password: "x" })),
    );
    expect(first).toBe(50);
  });

  it("does not limit the same wrong password retried 100 times from one address", async () => {
    const first = await firstLimited(
      api,
      range(100).map(() => ({ ip: "192.0.2.50", username: "alice", password: "last-years-password" })),
    );
    expect(first).toBe(-1);
  });

  it("flushes a user: the block is lifted and a cached allow is not served again", async () => {
    const ip = "192.0.2.120";
    expect(await attempt(api, { ip, username: "alice", password: alice.password, listener: "cached" })).toMatchObject({
      verdict: "allow",
    });
    expect(await attempt(api, { ip, username: "alice", password: alice.password, listener: "cached" })).toMatchObject({
      verdict: "allow",
    });
    expect(api.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: "hit" });
    const flushed = await api.post("/v1/users/flush", { user: "Alice" });
    expect(flushed).toMatchObject({ status: 200, body: { user: "Alice", generation: 1 } });
    await attempt(api, { ip, username: "alice", password: alice.password, listener: "cached" });
    expect(api.logs.findLast((record) => record.msg === "decision")).toMatchObject({ cache: "miss" });
    // bob was blocked everywhere by the spray; the flush lifts it.
    expect(await attempt(api, { ip: "198.51.100.250", username: "bob", password: bob.password })).toMatchObject({
      reason: "rate-limited",
    });
    await api.post("/v1/users/flush", { user: "bob" });
    expect(await attempt(api, { ip: "198.51.100.250", username: "bob", password: bob.password })).toMatchObject({
      verdict: "allow",
    });
  });

  it("lets the user in from the address of their last success after a spray against them", async () => {
    const home = "203.0.113.8";
    expect(await attempt(api, { ip: home, username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
    });
    await firstLimited(
      api,
      range(40).map((i) => ({ ip: `100.64.0.${i + 1}`, username: "alice", password: `spray-${i}` })),
    );
    // Anywhere else alice is blocked now, right password or not...
    expect(await attempt(api, { ip: "100.64.1.1", username: "alice", password: alice.password })).toMatchObject({
      reason: "rate-limited",
    });
    // ...but not from home.
    expect(await attempt(api, { ip: home, username: "alice", password: alice.password })).toMatchObject({
      verdict: "allow",
      identity: "alice",
    });
  });

  it("in observe mode logs what would be blocked and decides as usual", async () => {
    for (const i of range(12))
      await attempt(api, { ip: "192.0.2.99", username: "bob", password: `o-${i}`, listener: "observed" });
    const verdict = await attempt(api, { ip: "192.0.2.99", username: "bob", password: "o-x", listener: "observed" });
    expect(verdict).toMatchObject({ verdict: "deny", reason: "invalid-credentials" });
    expect(api.logs.findLast((record) => record.msg === "brute-force block")).toMatchObject({
      listener: "observed",
      mode: "observe",
      clientIp: "192.0.2.99",
    });
  });

  it("flushes a user from the command line (smtpgate flush)", async () => {
    const ip = "192.0.2.130";
    for (const i of range(10)) await attempt(api, { ip, username: "bob", password: `cli-${i}` });
    expect(await attempt(api, { ip, username: "bob", password: bob.password })).toMatchObject({
      reason: "rate-limited",
    });
    const run = await smtpgate(["flush", "--api", api.url, "--user", "bob"], {
      env: { SMTPGATE_API_TOKEN: TEST_TOKEN },
    });
    expect(run).toMatchObject({ code: 0, stdout: expect.stringMatching(/^flushed bob \(generation \d+\)\n$/) });
    expect(await attempt(api, { ip, username: "bob", password: bob.password })).toMatchObject({ verdict: "allow" });
    const refused = await smtpgate(["flush", "--api", api.url, "--user", "bob"], {
      env: { SMTPGATE_API_TOKEN: "wrong-token-000000" },
    });
    expect(refused.code).toBe(3);
  });

  it("refuses a flush without a token or a user", async () => {
    expect((await api.post("/v1/users/flush", { user: "alice" }, null)).status).toBe(401);
    expect((await api.post("/v1/users/flush", {})).status).toBe(400);
  });
});

describe("the store a runtime does not have", () => {
  it("refuses a Durable Object store on Node, naming bruteForceStore.type and what to use", async () => {
    const config: ConfigInput = {
      // Never contacted: the configuration is refused before anything is built.
      directories: { corp: { hosts: ["ldap://127.0.0.1:1"], startTls: false, allowPlaintext: true, baseDn: "dc=x" } },
      smtpAuthQueries: { corp: { directory: "corp" } },
      authProfiles: { corp: { type: "ldap", query: "corp" } },
      listeners: { submission: { authProfile: "corp" } },
      api: API_TOKENS_CONFIG,
      bruteForceStore: { type: "durable-object", binding: "BRUTE_FORCE" },
    };
    await expect(startTestApi(config)).rejects.toMatchObject({
      problems: [
        {
          path: "bruteForceStore.type",
          message:
            "a Durable Object store exists only on Cloudflare Workers: use memory (one process) or redis (replicas)",
        },
      ],
    });
  });
});
