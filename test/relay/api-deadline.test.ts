// The API client's deadline: api.timeoutMs bounds a whole decision call, its retry included. An API that drops
// the connection late in the first attempt (the client retries, as for a stale keep-alive socket) and then does
// not answer the retry gives the client its 454 within api.timeoutMs, not after a second full timeout.
import type { IncomingMessage } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { generateServerPki } from "../../dev/server-pki.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { plainBlob, RawSmtp } from "./clients.ts";
import { FakeListenerApi, LISTENER, listenerPolicy, rules } from "./fake-listener-api.ts";

const TIMEOUT_MS = 1_000;
/** When the first attempt's connection is dropped: late, so that a fresh timeout for the retry would show. */
const DROP_AFTER_MS = 600;

let dir: string;
let api: FakeListenerApi;
let sink: Sink;
let relay: TestRelay;
const decideCalls: IncomingMessage[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-api-deadline-"));
  api = await FakeListenerApi.start();
  api.document = {
    ...listenerPolicy("TRUSTED"),
    mailFlowPolicies: { TRUSTED: rules({ smtpAuth: "preferred", requireTlsToOfferAuth: false }) },
  };
  api.onDecide = (request) => {
    decideCalls.push(request);
    // The first attempt: the connection goes away without an answer. The retry: no answer at all.
    if (decideCalls.length === 1) setTimeout(() => request.socket.destroy(), DROP_AFTER_MS);
  };
  sink = await startSink();
  relay = await startTestRelay({
    apiUrl: api.url,
    apiToken: "token",
    listener: LISTENER,
    upstreamPort: sink.port,
    serverPki: await generateServerPki(dir),
    overrides: { api: { url: api.url, token: { env: "UNUSED" }, timeoutMs: TIMEOUT_MS } },
  });
});

afterAll(async () => {
  await relay?.close();
  await sink?.close();
  await api?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("a decision call that times out through its retry", () => {
  it("answers 454 within api.timeoutMs, counting the retry in", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    await client.ehlo();
    const started = performance.now();
    const reply = await client.send(`AUTH PLAIN ${plainBlob("alice", "secret")}`);
    const elapsed = performance.now() - started;
    expect(reply.code).toBe(454);
    expect(decideCalls).toHaveLength(2);
    // Without one deadline per call: DROP_AFTER_MS and then a whole TIMEOUT_MS more for the retry (1.6 s).
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 300);
    expect(JSON.stringify(relay.logs)).toContain(`no answer within ${TIMEOUT_MS} ms`);
    await client.send("QUIT");
  });
});
