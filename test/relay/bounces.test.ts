// Recipients the upstream refuses at RCPT while it accepts others (docs/edge-relay.md: relay stores nothing and loses
// nothing): the client hears 250 only once the sender has a delivery status notification (RFC 3464) naming each
// refused recipient and the upstream's reply; never for the null sender; 451 (or 554) when the notification
// cannot be sent. The sink (dev/sink.ts) refuses chosen recipients; real swaks as the client.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TEST_TOKEN } from "../../dev/api.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { startSink, type Sink, type SunkMessage } from "../../dev/sink.ts";
import { RawSmtp, swaks } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;
let upstream: Sink;
/** Flow B (TLS + AUTH) and the MX-style listener (no AUTH, example.com only), both relaying to `upstream`. */
let submission: TestRelay;
let inbound: TestRelay;

const NOBODY = "nobody@other.example";
const FULL = "full@other.example";
const FRIEND = "friend@other.example";

beforeAll(async () => {
  fx = await startRelayFixture({ listeners: [] });
  upstream = await startSink({ closeTimeoutMs: 1_000 });
  const relay = (listener: string) =>
    startTestRelay({
      apiUrl: fx.stack.api.url,
      apiToken: TEST_TOKEN,
      listener,
      upstreamPort: upstream.port,
      serverPki: fx.stack.slapd.pki,
    });
  submission = await relay(STACK_LISTENERS.password);
  inbound = await relay(STACK_LISTENERS.inbound);
});

afterAll(async () => {
  await submission?.close();
  await inbound?.close();
  await upstream?.close();
  await fx?.close();
});

afterEach(() => {
  for (const address of [NOBODY, FULL, FRIEND, "nobody@example.com", ALICE.address])
    upstream.refuseRecipient(address, null);
  upstream.refuseNullSender(null);
});

/** swaks as alice (STARTTLS + AUTH PLAIN) to several recipients through the submission relay. */
function aliceSendsTo(recipients: readonly string[], subject: string) {
  return swaks(
    submission.ports.starttls!,
    [
      "--from",
      ALICE.address,
      "--to",
      recipients.join(","),
      "--tls",
      "--auth",
      "PLAIN",
      "--auth-user",
      ALICE.user,
      "--auth-password",
      ALICE.password,
      "--header",
      `Subject: ${subject}`,
    ],
    { ca: fx.caFile },
  );
}

/** The MIME part of a multipart message whose Content-Type starts with `type` (headers and body as text). */
function part(message: SunkMessage, type: string): string {
  const text = message.data.toString("utf8");
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  if (!boundary) throw new Error("not a multipart message");
  const found = text
    .split(`--${boundary}`)
    .find((chunk) => chunk.replace(/^\r\n/, "").toLowerCase().startsWith(`content-type: ${type}`));
  if (!found) throw new Error(`no ${type} part`);
  return found;
}

describe("some recipients refused by the upstream at RCPT", () => {
  it("answers 250, delivers to the accepted recipient, and bounces a report naming each refused one with the reason", async () => {
    upstream.refuseRecipient(NOBODY, { code: 550, text: "5.1.1 <nobody@other.example>: no such user" });
    upstream.refuseRecipient(FULL, { code: 452, text: "4.2.2 mailbox full" });
    const before = upstream.messages.length;
    const result = await aliceSendsTo([FRIEND, NOBODY, FULL], "partly refused");
    expect(result.replies).toContain("235 2.7.0 Authentication succeeded");
    expect(result.replies.at(-2)).toMatch(
      /^250 2\.0\.0 Ok: relayed to 1 of 3 recipients \(250 2\.6\.0 Ok: queued as SINK\d+\); 2 refused by the upstream, reported to the sender$/,
    );
    expect(result.code).toBe(0);

    const arrived = upstream.messages.slice(before);
    // The message, to the one recipient the upstream took.
    const original = arrived.find((message) => message.from === ALICE.address);
    expect(original).toMatchObject({ to: [FRIEND] });
    expect(original!.data.toString("utf8")).toContain("Subject: partly refused");
    // The report, from the null sender to alice, sent before the client heard 250.
    const bounces = arrived.filter((message) => message.from === "");
    expect(bounces).toHaveLength(1);
    const bounce = bounces[0]!;
    expect(bounce.to).toEqual([ALICE.address]);
    const text = bounce.data.toString("utf8");
    expect(text).toMatch(/^From: Mail Delivery System <MAILER-DAEMON@relay\.test>\r\n/m);
    expect(text).toMatch(/^To: <alice@example\.com>\r\n/m);
    expect(text).toMatch(/^Subject: Undelivered Mail Returned to Sender\r\n/m);
    expect(text).toMatch(/^Auto-Submitted: auto-replied\r\n/m);
    expect(text).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status; boundary="[^"]+"\r\n/m);

    const human = part(bounce, "text/plain");
    expect(human).toContain("delivered to 1 of its 3 recipients");
    expect(human).toContain("<nobody@other.example>\r\n      550 5.1.1 <nobody@other.example>: no such user");
    expect(human).toContain("<full@other.example>\r\n      452 4.2.2 mailbox full");
    expect(human).not.toContain(FRIEND);

    const status = part(bounce, "message/delivery-status");
    expect(status).toContain("Reporting-MTA: dns; relay.test\r\n");
    expect(status).toMatch(
      /Final-Recipient: rfc822; nobody@other\.example\r\nAction: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; 127\.0\.0\.1\r\nDiagnostic-Code: smtp; 550 5\.1\.1 <nobody@other\.example>: no such user/,
    );
    expect(status).toMatch(/Final-Recipient: rfc822; full@other\.example\r\nAction: failed\r\nStatus: 4\.2\.2\r\n/);
    expect(status).not.toContain(FRIEND);

    const headers = part(bounce, "text/rfc822-headers");
    expect(headers).toContain("Subject: partly refused\r\n");
    expect(headers).toMatch(/Received: from client\.test/);
    // Headers only: the body never goes back.
    expect(headers).not.toContain("This is a test mailing");

    expect(submission.metrics.dsn.get({ result: "sent" })).toBeGreaterThanOrEqual(1);
    expect(submission.logs.map((record) => String(record.msg))).toContainEqual(
      expect.stringMatching(
        /^ICID \d+ Message relayed to 1 of 3 recipients; the upstream refused 2: .*delivery status notification sent to <alice@example\.com>/,
      ),
    );
  });

  it("sends no report for a message from the null sender (loop prevention), still answers 250, and logs it as an error", async () => {
    upstream.refuseRecipient("nobody@example.com", { code: 550, text: "5.1.1 no such user" });
    const before = upstream.messages.length;
    const client = await RawSmtp.connect(inbound.ports.starttls!);
    try {
      await client.ehlo();
      expect((await client.send("MAIL FROM:<>")).last).toBe("250 2.1.0 Accepted");
      expect((await client.send(`RCPT TO:<${ALICE.address}>`)).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("RCPT TO:<nobody@example.com>")).last).toBe("250 2.1.5 Accepted");
      expect((await client.send("DATA")).code).toBe(354);
      expect((await client.send("Subject: a bounce itself\r\n\r\nundeliverable\r\n.")).last).toMatch(
        /^250 2\.0\.0 Ok: relayed to 1 of 2 recipients \(.*\); 1 refused by the upstream, not reported \(null sender\)$/,
      );
    } finally {
      await client.quit();
    }
    const arrived = upstream.messages.slice(before);
    expect(arrived).toHaveLength(1);
    expect(arrived[0]).toMatchObject({ from: "", to: [ALICE.address] });
    const logged = inbound.logs.find((record) =>
      /null sender <> relayed to 1 of 2 recipients/.test(String(record.msg)),
    );
    expect(logged).toMatchObject({
      level: "error",
      refused: [{ recipient: "nobody@example.com", response: "550 5.1.1 no such user" }],
    });
    expect(inbound.metrics.dsn.get({ result: "suppressed" })).toBe(1);
  });

  it("answers 451 4.4.2 when the report cannot be sent for now (the client retries; duplicates accepted)", async () => {
    upstream.refuseRecipient(NOBODY, { code: 550, text: "5.1.1 no such user" });
    upstream.refuseNullSender({ code: 451, text: "4.3.0 try again later" });
    const before = upstream.messages.length;
    const result = await aliceSendsTo([FRIEND, NOBODY], "report fails for now");
    expect(result.replies).toContain(
      "451 4.4.2 Upstream server failed during delivery, try again later: 1 of 2 recipients refused and the sender could not be notified",
    );
    expect(result.replies.some((line) => /^250 2\.0\.0 Ok: relayed/.test(line))).toBe(false);
    // The accepted recipient has it already: the retry will give it a second copy, never no copy to anyone.
    expect(upstream.messages.slice(before).map((message) => message.to)).toEqual([[FRIEND]]);
    expect(submission.metrics.dsn.get({ result: "failed" })).toBe(1);
    expect(submission.metrics.messages.get({ result: "tempfail" })).toBeGreaterThanOrEqual(1);
  });

  it("answers 554 naming what was and was not delivered when the upstream refuses the report for good", async () => {
    upstream.refuseRecipient(NOBODY, { code: 550, text: "5.1.1 no such user" });
    upstream.refuseNullSender({ code: 550, text: "5.7.1 no bounces accepted" });
    const result = await aliceSendsTo([FRIEND, NOBODY], "report refused");
    expect(result.replies).toContain(
      "554 5.0.0 Delivered to 1 of 2 recipients only; the upstream refused <nobody@other.example> 550 5.1.1 no such user; the notice to the sender was refused: no bounces accepted",
    );
    expect(submission.metrics.dsn.get({ result: "refused" })).toBe(1);
  });
});

describe("every recipient refused by the upstream", () => {
  it("passes the upstream's permanent reply on and sends no report (nobody got the message)", async () => {
    upstream.refuseRecipient(FRIEND, { code: 550, text: "5.1.1 no such user" });
    upstream.refuseRecipient(NOBODY, { code: 550, text: "5.1.1 no such user" });
    const before = upstream.messages.length;
    const result = await aliceSendsTo([FRIEND, NOBODY], "all refused");
    expect(result.replies).toContain("550 5.1.1 Upstream refused the message: no such user");
    expect(upstream.messages.slice(before)).toHaveLength(0);
  });

  it("answers 451 when any of them was refused only for now, so that the client retries all", async () => {
    upstream.refuseRecipient(FRIEND, { code: 550, text: "5.1.1 no such user" });
    upstream.refuseRecipient(FULL, { code: 452, text: "4.2.2 mailbox full" });
    const before = upstream.messages.length;
    const result = await aliceSendsTo([FRIEND, FULL], "all refused, one for now");
    expect(result.replies).toContain("451 4.4.2 Upstream server failed during delivery, try again later: mailbox full");
    expect(upstream.messages.slice(before)).toHaveLength(0);
  });
});
