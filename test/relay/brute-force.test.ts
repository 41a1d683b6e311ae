// The relay when the API's brute-force limiter blocks an attempt (reason rate-limited): 454 after the failure
// delay, counted towards limits.maxAuthFailures, then 421 and close; the right password gets no further.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, TEST_TOKEN, type TestApi } from "../../dev/api.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { SEED } from "../../dev/slapd/index.ts";
import { stackApiConfig } from "../../dev/stack.ts";
import { RawSmtp } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

const { password: PASSWORD } = STACK_LISTENERS;
const AUTH_INVALID = "535 5.7.8 Authentication credentials invalid";
const TEMPFAIL = "454 4.7.0 Temporary authentication failure";
const DELAY_MS = 400;

let fx: RelayFixture;
let api: TestApi;
let relay: TestRelay;

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [PASSWORD] });
  // An API of the stack's configuration whose password listener blocks a (user, address) pair after 2 failures.
  const config = stackApiConfig(fx.stack.slapd, fx.stack.pki, fx.stack.crls.baseUrl);
  const listener = config.listeners[PASSWORD];
  if (!listener) throw new Error(`the stack has no listener ${PASSWORD}`);
  config.listeners[PASSWORD] = { ...listener, bruteForce: { pair: { limit: 2, windowSeconds: 600 } } };
  api = await startTestApi(config, { BIND_PW: SEED.servicePassword });
  relay = await startTestRelay({
    apiUrl: api.url,
    apiToken: TEST_TOKEN,
    listener: PASSWORD,
    upstreamPort: fx.stack.sink.port,
    serverPki: fx.stack.slapd.pki,
    overrides: { limits: { authFailureDelayMs: DELAY_MS, maxAuthFailures: 4 } },
  });
});

afterAll(async () => {
  await relay?.close();
  await api?.close();
  await fx?.close();
});

describe("a brute-force block reaching the relay", () => {
  it("answers a blocked attempt with 454 after the failure delay, then 421 and close at maxAuthFailures", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    expect((await client.submissionLogin(await fx.tls(), ALICE.user, "guess-1")).last).toBe(AUTH_INVALID);
    expect((await client.authPlain(ALICE.user, "guess-2")).last).toBe(AUTH_INVALID);
    // The pair bucket is full: even the right password is blocked before the directory is asked.
    const started = Date.now();
    expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(TEMPFAIL);
    expect(Date.now() - started).toBeGreaterThanOrEqual(DELAY_MS - 50);
    expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(
      "421 4.7.0 Too many authentication failures, closing connection",
    );
    await client.closed;
    expect(client.isClosed).toBe(true);
  });

  it("logs the block on the API with the client's address, and the relay's line names the reason", () => {
    expect(api.logs).toContainEqual(
      expect.objectContaining({ msg: "brute-force block", bucket: "pair", clientIp: "127.0.0.1", user: "alice" }),
    );
    expect(relay.logs.some((record) => String(record.msg).includes("reason rate-limited"))).toBe(true);
  });
});
