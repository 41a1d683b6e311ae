// Slow clients (docs/edge-relay.md, edge-relay/slow-clients.ts): a command line dripped a byte at a time, DATA below the
// minimum rate and a session past its maximum each get `421 4.4.2` and a closed connection, while a client sending
// a large message at a healthy rate for longer than the DATA deadline itself is not cut. Raw sockets dripping real
// bytes into a real relay (small limits so the tests stay fast), the fake listener API and a test upstream.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RelayConfigInput } from "../../edge-relay/config.ts";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { RawSmtp } from "./clients.ts";
import { sleep } from "../../dev/wait.ts";
import { FakeListenerApi, LISTENER, listenerPolicy } from "./fake-listener-api.ts";
import { startSink, type Sink } from "../../dev/sink.ts";

const TOKEN = "fake-api-token";
const COMMAND_DEADLINE_MS = 1_000;
const DATA_DEADLINE_MS = 1_000;
/** 20 kB/s: the healthy client below sends 40 kB/s, the dripping one 10 B/s. */
const MIN_DATA_RATE = 20_000;

let dir: string;
let pki: ServerPki;
let fake: FakeListenerApi;
let upstream: Sink;
let relay: TestRelay;

function relayWith(limits: NonNullable<RelayConfigInput["limits"]>): Promise<TestRelay> {
  return startTestRelay({
    apiUrl: fake.url,
    apiToken: TOKEN,
    listener: LISTENER,
    upstreamPort: upstream.port,
    serverPki: pki,
    overrides: { limits: { authFailureDelayMs: 0, ...limits } },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-slow-clients-"));
  pki = await generateServerPki(dir);
  fake = await FakeListenerApi.start();
  fake.document = listenerPolicy("TRUSTED");
  upstream = await startSink();
  relay = await relayWith({
    commandDeadlineMs: COMMAND_DEADLINE_MS,
    dataDeadlineMs: DATA_DEADLINE_MS,
    minDataBytesPerSecond: MIN_DATA_RATE,
  });
});

afterAll(async () => {
  await relay?.close();
  await upstream?.close();
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Writes `text` one byte every `gapMs` until it is all sent or the connection closes; returns the bytes sent. */
async function drip(client: RawSmtp, text: string, gapMs: number): Promise<number> {
  let sent = 0;
  for (const byte of text) {
    if (client.isClosed) break;
    client.write(byte);
    sent++;
    await sleep(gapMs);
  }
  return sent;
}

/** A session with MAIL and RCPT accepted and DATA answered 354. */
async function inData(client: RawSmtp, subject: string): Promise<void> {
  await client.ehlo();
  expect((await client.send("MAIL FROM:<app@example.com>")).code).toBe(250);
  expect((await client.send("RCPT TO:<someone@example.net>")).code).toBe(250);
  expect((await client.send("DATA")).code).toBe(354);
  client.write(`Subject: ${subject}\r\n\r\n`);
}

const relayedWithSubject = (subject: string) =>
  upstream.messages.filter((message) => message.data.toString("utf8").includes(`Subject: ${subject}\r\n`));

describe("slow-client deadlines", () => {
  it("answers a command line dripped a byte at a time with 421 4.4.2 once its deadline from the first byte passes, and closes", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    try {
      await client.ehlo();
      const started = Date.now();
      // 100 bytes at 10 a second: each byte restarts smtp-server's idle timeout, none restarts the deadline.
      const dripping = drip(client, `MAIL FROM:<${"a".repeat(80)}@example.com>\r\n`, 100);
      const reply = await client.read(5_000);
      expect(reply.last).toBe("421 4.4.2 Command line not completed in time, closing connection");
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(COMMAND_DEADLINE_MS - 50);
      expect(elapsed).toBeLessThan(COMMAND_DEADLINE_MS + 1_000);
      await client.closed;
      expect(await dripping).toBeLessThan(30);
    } finally {
      client.socket.destroy();
    }
    expect(relay.logs).toContainEqual(
      expect.objectContaining({
        level: "warn",
        deadline: "command",
        msg: expect.stringMatching(/^ICID \d+ command line deadline \(1000 ms\) passed: 421 4\.4\.2, closing$/),
      }),
    );
    expect(relay.metrics.deadlineCloses.get({ deadline: "command" })).toBeGreaterThanOrEqual(1);
  });

  it("times each line on its own: complete lines sent slowly one after another are answered", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    try {
      // Five lines over 2.5 s, each complete within 0.6 s of its first byte.
      for (let i = 0; i < 5; i++) {
        const reply = drip(client, "NOOP\r\n", 100);
        expect((await client.read(2_000)).last).toMatch(/^250 /);
        await reply;
      }
      expect(client.isClosed).toBe(false);
    } finally {
      await client.quit();
    }
  });

  it("applies the command deadline inside TLS too (the parser smtp-server makes after STARTTLS)", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    try {
      await client.ehlo();
      await client.startTls({ ca: pki.caPem });
      await client.ehlo();
      void drip(client, "MAIL FROM:<tls@example.com>\r\n", 200);
      expect((await client.read(5_000)).last).toBe("421 4.4.2 Command line not completed in time, closing connection");
      await client.closed;
    } finally {
      client.socket.destroy();
    }
  });

  it("answers DATA below the minimum rate with 421 4.4.2, closes, and relays nothing", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    try {
      await inData(client, "dripped message");
      const started = Date.now();
      void drip(client, "x".repeat(200), 100);
      expect((await client.read(5_000)).last).toBe("421 4.4.2 Message data too slow, closing connection");
      expect(Date.now() - started).toBeLessThan(DATA_DEADLINE_MS + 1_000);
      await client.closed;
    } finally {
      client.socket.destroy();
    }
    await sleep(200);
    expect(relayedWithSubject("dripped message")).toHaveLength(0);
    expect(relay.metrics.deadlineCloses.get({ deadline: "data" })).toBeGreaterThanOrEqual(1);
  });

  it("does not cut a large message sent at a healthy rate for longer than the DATA deadline", async () => {
    const client = await RawSmtp.connect(relay.ports.starttls!);
    try {
      await inData(client, "healthy large message");
      const started = Date.now();
      // 4 kB every 100 ms for 2.5 s: 40 kB/s, twice the minimum, 100 kB in all, 2.5 times the DATA deadline.
      const line = `${"y".repeat(78)}\r\n`;
      for (let i = 0; i < 25; i++) {
        client.write(line.repeat(50));
        await sleep(100);
      }
      expect(Date.now() - started).toBeGreaterThan(DATA_DEADLINE_MS * 2);
      expect(client.unread()).toBe("");
      expect((await client.send(".")).last).toMatch(/^250 2\.0\.0 Ok: relayed /);
      expect((await client.send("NOOP")).last).toMatch(/^250 /);
    } finally {
      await client.quit();
    }
    expect(relayedWithSubject("healthy large message")).toHaveLength(1);
    expect(relayedWithSubject("healthy large message")[0]?.data.length).toBeGreaterThan(100_000);
  });

  it("ends a session past its maximum duration with 421 4.4.2 however busy it keeps, but lets a message in DATA finish first", async () => {
    const short = await relayWith({ maxSessionMs: 1_500, minDataBytesPerSecond: 1_000 });
    try {
      // Busy with NOOPs, each answered at once: only the session deadline ends it.
      const busy = await RawSmtp.connect(short.ports.starttls!);
      const started = Date.now();
      try {
        for (;;) {
          const reply = await busy.send("NOOP", 3_000);
          if (reply.code !== 250) {
            expect(reply.last).toBe("421 4.4.2 Session lasted too long, closing connection");
            break;
          }
          await sleep(100);
        }
        expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
        await busy.closed;
      } finally {
        busy.socket.destroy();
      }

      // DATA begun before the session deadline is finished; the 421 follows the 250.
      const sending = await RawSmtp.connect(short.ports.starttls!);
      try {
        await inData(sending, "finished past the session deadline");
        for (let i = 0; i < 20; i++) {
          sending.write("z".repeat(200) + "\r\n");
          await sleep(100);
        }
        expect(sending.unread()).toBe("");
        expect((await sending.send(".")).last).toMatch(/^250 2\.0\.0 Ok: relayed /);
        expect((await sending.read(2_000)).last).toBe("421 4.4.2 Session lasted too long, closing connection");
        await sending.closed;
      } finally {
        sending.socket.destroy();
      }
      expect(relayedWithSubject("finished past the session deadline")).toHaveLength(1);
    } finally {
      await short.close();
    }
  });
});
