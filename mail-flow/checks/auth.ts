/**
 * AUTH: at the AUTH command, before the client sends any credentials (so a session that may not authenticate
 * here is told so before it sends a password) and before the decision API is asked. The credentials themselves
 * are the API's business.
 */
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { refuse, type Check, type Objection } from "../stage.ts";
import { shuttingDown, tlsRequired, type SessionFacts } from "./session.ts";

/** The SASL mechanisms an LDAP bind can serve (CRAM-MD5 and the like need the password in the clear). */
export const AUTH_MECHANISMS = ["PLAIN", "LOGIN"] as const;

export interface AuthFacts extends SessionFacts {
  /** As the client named it, upper-cased. */
  readonly mechanism: string;
}

function authOffered(facts: AuthFacts): Objection | null {
  return facts.policy.smtpAuth === "off" ? refuse(SMTP_REPLIES.authNotAvailable) : null;
}

/**
 * docs/flows.md#flow-b-ldap-smtp-auth: AUTH only after TLS when requireTlsToOfferAuth (538 5.7.11, before tls-required's 530: the reply
 * that names the reason for AUTH in particular).
 */
function encryptionRequired(facts: AuthFacts): Objection | null {
  return !facts.secure && facts.policy.requireTlsToOfferAuth ? refuse(SMTP_REPLIES.encryptionRequired) : null;
}

function alreadyAuthenticated(facts: AuthFacts): Objection | null {
  return facts.identity !== null ? refuse(SMTP_REPLIES.alreadyAuthenticated) : null;
}

function mechanism(facts: AuthFacts): Objection | null {
  return (AUTH_MECHANISMS as readonly string[]).includes(facts.mechanism)
    ? null
    : refuse(SMTP_REPLIES.unknownMechanism, `mechanism ${facts.mechanism.slice(0, 20)}`);
}

export const AUTH_CHECKS: readonly Check<AuthFacts>[] = [
  { name: "shutting-down", test: shuttingDown },
  { name: "auth-offered", test: authOffered },
  { name: "encryption-required", test: encryptionRequired },
  { name: "tls-required", test: tlsRequired },
  { name: "already-authenticated", test: alreadyAuthenticated },
  { name: "mechanism", test: mechanism },
];
