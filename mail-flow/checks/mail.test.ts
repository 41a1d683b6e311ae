import { describe, expect, it } from "vitest";
import type { MailFlowPolicy } from "../../contract/listener-policy.ts";
import { SMTP_REPLIES, SMTP_REPLY_BUILDERS } from "../../contract/smtp-replies.ts";
import { firstRefusal, type Finding } from "../stage.ts";
import { MAIL_CHECKS, type MailFacts } from "./mail.ts";
import { policy, session } from "./test-facts.ts";

const SUBMISSION: Partial<MailFlowPolicy> = { tls: "required", smtpAuth: "required", maxMessageBytes: 4096 };
const facts = (overrides: Partial<MailFacts> = {}, rules: Partial<MailFlowPolicy> = {}): MailFacts => ({
  ...session({ policy: policy({ ...SUBMISSION, ...rules }), identity: "alice" }),
  sender: "alice@example.com",
  declaredSize: null,
  addresses: ["alice@example.com", "a.smith@example.org"],
  ...overrides,
});
const refusedBy = (overrides: Partial<MailFacts>, rules: Partial<MailFlowPolicy> = {}) =>
  firstRefusal(MAIL_CHECKS, facts(overrides, rules));

describe("MAIL checks", () => {
  it("let an authenticated session after TLS start a transaction", () => {
    expect(refusedBy({})).toBeNull();
  });

  it("answer 421 4.3.2 while stopping, 530 before TLS, 530 without authentication, in that order", () => {
    expect(refusedBy({ shuttingDown: true, secure: false, identity: null })).toMatchObject({
      check: "shutting-down",
      reply: SMTP_REPLIES.shuttingDown,
    });
    expect(refusedBy({ secure: false, identity: null })).toMatchObject({
      check: "tls-required",
      reply: SMTP_REPLIES.startTlsFirst,
    });
    expect(refusedBy({ identity: null })).toMatchObject({ check: "auth-required", reply: SMTP_REPLIES.authRequired });
    expect(refusedBy({ identity: null }, { smtpAuth: "preferred" })).toBeNull();
  });

  it("answer 552 5.3.4 to a declared SIZE over the policy's limit", () => {
    expect(refusedBy({ declaredSize: 4096 })).toBeNull();
    expect(refusedBy({ declaredSize: 4097 })).toMatchObject({
      check: "message-size",
      reply: SMTP_REPLIES.messageTooBig,
    });
  });
});

describe("the sender-login check", () => {
  const ENFORCE = { senderLogin: "enforce" } as const;
  const notOwned = SMTP_REPLY_BUILDERS.senderNotOwned("alice");

  it("answers 553 5.7.1 under enforce to a sender the identity does not own, naming the identity", () => {
    expect(refusedBy({ sender: "bob@example.com" }, ENFORCE)).toMatchObject({ check: "sender-login", reply: notOwned });
    expect(notOwned).toEqual({
      code: 553,
      enhanced: "5.7.1",
      text: "Sender address rejected: not owned by user alice",
    });
  });

  it("lets the identity's own addresses through, any case, with a subaddress tag", () => {
    for (const sender of ["alice@example.com", "A.Smith@EXAMPLE.org", "alice+lists@example.com"])
      expect(refusedBy({ sender }, ENFORCE), sender).toBeNull();
  });

  it("leaves the null sender, unauthenticated sessions and senderLogin: off alone", () => {
    expect(refusedBy({ sender: "" }, ENFORCE)).toBeNull();
    expect(refusedBy({ sender: "bob@example.com", identity: null }, { ...ENFORCE, smtpAuth: "preferred" })).toBeNull();
    expect(refusedBy({ sender: "bob@example.com" })).toBeNull();
  });

  it("fails closed under enforce when the directory gave no addresses, saying what to configure", () => {
    const refusal = refusedBy({ addresses: null }, ENFORCE);
    expect(refusal).toMatchObject({ check: "sender-login", reply: notOwned });
    expect(refusal?.note).toMatch(/gave no addresses for user alice: configure the auth profile's address attributes/);
    expect(refusedBy({ addresses: [] }, ENFORCE)?.check).toBe("sender-login");
  });

  it("under warn only warns, and the stage goes on", () => {
    const warnings: Finding[] = [];
    const rules = { senderLogin: "warn" } as const;
    expect(firstRefusal(MAIL_CHECKS, facts({ sender: "bob@example.com" }, rules), (w) => warnings.push(w))).toBeNull();
    expect(firstRefusal(MAIL_CHECKS, facts({ addresses: null }, rules), (w) => warnings.push(w))).toBeNull();
    expect(warnings.map((warning) => [warning.check, warning.warnOnly, warning.reply])).toEqual([
      ["sender-login", true, notOwned],
      ["sender-login", true, notOwned],
    ]);
  });
});
