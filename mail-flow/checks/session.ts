/**
 * Facts every stage after CONNECT knows about the session, and the checks more than one stage runs (each written
 * once, listed in every stage it guards).
 */
import type { MailFlowPolicy } from "../../contract/listener-policy.ts";
import { SMTP_REPLIES } from "../../contract/smtp-replies.ts";
import { refuse, type Objection } from "../stage.ts";

export interface SessionFacts {
  /** The mail-flow policy of the session's sender group (chosen at connect time). */
  readonly policy: MailFlowPolicy;
  /** TLS is up (STARTTLS done, or implicit TLS). */
  readonly secure: boolean;
  /** Who the session authenticated as (by certificate or AUTH); null: nobody. */
  readonly identity: string | null;
  /** The front is stopping: a transaction in progress may finish, nothing new starts. */
  readonly shuttingDown: boolean;
}

/** 421 4.3.2 once the front is stopping (the client retries elsewhere or later). */
export function shuttingDown(facts: { readonly shuttingDown: boolean }): Objection | null {
  return facts.shuttingDown ? refuse(SMTP_REPLIES.shuttingDown) : null;
}

/** docs/api.md#smtp-replies: under `tls: required`, nothing but EHLO/HELO/NOOP/QUIT/RSET/STARTTLS before STARTTLS. */
export function tlsRequired(facts: SessionFacts): Objection | null {
  return !facts.secure && facts.policy.tls === "required" ? refuse(SMTP_REPLIES.startTlsFirst) : null;
}
