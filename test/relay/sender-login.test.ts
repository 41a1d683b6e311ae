// senderLogin end to end: the real relay with swaks and a raw socket, its listener policy from a fake
// GET /v1/listeners/{name}, and a fake Decider standing in for the API's verdicts (which carry the identity's
// addresses only once the API fills them from the directory; the check's cases are in mail-flow/checks/).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Decider } from "../../contract/decider.ts";
import type { MailFlowPolicy } from "../../contract/listener-policy.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import type { Verdict } from "../../contract/verdict.ts";
import { generateServerPki, type ServerPki } from "../../dev/server-pki.ts";
import { startTestRelay, type TestRelay } from "../../dev/relay.ts";
import { RawSmtp, swaks } from "./clients.ts";
import { FakeListenerApi, LISTENER, rules } from "./fake-listener-api.ts";
import { startSink, type Sink } from "../../dev/sink.ts";

/** The directory as the fake Decider knows it: user → password and addresses (null: no address attributes). */
const USERS: Record<string, { password: string; addresses: string[] | null }> = {
  alice: { password: "alice-pw", addresses: ["alice@example.com", "Alice.Smith@example.org"] },
  carol: { password: "carol-pw", addresses: null },
};

/** Allows the users above with their addresses; no certificates. */
class FakeDecider implements Decider {
  calls = 0;

  async decideTls(): Promise<Verdict> {
    return this.#verdict({ verdict: "continue", identity: null, addresses: null, smtp: null });
  }

  async decideAuth(request: Parameters<Decider["decideAuth"]>[0]): Promise<Verdict> {
    this.calls += 1;
    const user = USERS[request.username];
    if (!user || user.password !== request.password)
      return this.#verdict({ verdict: "deny", identity: null, addresses: null, smtp: SMTP_REPLIES.authInvalid });
    return this.#verdict({
      verdict: "allow",
      authenticated: true,
      method: "ldap-bind",
      identity: request.username,
      addresses: user.addresses,
      smtp: SMTP_REPLIES.authSucceeded,
    });
  }

  #verdict(fields: Partial<Verdict>): Verdict {
    return {
      verdict: "deny",
      authenticated: false,
      method: null,
      identity: null,
      dn: null,
      temporary: false,
      reason: fields.verdict === "allow" ? "ok" : "invalid-credentials",
      retryAfter: null,
      addresses: null,
      smtp: null,
      close: false,
      profile: "corp",
      decisionId: `fake-${this.calls}`,
      ...fields,
    };
  }
}

let dir: string;
let pki: ServerPki;
let upstream: Sink;
const apis: FakeListenerApi[] = [];
const relays: TestRelay[] = [];
const decider = new FakeDecider();

/** A relay whose one sender group has a submission policy with this senderLogin. */
async function relayWith(senderLogin: MailFlowPolicy["senderLogin"]): Promise<TestRelay> {
  const api = await FakeListenerApi.start();
  apis.push(api);
  api.document = {
    listener: LISTENER,
    authProfile: { name: "corp", type: "ldap", allowAuthFallback: true },
    hostAccessTable: [{ name: "LOCAL", match: ["127.0.0.0/8", "::1"], policy: "SUBMIT" }],
    mailFlowPolicies: { SUBMIT: rules({ behaviour: "accept", smtpAuth: "required", senderLogin }) },
    acceptedDomains: ["example.com"],
  };
  const relay = await startTestRelay({
    apiUrl: api.url,
    apiToken: "fake-api-token",
    listener: LISTENER,
    upstreamPort: upstream.port,
    serverPki: pki,
    overrides: { api: { url: api.url, token: { env: "UNUSED" }, timeoutMs: 1_000 } },
    decider,
  });
  relays.push(relay);
  return relay;
}

let enforcing: TestRelay;
let warning: TestRelay;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpgate-sender-login-"));
  pki = await generateServerPki(dir);
  upstream = await startSink();
  enforcing = await relayWith("enforce");
  warning = await relayWith("warn");
});

afterAll(async () => {
  for (const relay of relays) await relay.close();
  for (const api of apis) await api.close();
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A raw session on `relay` past STARTTLS and AUTH PLAIN as `user`. */
async function loggedIn(relay: TestRelay, user: string): Promise<RawSmtp> {
  const client = await RawSmtp.connect(relay.ports.starttls!);
  expect((await client.submissionLogin({ ca: pki.caPem }, user, USERS[user]!.password)).last).toBe(
    "235 2.7.0 Authentication succeeded",
  );
  return client;
}

const messages = (relay: TestRelay) => relay.logs.map((record) => String(record.msg));

describe("senderLogin: enforce", () => {
  it("refuses a sender alice does not own with 553 5.7.1 (swaks), and relays nothing", async () => {
    const before = upstream.messages.length;
    const auth = ["--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw"];
    const envelope = ["--from", "bob@example.com", "--to", "friend@other.example"];
    const result = await swaks(enforcing.ports.starttls!, ["--tls", ...auth, ...envelope], { ca: pki.caFile });
    expect(result.replies).toContain("235 2.7.0 Authentication succeeded");
    expect(result.replies).toContain("553 5.7.1 Sender address rejected: not owned by user alice");
    expect(upstream.messages.slice(before)).toHaveLength(0);
    expect(messages(enforcing)).toContainEqual(
      expect.stringMatching(
        /^ICID \d+ MAIL rejected \(sender-login\): <bob@example\.com>: not one of the 2 addresses of user alice$/,
      ),
    );
  });

  it("takes alice's own addresses, in any case and with a +tag, and the null sender", async () => {
    const client = await loggedIn(enforcing, "alice");
    try {
      for (const sender of ["alice@example.com", "ALICE.SMITH@EXAMPLE.ORG", "alice+lists@example.com", ""]) {
        expect((await client.send(`MAIL FROM:<${sender}>`)).last, sender).toBe("250 2.1.0 Accepted");
        expect((await client.send("RSET")).last).toMatch(/^250 /);
      }
      expect((await client.send("MAIL FROM:<mallory@example.com>")).last).toBe(
        "553 5.7.1 Sender address rejected: not owned by user alice",
      );
      // The session goes on: a 553 is about this sender only.
      expect((await client.send("MAIL FROM:<alice@example.com>")).last).toBe("250 2.1.0 Accepted");
    } finally {
      await client.quit();
    }
  });

  it("refuses every sender of a user the directory gave no addresses for, and the log says what to configure", async () => {
    const client = await loggedIn(enforcing, "carol");
    try {
      expect((await client.send("MAIL FROM:<carol@example.com>")).last).toBe(
        "553 5.7.1 Sender address rejected: not owned by user carol",
      );
    } finally {
      await client.quit();
    }
    expect(messages(enforcing)).toContainEqual(
      expect.stringMatching(
        /^ICID \d+ MAIL rejected \(sender-login\): <carol@example\.com>: the directory gave no addresses for user carol: configure the auth profile's address attributes/,
      ),
    );
  });
});

describe("senderLogin: warn", () => {
  it("relays a sender alice does not own and logs the warning", async () => {
    const before = upstream.messages.length;
    const client = await loggedIn(warning, "alice");
    try {
      expect((await client.send("MAIL FROM:<bob@example.com>")).last).toBe("250 2.1.0 Accepted");
      expect((await client.send("RCPT TO:<friend@other.example>")).last).toMatch(/^250 /);
      expect((await client.send("DATA")).code).toBe(354);
      expect((await client.send("Subject: warn only\r\n\r\nhello\r\n.")).last).toMatch(/^250 2\.0\.0 Ok: relayed /);
    } finally {
      await client.quit();
    }
    expect(upstream.messages.slice(before).map((message) => message.from)).toEqual(["bob@example.com"]);
    expect(warning.logs).toContainEqual(
      expect.objectContaining({
        level: "warn",
        msg: expect.stringMatching(
          /^ICID \d+ MAIL would be rejected, warn only \(sender-login\): <bob@example\.com>: not one of the 2 addresses/,
        ),
        stage: "MAIL",
        check: "sender-login",
      }),
    );
  });
});
