import { describe, expect, it } from "vitest";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { firstRefusal } from "../stage.ts";
import { DATA_CHECKS } from "./data.ts";
import { RCPT_CHECKS, type RcptFacts } from "./rcpt.ts";
import { policy, session } from "./test-facts.ts";

const facts = (overrides: Partial<RcptFacts> = {}): RcptFacts => ({
  ...session({ policy: policy({ behaviour: "accept", maxRecipients: 2 }) }),
  recipient: "bob@example.com",
  recipientsSoFar: 0,
  acceptedDomains: new Set(["example.com"]),
  ...overrides,
});
const refusedBy = (overrides: Partial<RcptFacts>) => firstRefusal(RCPT_CHECKS, facts(overrides));

describe("RCPT checks", () => {
  it("let an unauthenticated sender mail the accepted domains, any case", () => {
    expect(refusedBy({})).toBeNull();
    expect(refusedBy({ recipient: "Bob@EXAMPLE.com" })).toBeNull();
  });

  it("answer 550 5.7.1 relay-access to another domain and to the open-relay tricks", () => {
    for (const recipient of [
      "bob@example.net",
      "bob%example.net@example.com",
      "example.net!bob@example.com",
      '"bob@example.net"@example.com',
      "@example.com:bob@example.net",
      "example.com",
    ]) {
      expect(refusedBy({ recipient }), recipient).toMatchObject({
        check: "relay-access",
        reply: SMTP_REPLIES.relayDeniedRecipient,
      });
    }
  });

  it("let an authenticated session and a relay policy send anywhere", () => {
    expect(refusedBy({ recipient: "bob@example.net", identity: "alice" })).toBeNull();
    expect(refusedBy({ recipient: "bob@example.net", policy: policy({ behaviour: "relay" }) })).toBeNull();
  });

  it("answer 452 4.5.3 past maxRecipients, before relay-access", () => {
    expect(refusedBy({ recipientsSoFar: 1 })).toBeNull();
    expect(refusedBy({ recipientsSoFar: 2, recipient: "bob@example.net" })).toMatchObject({
      check: "recipient-limit",
      reply: SMTP_REPLIES.tooManyRecipients,
    });
  });
});

describe("DATA checks", () => {
  const rules = policy({ maxMessageBytes: 2048 });

  it("let a message up to the policy's limit through", () => {
    expect(firstRefusal(DATA_CHECKS, { policy: rules, bytes: 2048, overFrontLimit: false })).toBeNull();
  });

  it("answer 552 5.3.4 past the policy's limit or the front's own", () => {
    for (const facts of [
      { policy: rules, bytes: 2049, overFrontLimit: false },
      { policy: rules, bytes: 10, overFrontLimit: true },
    ]) {
      expect(firstRefusal(DATA_CHECKS, facts)).toMatchObject({
        check: "message-size",
        reply: SMTP_REPLIES.messageTooBig,
      });
    }
  });
});
