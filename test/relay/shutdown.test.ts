// relay.close(): no new connection from the first moment; a session in a mail transaction may finish it during
// limits.shutdownGraceMs (a new transaction gets 421 4.3.2); whatever is still open after the grace gets
// `421 4.3.2 Service shutting down, try again later` and is closed, and a message still streaming in then is
// not relayed. Raw sockets, so that the test decides exactly when each line is sent.
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_TOKEN } from "../../dev/api.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { waitFor } from "../../dev/wait.ts";
import { RawSmtp } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [] });
});

afterAll(async () => {
  await fx?.close();
});

const SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later";
const STOPPING = "relay stopping: no new connections; open sessions may finish their mail transaction";

const logged = (relay: TestRelay, msg: string): boolean => relay.logs.some((record) => record.msg === msg);
const GRACE_MS = 1_500;

/** An inbound (no AUTH) relay of its own, to be closed by the test. */
function relayWithGrace(graceMs = GRACE_MS): Promise<TestRelay> {
  return startTestRelay({
    apiUrl: fx.stack.api.url,
    apiToken: TEST_TOKEN,
    listener: STACK_LISTENERS.inbound,
    upstreamPort: fx.stack.sink.port,
    serverPki: fx.stack.slapd.pki,
    overrides: { limits: { authFailureDelayMs: 0, shutdownGraceMs: graceMs } },
  });
}

/** A session with MAIL and RCPT done; with `data`, DATA sent too (354 read). */
async function transaction(relay: TestRelay, subject: string, data: boolean): Promise<RawSmtp> {
  const client = await RawSmtp.connect(relay.ports.starttls!);
  await client.ehlo();
  expect((await client.send("MAIL FROM:<someone@outside.example>")).last).toBe("250 2.1.0 Accepted");
  expect((await client.send(`RCPT TO:<${ALICE.address}>`)).last).toBe("250 2.1.5 Accepted");
  if (data) {
    expect((await client.send("DATA")).code).toBe(354);
    client.write(`Subject: ${subject}\r\n\r\nfirst half\r\n`);
  }
  return client;
}

const sunkWithSubject = (subject: string) =>
  fx.stack.sink.messages.filter((message) => message.data.toString("utf8").includes(`Subject: ${subject}\r\n`));

describe("relay.close()", () => {
  it("lets a message in progress finish during the grace period, refuses new connections and new transactions", async () => {
    const relay = await relayWithGrace();
    const client = await transaction(relay, "finished during shutdown", true);
    const started = Date.now();
    const closing = relay.close();
    try {
      expect(relay.close()).toBe(closing);
      await waitFor(() => logged(relay, STOPPING), { what: "the relay to start stopping" });
      // No new connection: the listening socket is closed.
      await expect(RawSmtp.connect(relay.ports.starttls!)).rejects.toMatchObject({ code: "ECONNREFUSED" });
      await expect(RawSmtp.connect(relay.ports.implicitTls!, { implicitTls: await fx.tls() })).rejects.toMatchObject({
        code: "ECONNREFUSED",
      });
      // A load balancer sees the relay going.
      const health = await fetch(`http://127.0.0.1:${relay.ports.health}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ status: "stopping" });
      // The message in progress goes through.
      client.write("second half\r\n.\r\n");
      expect((await client.read()).last).toMatch(/^250 2\.0\.0 Ok: relayed /);
      expect(sunkWithSubject("finished during shutdown")).toHaveLength(1);
      // A new transaction does not start.
      expect((await client.send("MAIL FROM:<someone@outside.example>")).last).toBe(SHUTTING_DOWN);
      await client.closed;
    } finally {
      client.socket.destroy();
    }
    await closing;
    // Nobody was left: close() did not wait for the whole grace period.
    expect(Date.now() - started).toBeLessThan(GRACE_MS);
    expect(relay.logs.map((record) => String(record.msg))).toContain("relay stopped");
  });

  it("lets a session end with QUIT during the grace period", async () => {
    const relay = await relayWithGrace();
    const client = await RawSmtp.connect(relay.ports.starttls!);
    expect((await client.ehlo()).code).toBe(250);
    const closing = relay.close();
    try {
      expect((await client.send("NOOP")).last).toMatch(/^250 /);
      expect((await client.send("QUIT")).last).toMatch(/^221 /);
    } finally {
      client.socket.destroy();
    }
    await closing;
  });

  it("after the grace period, answers the sessions left with 421 4.3.2 and does not relay a message still streaming in", async () => {
    const relay = await relayWithGrace();
    const idle = await transaction(relay, "never sent", false);
    const streaming = await transaction(relay, "cut by shutdown", true);
    const started = Date.now();
    const closing = relay.close();
    try {
      // Nothing happens to either before the grace is over: the wait is the behaviour under test.
      await delay(GRACE_MS - 400);
      expect(idle.unread()).toBe("");
      expect(streaming.unread()).toBe("");
      expect((await idle.read(5_000)).last).toBe(SHUTTING_DOWN);
      expect(Date.now() - started).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect((await streaming.read(5_000)).last).toBe(SHUTTING_DOWN);
      await idle.closed;
      await streaming.closed;
    } finally {
      idle.socket.destroy();
      streaming.socket.destroy();
    }
    await closing;
    // Proves an absence: a message that (wrongly) went on would reach the sink within this time.
    await delay(200);
    expect(sunkWithSubject("cut by shutdown")).toHaveLength(0);
    const messages = relay.logs.map((record) => String(record.msg));
    expect(messages).toContain("relay stopping: grace period over, closing the sessions left with 421 4.3.2");
    expect(messages).toContainEqual(
      expect.stringMatching(/^ICID \d+ Upstream transaction aborted \(the relay is shutting down\): not relayed$/),
    );
  });

  it("with a grace of 0, closes every session at once", async () => {
    const relay = await relayWithGrace(0);
    const client = await transaction(relay, "no grace", false);
    const started = Date.now();
    await relay.close();
    try {
      expect((await client.read(2_000)).last).toBe(SHUTTING_DOWN);
    } finally {
      client.socket.destroy();
    }
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
