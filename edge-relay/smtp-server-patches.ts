/**
 * Two places where smtp-server's fixed behaviour differs from docs/api.md#smtp-replies, corrected in one patch of
 * `SMTPConnection.prototype.send` (smtp-server exports the class as lib/smtp-connection.js):
 *
 * 1. Enhanced status codes (RFC 3463). smtp-server derives them from the basic code alone (554 → 5.6.0,
 *    538 → 5.7.0, 550 → 5.1.1), which is wrong for most policy replies (554 5.7.1, 538 5.7.11, 550 5.7.1). Every
 *    reply the relay gives therefore carries its own code at the start of its text, and such a text is sent as it
 *    is; a few of smtp-server's own texts are rewritten to the table's wording (REWRITES, and REWRITE_PATTERNS for
 *    texts that carry a number), so that one situation has one reply whichever of the two noticed it.
 * 2. AUTH in the EHLO reply before STARTTLS. smtp-server lists it whatever the policy says; a session whose
 *    policy offers AUTH only after TLS is marked with HIDE_AUTH_BEFORE_TLS and the line is left out (AUTH tried
 *    anyway still gets 538 5.7.11).
 *
 * The relay's end-to-end tests read the exact reply lines, so an smtp-server change that breaks this shows there.
 */
import { SMTPConnection } from "smtp-server/lib/smtp-connection.js";
import { SMTP_REPLIES, type SmtpReply } from "../contract/smtp-replies.ts";

/** Set to true on an smtp-server session object to leave AUTH out of EHLO replies until TLS is up. */
export const HIDE_AUTH_BEFORE_TLS = Symbol("smtpgate.hideAuthBeforeTls");

/**
 * Set to true on a session whose policy requires TLS: until STARTTLS, a command smtp-server does not recognise
 * (the relay disables VRFY, HELP and the like for such sessions) is answered `530 5.7.0 Must issue a STARTTLS
 * command first`, as docs/api.md#smtp-replies says for anything but EHLO, HELO, NOOP, QUIT, RSET and STARTTLS.
 */
export const TLS_REQUIRED = Symbol("smtpgate.tlsRequired");

/** Commands a TLS-required session may not use before STARTTLS (MAIL, RCPT, DATA and AUTH are judged in hooks). */
export const COMMANDS_NEEDING_TLS = ["VRFY", "EXPN", "HELP", "ETRN", "WIZ", "SHELL", "KILL"] as const;

const OWN_CODE = /^[245]\.\d{1,3}\.\d{1,3} /;

/** smtp-server's own texts that docs/api.md#smtp-replies words differently, keyed by "code text". */
const REWRITES: ReadonlyMap<string, SmtpReply> = new Map<string, SmtpReply>([
  ["538 Error: Must issue a STARTTLS command first", SMTP_REPLIES.encryptionRequired],
  ["530 Error: authentication Required", SMTP_REPLIES.authRequired],
  ["235 Authentication successful", SMTP_REPLIES.authSucceeded],
  ["503 Error: No identity changes permitted", SMTP_REPLIES.alreadyAuthenticated],
  ["504 Error: Unrecognized authentication type", SMTP_REPLIES.unknownMechanism],
  ["501 Error: invalid userdata", SMTP_REPLIES.badBase64],
  ["501 Authentication aborted", SMTP_REPLIES.authCancelled],
  // On close(), after the grace period, and to any command once close() ran (the relay's own grace period
  // comes before it: see Relay.close).
  ["421 Server shutting down", SMTP_REPLIES.shuttingDown],
]);

/** Like REWRITES, for texts with a variable part. */
const REWRITE_PATTERNS: readonly (readonly [RegExp, SmtpReply])[] = [
  // MAIL FROM with SIZE= over smtp-server's `size` (the largest policy limit) is refused by smtp-server before
  // onMailFrom; over the session's own policy limit, by onMailFrom; over it in DATA, by the relay. One wording.
  [/^552 Error: message exceeds fixed maximum message size \d+$/, SMTP_REPLIES.messageTooBig],
];

type Send = (this: PatchedConnection, code: number, data?: unknown, context?: unknown) => void;
interface PatchedConnection {
  secure?: boolean;
  session?: Record<symbol, unknown>;
}

let installed = false;

export function installSmtpServerPatches(): void {
  if (installed) return;
  installed = true;
  const prototype = SMTPConnection.prototype as unknown as { send: Send };
  const original = prototype.send;
  prototype.send = function send(code, data, context) {
    if (typeof data === "string") {
      if (
        code === 500 &&
        data === "Error: command not recognized" &&
        !this.secure &&
        this.session?.[TLS_REQUIRED] === true
      ) {
        return original.call(
          this,
          SMTP_REPLIES.startTlsFirst.code,
          `${SMTP_REPLIES.startTlsFirst.enhanced} ${SMTP_REPLIES.startTlsFirst.text}`,
          false,
        );
      }
      const line = `${code} ${data}`;
      const rewrite = REWRITES.get(line) ?? REWRITE_PATTERNS.find(([pattern]) => pattern.test(line))?.[1];
      if (rewrite) return original.call(this, rewrite.code, `${rewrite.enhanced} ${rewrite.text}`, false);
      if (OWN_CODE.test(data)) return original.call(this, code, data, false);
    } else if (Array.isArray(data) && code === 250 && !this.secure && this.session?.[HIDE_AUTH_BEFORE_TLS] === true) {
      return original.call(
        this,
        code,
        data.filter((line) => !String(line).startsWith("AUTH ")),
        context,
      );
    }
    return original.call(this, code, data, context);
  };
}

/** An Error that smtp-server turns into this reply. */
export function replyError(reply: SmtpReply, text: string = reply.text): Error & { responseCode: number } {
  return Object.assign(new Error(`${reply.enhanced} ${text}`), { responseCode: reply.code });
}

/** The text of a reply with its enhanced code (smtp-server sends 250 with onData's message). */
export function replyText(reply: SmtpReply, text: string = reply.text): string {
  return `${reply.enhanced} ${text}`;
}
