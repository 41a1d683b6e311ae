/**
 * The SMTP dialogue as stages of checks, in the spirit of Postfix's `smtpd_<stage>_restrictions`: a check is a
 * named function of plain facts (the session's mail-flow policy among them) that objects with a reply from the
 * contract's table or says nothing (null); a stage is an ordered list of checks; the first objection wins.
 *
 * Nothing here knows smtp-server, sockets or the decision API: the edge relay gathers the facts in its hooks and
 * answers with the reply, and the Postfix policy server can run the same lists. The check's name goes into the
 * log line (`ICID 3 RCPT rejected (relay-access): <x@example.net>`), so "where is this reply decided" has one
 * answer.
 *
 *   const refusal = firstRefusal(RCPT_CHECKS, facts);
 *   if (refusal) answer(refusal.reply);
 */
import type { SmtpReply } from "../contract/smtp-replies.ts";

export type StageName = "CONNECT" | "STARTTLS" | "AUTH" | "MAIL" | "RCPT" | "DATA";

/** What a check says when it objects: the reply, and (for the log only, never for the client) why. */
export interface Objection {
  readonly reply: SmtpReply;
  readonly note?: string;
  /** The check only warns (a policy's `warn` mode, Postfix's `warn_if_reject`): logged, the stage goes on. */
  readonly warnOnly?: boolean;
}

export interface Check<Facts> {
  /** Kebab-case, as it appears in the log line: `relay-access`. */
  readonly name: string;
  readonly test: (facts: Facts) => Objection | null;
}

/** An objection with the name of the check that raised it. */
export interface Finding extends Objection {
  readonly check: string;
}

/** An objection that refuses: `refuse(SMTP_REPLIES.relayDeniedRecipient)`. */
export function refuse(reply: SmtpReply, note?: string): Objection {
  return note === undefined ? { reply } : { reply, note };
}

/**
 * Runs the checks in order and returns the first refusal, or null when every check passed. A warn-only objection
 * is handed to `onWarning` and the next check runs.
 */
export function firstRefusal<Facts>(
  checks: readonly Check<Facts>[],
  facts: Facts,
  onWarning?: (warning: Finding) => void,
): Finding | null {
  for (const { name, test } of checks) {
    const objection = test(facts);
    if (objection === null) continue;
    const finding = { ...objection, check: name };
    if (!objection.warnOnly) return finding;
    onWarning?.(finding);
  }
  return null;
}
