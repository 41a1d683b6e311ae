/**
 * MAIL FROM: whether a transaction may start, and with this envelope sender.
 */
import { SMTP_REPLIES, SMTP_REPLY_BUILDERS } from "../../contract/smtp-replies.ts";
import { ownsSender } from "../sender-login.ts";
import { refuse, type Check, type Objection } from "../stage.ts";
import { shuttingDown, tlsRequired, type SessionFacts } from "./session.ts";

export interface MailFacts extends SessionFacts {
  /** The envelope sender's address; "" for the null sender `<>`. */
  readonly sender: string;
  /** The SIZE= the client declared (RFC 1870); null when it declared none. */
  readonly declaredSize: number | null;
  /**
   * The envelope senders the identity owns, from its verdict; null when the directory gave none (the auth
   * profile returns no address attributes).
   */
  readonly addresses: readonly string[] | null;
}

function authRequired(facts: MailFacts): Objection | null {
  return facts.identity === null && facts.policy.smtpAuth === "required" ? refuse(SMTP_REPLIES.authRequired) : null;
}

function messageSize(facts: MailFacts): Objection | null {
  return facts.declaredSize !== null && facts.declaredSize > facts.policy.maxMessageBytes
    ? refuse(SMTP_REPLIES.messageTooBig, `declared SIZE ${facts.declaredSize} over ${facts.policy.maxMessageBytes}`)
    : null;
}

/**
 * `senderLogin: enforce` refuses, `warn` only logs, an authenticated session's sender that its identity does not
 * own (sender-login.ts says what "owns" means). Not checked: an unauthenticated session (the relay rules apply to
 * it) and the null sender `<>` (bounces and receipts from a client, as Postfix's reject_sender_login_mismatch
 * leaves it alone). No addresses at all under `enforce` fails closed: every sender is refused, and the log line
 * says what to configure.
 */
function senderLogin(facts: MailFacts): Objection | null {
  const mode = facts.policy.senderLogin;
  if (mode === "off" || facts.identity === null || facts.sender === "") return null;
  const warnOnly = mode === "warn";
  const reply = SMTP_REPLY_BUILDERS.senderNotOwned(facts.identity);
  if (facts.addresses === null)
    return {
      reply,
      warnOnly,
      note: `the directory gave no addresses for user ${facts.identity}: configure the auth profile's address attributes (mail, mailAlternateAddress, proxyAddresses) or set senderLogin: off`,
    };
  if (ownsSender(facts.addresses, facts.sender)) return null;
  return { reply, warnOnly, note: `not one of the ${facts.addresses.length} addresses of user ${facts.identity}` };
}

/** The sender bound to the login; also what the Postfix policy server checks (fronts/postfix-policy/). */
export const SENDER_LOGIN_CHECK: Check<MailFacts> = { name: "sender-login", test: senderLogin };

export const MAIL_CHECKS: readonly Check<MailFacts>[] = [
  { name: "shutting-down", test: shuttingDown },
  { name: "tls-required", test: tlsRequired },
  { name: "auth-required", test: authRequired },
  { name: "message-size", test: messageSize },
  SENDER_LOGIN_CHECK,
];
