/**
 * RCPT TO: limits and relaying. Relaying is allowed to an authenticated session and under a `relay` policy;
 * otherwise (an `accept` policy, e.g. an MX) only to the listener's accepted domains.
 */
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { refuse, type Check, type Objection } from "../stage.ts";
import type { SessionFacts } from "./session.ts";

export interface RcptFacts extends SessionFacts {
  readonly recipient: string;
  /** Recipients already accepted in this transaction. */
  readonly recipientsSoFar: number;
  /** The listener's accepted domains, lower-cased. */
  readonly acceptedDomains: ReadonlySet<string>;
}

function recipientLimit(facts: RcptFacts): Objection | null {
  return facts.recipientsSoFar >= facts.policy.maxRecipients ? refuse(SMTP_REPLIES.tooManyRecipients) : null;
}

/**
 * A recipient an unauthenticated sender may use under an `accept` policy: a plain local part at one of the
 * accepted domains. Local parts that other MTAs might route onwards (`user%other@ours`, `other!user@ours`, quoted
 * local parts, source routes `@ours:user@other`) are refused outright: they are the classic open-relay tricks.
 */
export function isLocalRecipient(address: string, acceptedDomains: ReadonlySet<string>): boolean {
  const at = address.lastIndexOf("@");
  if (at <= 0) return false;
  const local = address.slice(0, at);
  if (/[%!@:"\\]/.test(local)) return false;
  return acceptedDomains.has(address.slice(at + 1).toLowerCase());
}

function relayAccess(facts: RcptFacts): Objection | null {
  if (facts.identity !== null || facts.policy.behaviour === "relay") return null;
  return isLocalRecipient(facts.recipient, facts.acceptedDomains) ? null : refuse(SMTP_REPLIES.relayDeniedRecipient);
}

export const RCPT_CHECKS: readonly Check<RcptFacts>[] = [
  { name: "recipient-limit", test: recipientLimit },
  { name: "relay-access", test: relayAccess },
];
