// Every AUTH response strictly base64 (RFC 4954 §4, docs/edge-relay.md) through the real relay, API and slapd: the initial
// response on the AUTH line, each LOGIN step and the PLAIN continuation. Anything else is `501 5.5.2 Cannot
// decode response`: no decision asked for, no password guess counted, no smtp-server text on the wire. And every
// refusal the relay gives is in its log with the session's ICID and the check that gave it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opensslStartTls, plainBlob, RawSmtp } from "./clients.ts";
import { ALICE, STACK_LISTENERS, startRelayFixture, type RelayFixture } from "./fixture.ts";

let fx: RelayFixture;

beforeAll(async () => {
  // limits.maxAuthFailures is 3: four undecodable responses in one session would close it, were they guesses.
  fx = await startRelayFixture({ listeners: [STACK_LISTENERS.password] });
});

afterAll(async () => {
  await fx?.close();
});

const PASSWORD = STACK_LISTENERS.password;
const AUTH_OK = "235 2.7.0 Authentication succeeded";
const BAD_BASE64 = "501 5.5.2 Cannot decode response";
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** Log lines of the password listener's relay since `since` (a previous logs.length). */
const relayLines = (since: number) => fx.stack.relays[PASSWORD]!.logs.slice(since).map((record) => String(record.msg));
const authDecisions = (since: number) => relayLines(since).filter((line) => line.startsWith("SMTP Auth:"));

/** A session past EHLO, STARTTLS, EHLO: ready for AUTH. */
async function secureSession(): Promise<RawSmtp> {
  const client = await RawSmtp.connect(fx.port(PASSWORD));
  await client.ehlo();
  await client.startTls(await fx.tls());
  await client.ehlo();
  return client;
}

describe("strict base64 in AUTH (raw socket)", () => {
  it("answers every undecodable response 501 5.5.2, asks the API nothing, counts no guess", async () => {
    const since = fx.stack.relays[PASSWORD]!.logs.length;
    const client = await secureSession();
    try {
      // PLAIN with an initial response that is valid base64 followed by junk (a lenient decoder says 235).
      expect((await client.send(`AUTH PLAIN ${plainBlob(ALICE.user, ALICE.password)}!!!`)).last).toBe(BAD_BASE64);
      // PLAIN, its response on the next line.
      expect((await client.send("AUTH PLAIN")).last).toBe("334 ");
      expect((await client.send(`${plainBlob(ALICE.user, ALICE.password)}!!!`)).last).toBe(BAD_BASE64);
      // LOGIN: a user name line that is not base64 (a lenient decoder says "501 Error: missing username").
      expect((await client.send("AUTH LOGIN")).last).toBe("334 VXNlcm5hbWU6");
      expect((await client.send("@@@@")).last).toBe(BAD_BASE64);
      // LOGIN: a password line that is not base64 (a lenient decoder makes it an empty password, a guess).
      expect((await client.send("AUTH LOGIN")).last).toBe("334 VXNlcm5hbWU6");
      expect((await client.send(b64(ALICE.user))).last).toBe("334 UGFzc3dvcmQ6");
      expect((await client.send("@@@@")).last).toBe(BAD_BASE64);
      // LOGIN with an initial response that is not base64, and one with stray bits in its padding.
      expect((await client.send("AUTH LOGIN @@@@")).last).toBe(BAD_BASE64);
      expect((await client.send("AUTH LOGIN YWxpY2V=")).last).toBe(BAD_BASE64);
      // None of these was a guess: the session is open and the right password gets in.
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(AUTH_OK);
    } finally {
      await client.quit();
    }
    // Each refusal in the log with the session's ICID and what gave it.
    expect(relayLines(since).filter((line) => line.includes("SMTP rejected (base64)"))).toEqual(
      Array(6).fill(expect.stringMatching(/^ICID \d+ SMTP rejected \(base64\): 501 5\.5\.2 Cannot decode response$/)),
    );
    // One decision in the whole session: the good one.
    expect(authDecisions(since)).toEqual([
      expect.stringMatching(/^SMTP Auth: \(ICID \d+\) succeeded for user: alice using AUTH mechanism: PLAIN /),
    ]);
  });

  it("keeps LOGIN and PLAIN working in every well-formed shape", async () => {
    const client = await secureSession();
    try {
      expect((await client.send(`AUTH LOGIN ${b64(ALICE.user)}`)).last).toBe("334 UGFzc3dvcmQ6");
      expect((await client.send(b64(ALICE.password))).last).toBe(AUTH_OK);
    } finally {
      await client.quit();
    }
    const plain = await secureSession();
    try {
      expect((await plain.send("AUTH PLAIN")).last).toBe("334 ");
      expect((await plain.send(plainBlob(ALICE.user, ALICE.password))).last).toBe(AUTH_OK);
    } finally {
      await plain.quit();
    }
  });

  it("maps smtp-server's remaining AUTH texts: an empty user name, extra arguments, cancel", async () => {
    const client = await secureSession();
    try {
      expect((await client.send("AUTH LOGIN")).last).toBe("334 VXNlcm5hbWU6");
      expect((await client.send("")).last).toBe("535 5.7.8 Authentication credentials invalid");
      expect((await client.send("AUTH LOGIN =")).last).toBe("535 5.7.8 Authentication credentials invalid");
      expect((await client.send("AUTH PLAIN =")).last).toBe(BAD_BASE64);
      expect((await client.send("AUTH PLAIN abcd efgh")).last).toBe(
        "501 5.5.4 Syntax error in parameters or arguments",
      );
      expect((await client.send("AUTH LOGIN abcd efgh")).last).toBe(
        "501 5.5.4 Syntax error in parameters or arguments",
      );
      expect((await client.send("AUTH LOGIN")).last).toBe("334 VXNlcm5hbWU6");
      expect((await client.send("*")).last).toBe("501 5.7.0 Authentication cancelled");
      expect((await client.authPlain(ALICE.user, ALICE.password)).last).toBe(AUTH_OK);
    } finally {
      await client.quit();
    }
  });

  it("answers AUTH before TLS 538 at the AUTH command, before any credentials are asked for", async () => {
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      expect((await client.send("AUTH LOGIN")).last).toBe(
        "538 5.7.11 Encryption required for requested authentication mechanism",
      );
    } finally {
      await client.quit();
    }
  });
});

describe("strict base64 in AUTH (openssl s_client)", () => {
  it("answers PLAIN with trailing junk 501 5.5.2 and then lets the same credentials in", async () => {
    const result = await opensslStartTls(fx.port(PASSWORD), {
      caFile: fx.caFile,
      lines: [
        "EHLO openssl.test",
        `AUTH PLAIN ${plainBlob(ALICE.user, ALICE.password)}!!!`,
        `AUTH PLAIN ${plainBlob(ALICE.user, ALICE.password)}`,
        "QUIT",
      ],
    });
    const replies = result.stdout.split(/\r?\n/).filter((line) => /^\d{3}[ -]/.test(line));
    expect(replies).toContain(BAD_BASE64);
    expect(replies.indexOf(AUTH_OK)).toBeGreaterThan(replies.indexOf(BAD_BASE64));
  });
});

describe("refusals in the relay's log", () => {
  it("logs every refusal with the ICID and what gave it: 538 at AUTH, 530 at MAIL, 501 for base64, smtp-server's own", async () => {
    const since = fx.stack.relays[PASSWORD]!.logs.length;
    const client = await RawSmtp.connect(fx.port(PASSWORD));
    try {
      await client.ehlo();
      expect((await client.send("AUTH PLAIN")).last).toMatch(/^538 5\.7\.11 /);
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe(
        "530 5.7.0 Must issue a STARTTLS command first",
      );
      await client.startTls(await fx.tls());
      await client.ehlo();
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("530 5.7.0 Authentication required");
      expect((await client.send("AUTH PLAIN @@@@")).last).toBe(BAD_BASE64);
      expect((await client.send("RCPT TO:<bob@example.com>")).last).toMatch(/^503 /);
    } finally {
      await client.quit();
    }
    const lines = relayLines(since);
    const icid = /^New SMTP ICID (\d+) /.exec(lines[0] ?? "")?.[1];
    expect(icid).toBeDefined();
    expect(lines).toEqual(
      expect.arrayContaining([
        `ICID ${icid} AUTH rejected (encryption-required): mechanism PLAIN`,
        `ICID ${icid} MAIL rejected (tls-required): <alice@example.com>`,
        `ICID ${icid} MAIL rejected (auth-required): <alice@example.com>`,
        `ICID ${icid} SMTP rejected (base64): ${BAD_BASE64}`,
        expect.stringMatching(new RegExp(`^ICID ${icid} SMTP rejected \\(smtp-server\\): 503 `)),
      ]),
    );
    const record = fx.stack.relays[PASSWORD]!.logs.find((entry) => String(entry.msg).includes("(auth-required)"));
    expect(record).toMatchObject({ icid: Number(icid), stage: "MAIL", check: "auth-required", reply: "530 5.7.0" });
  });
});
