// The relay forwards a message as the client sent it: nothing composed or rewritten on the way to the upstream,
// only its Received: header in front. The bytes are compared at the upstream (a sink behind a TCP tap that
// records the wire, where the dot-stuffing is visible), with the message as the client meant it.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { startSink, type Sink, type SunkMessage } from "../../dev/sink.ts";
import { startSocketTap, type SocketTap } from "../../dev/socket-tap.ts";
import { RawSmtp } from "./clients.ts";
import { FakeListenerApi, LISTENER, listenerPolicy, rules } from "./fake-listener-api.ts";

const MAX_MESSAGE_BYTES = 4096;

let dir: string;
let pki: ServerPki;
let api: FakeListenerApi;
let sink: Sink;
let tap: SocketTap;
let relay: TestRelay;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-raw-delivery-"));
  pki = await generateServerPki(dir);
  api = await FakeListenerApi.start();
  api.document = {
    ...listenerPolicy("TRUSTED"),
    mailFlowPolicies: { TRUSTED: rules({ maxMessageBytes: MAX_MESSAGE_BYTES }) },
  };
  sink = await startSink({ xclient: true });
  tap = await startSocketTap({ host: "127.0.0.1", port: sink.port });
  relay = await relayTo(tap.port);
});

afterAll(async () => {
  await relay?.close();
  await tap?.close();
  await sink?.close();
  await api?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function relayTo(upstreamPort: number, upstream: Record<string, unknown> = {}): Promise<TestRelay> {
  return startTestRelay({
    apiUrl: api.url,
    apiToken: "token",
    listener: LISTENER,
    upstreamPort,
    serverPki: pki,
    overrides: {
      api: { url: api.url, token: { env: "UNUSED" }, timeoutMs: 2_000 },
      upstream: { host: "127.0.0.1", port: upstreamPort, timeoutMs: 5_000, ...upstream },
    },
  });
}

/** The client's message on the wire: every line starting with "." gets one more (RFC 5321 §4.5.2), then ".". */
function dotStuffed(message: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(message.toString("latin1").replace(/^\./gm, ".."), "latin1"),
    Buffer.from(".\r\n"),
  ]);
}

/** One SMTP transaction from 127.0.0.1 (TRUSTED: relays without AUTH); the reply to the final dot. */
async function sendRaw(port: number, message: Buffer, to = "friend@other.example"): Promise<string> {
  const client = await RawSmtp.connect(port);
  try {
    await client.ehlo("client.example");
    expect((await client.send("MAIL FROM:<alice@example.com>")).code).toBe(250);
    expect((await client.send(`RCPT TO:<${to}>`)).code).toBe(250);
    expect((await client.send("DATA")).code).toBe(354);
    client.write(dotStuffed(message));
    const reply = await client.read();
    await client.send("QUIT");
    return reply.lines.join("\n");
  } finally {
    client.socket.destroy();
  }
}

/** The message as the upstream stored it, without the relay's Received: header (its first, folded, field). */
function withoutReceived(message: SunkMessage): Buffer {
  const text = message.data.toString("latin1");
  expect(text.startsWith("Received: from ")).toBe(true);
  const end = /\r\n(?![\t ])/.exec(text);
  return Buffer.from(text.slice((end?.index ?? 0) + 2), "latin1");
}

/** What the relay wrote to the upstream on all tapped connections. */
function relayWrote(): string {
  return tap.chunks
    .filter((chunk) => chunk.from === "client")
    .map((chunk) => chunk.data)
    .join("");
}

const ODD_MESSAGE = Buffer.concat([
  Buffer.from(
    [
      "From: Alice <alice@example.com>",
      "To:   friend@other.example",
      "Subject:  =?utf-8?q?caf=C3=A9?= odd   spacing,",
      "\tand a folded line",
      "X-Order: kept, not sorted",
      "Message-ID: <kept@client.example>",
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=iso-8859-1",
      "Content-Transfer-Encoding: 8bit",
      "",
      "A line of only a dot follows:",
      ".",
      "..two dots at the start",
      ".one dot at the start",
      "8-bit: ",
    ].join("\r\n"),
    "latin1",
  ),
  Buffer.from([0xe9, 0xe8, 0xff, 0x80]),
  Buffer.from(" and UTF-8: ", "latin1"),
  Buffer.from("Grüße, ünïcödé", "utf8"),
  Buffer.from("\r\n\r\ntrailing blank line above, no Date header and none added\r\n", "latin1"),
]);

describe("the relayed message", () => {
  it("arrives at the upstream as the client sent it: headers, dot lines, 8-bit bytes and CRLFs untouched", async () => {
    const since = sink.messages.length;
    expect(await sendRaw(relay.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
    const [message] = sink.messages.slice(since);
    expect(message).toBeDefined();
    expect(withoutReceived(message!).equals(ODD_MESSAGE)).toBe(true);
    // Dot-stuffed on the wire, as the client stuffed it: the line of only "." went as "..", and the data ended
    // with one "." line.
    const wire = relayWrote();
    expect(wire).toContain("\r\n..\r\n...two dots at the start\r\n..one dot at the start\r\n");
    expect(wire).toContain("none added\r\n.\r\n");
  });

  it("relays a message of exactly the policy's size limit byte for byte, and refuses one byte more", async () => {
    const head = Buffer.from("Subject: at the limit\r\n\r\n", "latin1");
    const line = ".dotted line of the body, 8-bit \xe9\r\n";
    let body = "";
    while (head.length + body.length + line.length <= MAX_MESSAGE_BYTES - 2) body += line;
    body += "x".repeat(MAX_MESSAGE_BYTES - 2 - head.length - body.length) + "\r\n";
    const atLimit = Buffer.concat([head, Buffer.from(body, "latin1")]);
    expect(atLimit.length).toBe(MAX_MESSAGE_BYTES);
    const since = sink.messages.length;
    expect(await sendRaw(relay.ports.starttls!, atLimit)).toMatch(/^250 /);
    const [message] = sink.messages.slice(since);
    expect(withoutReceived(message!).equals(atLimit)).toBe(true);

    const over = Buffer.concat([Buffer.from("y", "latin1"), atLimit]);
    expect(await sendRaw(relay.ports.starttls!, over)).toMatch(/^552 5\.3\.4 /);
    expect(sink.messages.length).toBe(since + 1);
  });

  it("under upstream.xclient still announces the client first, and relays the same bytes", async () => {
    const announcing = await relayTo(tap.port, { xclient: "required" });
    try {
      const since = sink.messages.length;
      const tapped = tap.chunks.length;
      expect(await sendRaw(announcing.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
      const [message] = sink.messages.slice(since);
      expect(message!.xclient?.addr).toBe("127.0.0.1");
      expect(withoutReceived(message!).equals(ODD_MESSAGE)).toBe(true);
      const wire = tap.chunks
        .slice(tapped)
        .filter((chunk) => chunk.from === "client")
        .map((chunk) => chunk.data)
        .join("");
      expect(wire).toMatch(/XCLIENT [^\r\n]*ADDR=127\.0\.0\.1[^\r\n]*\r\n[\s\S]*MAIL FROM:<alice@example\.com>/);
    } finally {
      await announcing.close();
    }
  });
});

describe("an upstream refusal at DATA", () => {
  it("is the client's 5xx with the upstream's reason, or a 451 for a 4xx, and the pooled connection goes on", async () => {
    const connections = () => new Set(tap.chunks.map((chunk) => chunk.connection)).size;
    // A connection of the pool, open and idle.
    expect(await sendRaw(relay.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
    const before = connections();
    try {
      sink.refuse({ code: 554, text: "5.6.0 content refused here" });
      expect(await sendRaw(relay.ports.starttls!, ODD_MESSAGE)).toBe(
        "554 5.6.0 Upstream refused the message: content refused here",
      );
      sink.refuse({ code: 452, text: "4.3.1 out of space for now" });
      expect(await sendRaw(relay.ports.starttls!, ODD_MESSAGE)).toBe(
        "451 4.4.2 Upstream server failed during delivery, try again later: out of space for now",
      );
    } finally {
      sink.refuse(null);
    }
    const since = sink.messages.length;
    expect(await sendRaw(relay.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
    expect(sink.messages.length).toBe(since + 1);
    // Reset (RSET) after each refusal and reused: no new connection for the refusals or the message after them.
    expect(connections()).toBe(before);
    expect(relayWrote()).toContain("RSET\r\n");
  });

  it("does not keep a pooled connection the upstream closed: the next message goes over a new one", async () => {
    const first = await startSink({ closeTimeoutMs: 100 });
    const pooled = await relayTo(first.port);
    let second: Sink | undefined;
    try {
      expect(await sendRaw(pooled.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
      // The upstream restarts on the same port: the idle connection of the pool is gone.
      await first.close();
      second = await startSink({ port: first.port, closeTimeoutMs: 100 });
      expect(await sendRaw(pooled.ports.starttls!, ODD_MESSAGE)).toMatch(/^250 /);
      expect(second.messages).toHaveLength(1);
    } finally {
      await pooled.close();
      await second?.close();
    }
  });
});
