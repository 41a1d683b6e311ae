import { describe, expect, it } from "vitest";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { firstRefusal } from "../stage.ts";
import { AUTH_CHECKS, type AuthFacts } from "./auth.ts";
import { STARTTLS_CHECKS } from "./starttls.ts";
import { policy, session } from "./test-facts.ts";

const SUBMISSION = policy({ tls: "required", smtpAuth: "required" });
const facts = (overrides: Partial<AuthFacts> = {}): AuthFacts => ({
  ...session({ policy: SUBMISSION }),
  mechanism: "PLAIN",
  ...overrides,
});
const refusedBy = (overrides: Partial<AuthFacts>) => firstRefusal(AUTH_CHECKS, facts(overrides));

describe("AUTH checks", () => {
  it("let PLAIN and LOGIN through after TLS", () => {
    expect(refusedBy({})).toBeNull();
    expect(refusedBy({ mechanism: "LOGIN" })).toBeNull();
  });

  it("answer 538 5.7.11 before TLS when requireTlsToOfferAuth, also under tls: required (docs/api.md#smtp-replies)", () => {
    expect(refusedBy({ secure: false })).toMatchObject({
      check: "encryption-required",
      reply: SMTP_REPLIES.encryptionRequired,
    });
    expect(refusedBy({ secure: false, policy: policy({ tls: "preferred", smtpAuth: "required" }) })?.check).toBe(
      "encryption-required",
    );
  });

  it("answer 530 5.7.0 before TLS under tls: required when AUTH itself does not need TLS", () => {
    const rules = policy({ tls: "required", smtpAuth: "required", requireTlsToOfferAuth: false });
    expect(refusedBy({ secure: false, policy: rules })).toMatchObject({
      check: "tls-required",
      reply: SMTP_REPLIES.startTlsFirst,
    });
    expect(
      refusedBy({ secure: false, policy: policy({ smtpAuth: "required", requireTlsToOfferAuth: false }) }),
    ).toBeNull();
  });

  it("answer 503 when AUTH is off, 503 once authenticated, 504 to another mechanism, 421 while stopping", () => {
    expect(refusedBy({ policy: policy({ smtpAuth: "off" }) })).toMatchObject({
      check: "auth-offered",
      reply: SMTP_REPLIES.authNotAvailable,
    });
    expect(refusedBy({ identity: "alice" })).toMatchObject({
      check: "already-authenticated",
      reply: SMTP_REPLIES.alreadyAuthenticated,
    });
    expect(refusedBy({ mechanism: "CRAM-MD5" })).toMatchObject({
      check: "mechanism",
      reply: SMTP_REPLIES.unknownMechanism,
    });
    expect(refusedBy({ shuttingDown: true, mechanism: "CRAM-MD5" })?.check).toBe("shutting-down");
  });
});

describe("STARTTLS checks", () => {
  it("answer 421 4.3.2 while stopping, nothing otherwise", () => {
    expect(firstRefusal(STARTTLS_CHECKS, { shuttingDown: false })).toBeNull();
    expect(firstRefusal(STARTTLS_CHECKS, { shuttingDown: true })?.reply).toBe(SMTP_REPLIES.shuttingDown);
  });
});
