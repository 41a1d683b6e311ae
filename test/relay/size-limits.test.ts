// One wording for "too big" (552 5.3.4 Message size exceeds fixed limit), whoever notices: smtp-server for a
// MAIL FROM SIZE= over the largest limit of the listener (its `size` option, rewritten by smtp-server-patches.ts),
// the relay for a SIZE= over the session's own policy limit, and the relay for DATA over it. A listener whose
// two sender groups have different limits (loopback gets the small one) is served by the fake listener API.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateServerPki } from "../../dev/server-pki.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { startSink, type Sink } from "../../dev/sink.ts";
import { RawSmtp } from "./clients.ts";
import { FakeListenerApi, LISTENER, listenerPolicy, rules } from "./fake-listener-api.ts";

const TOO_BIG = "552 5.3.4 Message size exceeds fixed limit";
const SMALL = 4 * 1024;
const LARGE = 1024 * 1024;

let dir: string;
let fake: FakeListenerApi;
let upstream: Sink;
let relay: TestRelay;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-size-limits-"));
  fake = await FakeListenerApi.start();
  fake.document = {
    ...listenerPolicy("TRUSTED"),
    hostAccessTable: [
      { name: "LOCAL", match: ["127.0.0.0/8"], policy: "SMALL" },
      { name: "PARTNERS", match: ["192.0.2.0/24"], policy: "LARGE" },
    ],
    mailFlowPolicies: { SMALL: rules({ maxMessageBytes: SMALL }), LARGE: rules({ maxMessageBytes: LARGE }) },
  };
  upstream = await startSink({ closeTimeoutMs: 1_000 });
  relay = await startTestRelay({
    apiUrl: fake.url,
    apiToken: "unused",
    listener: LISTENER,
    upstreamPort: upstream.port,
    serverPki: await generateServerPki(dir),
  });
});

afterAll(async () => {
  await relay?.close();
  await upstream?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function session(): Promise<RawSmtp> {
  const client = await RawSmtp.connect(relay.ports.starttls!);
  await client.ehlo();
  return client;
}

describe("message size replies", () => {
  it("answers a declared SIZE over the listener's largest limit (smtp-server's check) and over the session's own limit (the relay's) alike", async () => {
    const client = await session();
    try {
      expect((await client.send(`MAIL FROM:<a@outside.example> SIZE=${LARGE + 1}`)).last).toBe(TOO_BIG);
      expect((await client.send(`MAIL FROM:<a@outside.example> SIZE=${SMALL + 1}`)).last).toBe(TOO_BIG);
      expect((await client.send(`MAIL FROM:<a@outside.example> SIZE=${SMALL}`)).last).toBe("250 2.1.0 Accepted");
    } finally {
      await client.quit();
    }
  });

  it("answers DATA over the session's limit with the same reply, relays nothing, and counts it", async () => {
    const before = upstream.messages.length;
    const client = await session();
    try {
      expect((await client.send("MAIL FROM:<a@outside.example>")).last).toBe("250 2.1.0 Accepted");
      expect((await client.send("RCPT TO:<b@other.example>")).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("DATA")).code).toBe(354);
      expect((await client.send(`Subject: too big\r\n\r\n${`${"y".repeat(78)}\r\n`.repeat(SMALL / 40)}.`)).last).toBe(
        TOO_BIG,
      );
      expect((await client.send("MAIL FROM:<a@outside.example>")).last).toBe("250 2.1.0 Accepted");
      expect((await client.send("RCPT TO:<b@other.example>")).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("DATA")).code).toBe(354);
      expect((await client.send("Subject: small\r\n\r\nfits\r\n.")).last).toMatch(/^250 2\.0\.0 Ok: relayed /);
    } finally {
      await client.quit();
    }
    expect(
      upstream.messages.slice(before).map((message) => message.data.toString("utf8").includes("Subject: small")),
    ).toEqual([true]);
    expect(relay.metrics.messages.get({ result: "too-big" })).toBe(1);
  });
});
